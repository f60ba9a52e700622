"""The selection report as a terminal table (rich) and a self-contained HTML page (inline CSS, the figure
as a PNG data URI, a tiny inline script that sorts tables and counts the images that decoded)."""

from __future__ import annotations

import base64
import html
import sys
from pathlib import Path

from nas._html import SORTABLE_SCRIPT
from nas._io import write_atomic
from nas.validate._render import png_bytes

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1300px;
       color: #222; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { font-size: 1.25em; margin-top: 32px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
figure img { max-width: 100%; border: 1px solid #eee; } .note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #eaf6ea; } td.worse { color: #a00; } tr.thin td { color: #888; }
table.sortable th { cursor: pointer; background: #f4f4f4; user-select: none; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _latency_text(latency: dict) -> str:
    if latency.get("skipped"):
        return "skipped"
    if latency.get("median_ms") is None:
        return latency["how"]
    return f"{latency['median_ms']:.4g} ms ({latency['profile']}, {latency['how'].split(' ')[0]})"


def _worse(row: dict) -> dict[str, float]:
    """Candidates the slice's best one beats significantly, with the p-value."""
    return {c["against"]: c["p_value"] for c in row["comparisons"] if c["significant"]}


def selection_figure(report: dict):
    """Accuracy per slice (rows) of each candidate (markers, 95% intervals as error bars)."""
    from matplotlib.figure import Figure

    names = [c["name"] for c in report["candidates"]]
    slices = report["slices"]
    fig = Figure(figsize=(8, max(3.0, 0.32 * len(slices) + 1.4)))
    ax = fig.add_subplot(1, 1, 1)
    step = 0.6 / max(1, len(names))
    for k, name in enumerate(names):
        ys, xs, lo, hi = [], [], [], []
        for i, s in enumerate(slices):
            r = s["results"][name]
            ys.append(len(slices) - 1 - i + (k - (len(names) - 1) / 2) * step)
            xs.append(r["accuracy"])
            lo.append(r["accuracy"] - r["ci95"][0])
            hi.append(r["ci95"][1] - r["accuracy"])
        ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", markersize=4, capsize=2, label=name)
    ax.set_yticks(range(len(slices)))
    ax.set_yticklabels([s["name"] + (" (thin)" if s["thin"] else "") for s in reversed(slices)], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy (95% Wilson interval)")
    ax.set_title("accuracy per slice and candidate", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _table(headers, rows, sortable=True) -> str:
    out = ["<table class=\"sortable\"><thead><tr>" if sortable else "<table><thead><tr>"]
    out += [f"<th>{_esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    out += rows
    out.append("</tbody></table>")
    return "".join(out) + "\n"


def _matrix_rows(report: dict, names: list[str]) -> list[str]:
    rows = []
    for s in report["slices"]:
        worse = _worse(s)
        cells = [f"<td>{_esc(s['name'])}</td><td class=\"num\">{s['n']}</td>"]
        for name in names:
            r = s["results"][name]
            cls = "num best" if name == s["best"] else ("num worse" if name in worse else "num")
            mark = f" &#9660; p={worse[name]:.2g}" if name in worse else ""
            cells.append(
                f"<td class=\"{cls}\" data-v=\"{r['accuracy']:.6f}\">{_pct(r['accuracy'])} "
                f"[{_pct(r['ci95'][0])}&ndash;{_pct(r['ci95'][1])}]{mark}</td>"
            )
        cells += [f"<td class=\"num\">{s['results'][n]['ece']:.3f}</td>" for n in names]
        cells.append(f"<td>{_esc(s['thin_reason'] or '')}</td>")
        rows.append(("<tr class=\"thin\">" if s["thin"] else "<tr>") + "".join(cells) + "</tr>")
    return rows


def selection_page(report: dict, png: bytes) -> str:
    names = [c["name"] for c in report["candidates"]]
    candidate_rows = [
        "<tr>"
        + "".join(
            f"<td>{_esc(v)}</td>"
            for v in (
                c["name"],
                c["path"],
                c["preprocessing"],
                "x".join(map(str, c["input_size"])),
                _latency_text(c["latency"]),
                f"{c['worst_slice']} ({_pct(c['worst_slice_accuracy'])}%)",
                len(c["best_on"]),
            )
        )
        + "</tr>"
        for c in report["candidates"]
    ]
    first = report["slices"][0]
    recall_rows = [
        "<tr>"
        + f"<td>{_esc(cls)}</td>"
        + "".join(
            f"<td class=\"num\">{_pct(first['results'][n]['recall'][cls])}</td>"
            if cls in first["results"][n]["recall"]
            else "<td></td>"
            for n in names
        )
        + "</tr>"
        for cls in report["classes"]
    ]
    figure = base64.b64encode(png).decode("ascii")
    body = (
        f"<h1>Model selection: {len(names)} candidates on {_esc(report['data'])}</h1>\n"
        f"<p class=\"note\">{_esc(report['test'])}. Thin slices ({_esc(report['thin_rule'])}) are greyed: "
        "too uncertain to rank models on.</p>\n"
        "<h2>Candidates</h2>\n"
        + _table(
            ("candidate", "model", "preprocessing", "input", "latency", "worst slice", "best on (slices)"),
            candidate_rows,
        )
        + "<h2>Accuracy per slice (%, 95% interval) and ECE</h2>\n"
        "<p class=\"note\">Bold: the slice's most accurate candidate; &#9660;: significantly less accurate than it "
        "on the same images (exact McNemar, p shown).</p>\n"
        + _table(
            ("slice", "n", *[f"{n} acc" for n in names], *[f"{n} ECE" for n in names], "thin"),
            _matrix_rows(report, names),
        )
        + f"<h2>Per-class recall on slice {_esc(first['name'])} (%)</h2>\n"
        + _table(("class", *names), recall_rows)
        + "<h2>Figure</h2>\n"
        f"<figure><img src=\"data:image/png;base64,{figure}\" alt=\"accuracy per slice and candidate\"></figure>\n"
        + "".join(f"<p class=\"note\">{_esc(n)}</p>\n" for n in report["notes"])
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nas select</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}<script>{SORTABLE_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_selection_page(report: dict, path: Path) -> Path:
    return write_atomic(path, selection_page(report, png_bytes(selection_figure(report))).encode("utf-8"))


def print_selection(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    names = [c["name"] for c in report["candidates"]]
    table = Table(
        title=f"{len(names)} candidates on {report['data']}: accuracy % [95% CI] (v: significantly "
        "below the slice's best, exact McNemar p < 0.05)"
    )
    table.add_column("slice")
    table.add_column("n", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for s in report["slices"]:
        worse = _worse(s)
        cells = []
        for name in names:
            r = s["results"][name]
            text = f"{_pct(r['accuracy'])} [{_pct(r['ci95'][0])}-{_pct(r['ci95'][1])}]"
            cells.append(
                f"[bold]{text}[/bold]" if name == s["best"] else text + (" v" if name in worse else "")
            )
        table.add_row(
            s["name"] + (" (thin)" if s["thin"] else ""),
            str(s["n"]),
            *cells,
            style="dim" if s["thin"] else None,
        )
    console.print(table)
    for c in report["candidates"]:
        console.print(
            f"{c['name']}: worst slice {c['worst_slice']} {_pct(c['worst_slice_accuracy'])}%, "
            f"latency {_latency_text(c['latency'])}",
            highlight=False,
        )
