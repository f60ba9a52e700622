"""Terminal table (rich) and plot (matplotlib Figure + Agg canvas, no pyplot state) of a slice report."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from nas._io import write_atomic


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def slice_table(report: dict):
    from rich.table import Table

    worst = report["worst_slice"]
    table = Table(
        title=f"{report['model']} ({report['precision']}) on {report['data']}: "
        f"clean {_pct(report['clean_accuracy'])}%, worst slice {worst} {_pct(report['worst_slice_accuracy'])}%"
    )
    for column in ("slice", "n", "acc %", "95% CI", "drop", "ECE", "worst class", "top confusion", "note"):
        table.add_column(
            column, justify="left" if column in ("slice", "worst class", "top confusion", "note") else "right"
        )
    for s in report["slices"]:
        per_class = s["per_class"]
        worst_class = min(per_class, key=lambda c: per_class[c]["accuracy"]) if per_class else "-"
        worst_text = f"{worst_class} {_pct(per_class[worst_class]['accuracy'])}%" if per_class else "-"
        confusion = s["confusions"][0] if s["confusions"] else None
        confusion_text = (
            f"{confusion['true']}->{confusion['predicted']} ({confusion['count']})" if confusion else "-"
        )
        notes = []
        if s["name"] == worst:
            notes.append("worst")
        if s["thin"]:
            notes.append(f"thin: {s['thin_reason']}")
        if "exits" in s:  # early exits: the share leaving at each exit
            rates = "/".join(f"{100 * r:.0f}" for r in s["exits"]["rates"])
            notes.append(f"exits {rates}% (cascade {_pct(s['exits']['cascade_accuracy'])}%)")
        table.add_row(
            s["name"],
            str(s["n"]),
            _pct(s["accuracy"]),
            f"{_pct(s['ci95'][0])}-{_pct(s['ci95'][1])}",
            "" if s["kind"] == "clean" else f"{100 * s['drop']:+.1f}",
            f"{s['ece']:.3f}",
            worst_text,
            confusion_text,
            ", ".join(notes),
            style="bold red" if s["name"] == worst else ("dim" if s["thin"] else None),
        )
    return table


def print_report(report: dict, console=None) -> None:
    from rich.console import Console

    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    console.print(slice_table(report))


def slice_figure(report: dict):
    """Accuracy per slice (95% Wilson interval as error bars), clean accuracy as a reference line."""
    from matplotlib.figure import Figure

    slices = report["slices"]
    n = len(slices)
    fig = Figure(figsize=(8, max(3.0, 0.28 * n + 1.2)))
    ax = fig.add_subplot(1, 1, 1)
    colours = {"clean": "tab:green", "corruption": "tab:blue", "user": "tab:purple"}
    for i, s in enumerate(slices):
        y = n - 1 - i
        low, high = s["ci95"]
        colour = "tab:red" if s["name"] == report["worst_slice"] else colours.get(s["kind"], "tab:gray")
        ax.errorbar(
            [s["accuracy"]],
            [y],
            xerr=[[s["accuracy"] - low], [high - s["accuracy"]]],
            fmt="o",
            color=colour,
            ecolor=colour,
            alpha=0.45 if s["thin"] else 1.0,
            capsize=2,
            markersize=4,
        )
    ax.axvline(
        report["clean_accuracy"], color="tab:green", linestyle="--", linewidth=1, label="clean accuracy"
    )
    ax.set_yticks(range(n))
    ax.set_yticklabels([s["name"] + (" (thin)" if s["thin"] else "") for s in reversed(slices)], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy (95% Wilson interval)")
    ax.set_title(
        f"{Path(report['model']).parent.name or report['model']} ({report['precision']}): accuracy per slice",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def png_bytes(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def save_figure(fig, path: str | Path) -> Path:
    return write_atomic(Path(path), png_bytes(fig))
