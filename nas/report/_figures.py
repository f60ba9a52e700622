"""The report's figures, drawn with matplotlib's object API (no pyplot, so no global backend is touched).

Each function returns a `Figure`; `png_bytes` renders it with the Agg canvas.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.records import TrialRecord, TrialStatus
from nas.report._load import RunData, progress_curves

STATUS_STYLE = {  # status: (colour, marker, label)
    TrialStatus.COMPLETE: ("#4c72b0", "o", "complete (dominated)"),
    TrialStatus.INFEASIBLE: ("#dd8452", "x", "infeasible"),
    TrialStatus.FAILED: ("#c44e52", "v", "failed"),
    TrialStatus.INTERRUPTED: ("#8c8c8c", "s", "interrupted"),
    TrialStatus.SCREENED_OUT: ("#9467bd", "d", "screened out (pre-screening)"),
    TrialStatus.STOPPED_EARLY: ("#17becf", "^", "stopped early (multi-fidelity)"),
}
PARETO_COLOUR = "#2ca02c"
BUDGET_COLOUR = "#7f3b08"
PRIMITIVE_COLOURS = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#937860", "#da8bc3"]
DPI = 100


def png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def front_steps(front: Sequence[tuple[float, float]], right: float) -> tuple[list[float], list[float]]:
    """The attainment staircase of a front given as (latency, accuracy) sorted by latency, out to `right`."""
    xs, ys = [], []
    for lat, acc in front:
        xs.append(lat)
        ys.append(acc)
    xs.append(max(right, xs[-1]))
    ys.append(ys[-1])
    return xs, ys


def pareto_figure(run: RunData) -> tuple[Figure, str]:
    """Accuracy vs latency of every trial; the front as a step line; budget; baselines. Returns (figure, note)."""
    rows = [
        TrialStatus.INFEASIBLE,
        TrialStatus.SCREENED_OUT,
        TrialStatus.STOPPED_EARLY,
        TrialStatus.FAILED,
        TrialStatus.INTERRUPTED,
    ]
    untrained = [t for t in run.trials if t.status in rows]
    with_strip = any(t.latency_ms is not None for t in untrained)
    fig = Figure(figsize=(10, 6.2 if with_strip else 5.4))
    if with_strip:
        grid = fig.add_gridspec(2, 1, height_ratios=[5, 1], hspace=0.08)
        ax = fig.add_subplot(grid[0])
        strip = fig.add_subplot(grid[1], sharex=ax)
    else:
        ax = strip = fig.add_subplot()
    latencies = [t.latency_ms for t in run.trials if t.latency_ms is not None] + [
        b.latency_ms for b in run.baselines
    ]
    right = max(latencies + ([run.budget_ms] if run.budget_ms else []))

    trained = run.dominated  # duplicates repeat their original's point
    colour, marker, label = STATUS_STYLE[TrialStatus.COMPLETE]
    if trained:
        ax.scatter(
            [t.latency_ms for t in trained],
            [t.accuracy for t in trained],
            c=colour,
            marker=marker,
            s=28,
            alpha=0.65,
            label=f"{label} ({len(trained)})",
        )
    front = [(t.latency_ms, t.accuracy) for t in run.pareto]
    xs, ys = front_steps(front, run.reference_latency()[0])
    ax.step(xs, ys, where="post", color=PARETO_COLOUR, lw=1.8, label="Pareto front")
    ax.scatter(
        [p[0] for p in front],
        [p[1] for p in front],
        c=PARETO_COLOUR,
        edgecolors="black",
        s=60,
        zorder=3,
        label=f"Pareto-optimal ({len(front)})",
    )
    for t in run.pareto:
        ax.annotate(
            f"#{t.number}", (t.latency_ms, t.accuracy), xytext=(4, 4), textcoords="offset points", fontsize=8
        )
    for b in run.baselines:
        ax.scatter([b.latency_ms], [b.accuracy], marker="*", s=160, c="gold", edgecolors="black", zorder=4)
        ax.annotate(
            b.name, (b.latency_ms, b.accuracy), xytext=(5, -11), textcoords="offset points", fontsize=8
        )
    if run.baselines:
        ax.scatter([], [], marker="*", s=160, c="gold", edgecolors="black", label="hand-designed baseline")

    # Trials that were never trained have no accuracy: drawn on a strip below, at their measured latency.
    unplaced = Counter()
    for row, status in enumerate(rows):
        colour, marker, label = STATUS_STYLE[status]
        group = [t for t in run.trials if t.status == status]
        placed = [t for t in group if t.latency_ms is not None]
        unplaced[status] = len(group) - len(placed)
        if placed:
            strip.scatter([t.latency_ms for t in placed], [row] * len(placed), c=colour, marker=marker, s=36)
        if group:  # legend entry on the main axes, with the count
            ax.scatter(
                [],
                [],
                c=colour,
                marker=marker,
                s=36,
                label=f"{label} ({len(group)}; not trained" + ("; strip below)" if with_strip else ")"),
            )
    if with_strip:
        strip.set_yticks(range(len(rows)), rows, fontsize=8)
        strip.set_ylim(-0.6, len(rows) - 0.4)
        strip.grid(axis="x", alpha=0.3)
        ax.tick_params(labelbottom=False)
    strip.set_xlabel(f"latency (ms, {run.profile_name})")
    for axis in {ax, strip}:
        if run.budget_ms:
            axis.axvline(
                run.budget_ms,
                color=BUDGET_COLOUR,
                ls="--",
                lw=1.2,
                label=f"latency budget {run.budget_ms:g} ms" if axis is ax else None,
            )
    ax.set_xlim(left=0, right=right * 1.05)
    ax.set_ylabel("proxy accuracy (validation top-1)")
    ax.set_title(f"Accuracy vs latency: {len(run.trials)} trials of {run.name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    missing = [f"{n} {s}" for s, n in unplaced.items() if n]
    note = f"Not drawn (no latency measured): {', '.join(missing)}." if missing else ""
    return fig, note


def progress_figure(run: RunData) -> tuple[Figure, dict]:
    curves = progress_curves(run)
    fig = Figure(figsize=(11, 6))
    axes = fig.subplots(2, 2, sharey="row")
    span = max(curves["minutes"], default=0.0)
    unit, factor = ("seconds", 60.0) if span < 3 else ("minutes", 1.0)
    curves["elapsed"] = [0.0] + [m * factor for m in curves["minutes"]]
    curves["hv_by_time"] = [0.0] + curves["hv_by_time"]
    curves["best_by_time"] = [None] + curves["best_by_time"]
    series = [
        ("trial", "hv_by_trial", "best_by_trial", "trial number"),
        ("elapsed", "hv_by_time", "best_by_time", f"wall-clock {unit} since the first trial started"),
    ]
    for col, (x_key, hv_key, best_key, xlabel) in enumerate(series):
        xs = curves[x_key]
        axes[0][col].step(xs, curves[hv_key], where="post", color=PARETO_COLOUR, marker=".")
        best = [(x, b) for x, b in zip(xs, curves[best_key]) if b is not None]
        if best:
            axes[1][col].step(
                [b[0] for b in best], [b[1] for b in best], where="post", color="#4c72b0", marker="."
            )
        axes[1][col].set_xlabel(xlabel)
        for row in (0, 1):
            axes[row][col].grid(alpha=0.3)
    axes[0][0].set_ylabel("hypervolume (accuracy x ms)")
    axes[1][0].set_ylabel("best feasible accuracy")
    fig.suptitle(f"Search progress (hypervolume reference latency {curves['reference_ms']:.3g} ms)")
    return fig, curves


# --- capacity allocation -----------------------------------------------------------------------------------


def _stage_names(groups: Sequence[tuple[str, str, Sequence[dict]]]) -> list[str]:
    names: list[str] = []
    for _, _, archs in groups:
        for arch in archs:
            for stage in arch["stages"]:
                if stage["name"] not in names:
                    names.append(stage["name"])
    return names


def _stage(arch: dict, name: str) -> dict | None:
    return next((s for s in arch["stages"] if s["name"] == name), None)


def allocation_values(archs: Sequence[dict], stage: str) -> dict[str, list]:
    """Per-stage capacity of some architectures: widths, depths, kernels, SE flags and primitives of their blocks."""
    out: dict[str, list] = {"width": [], "depth": [], "kernel": [], "se": [], "primitive": []}
    for arch in archs:
        s = _stage(arch, stage)
        if s is None:
            continue
        out["width"].append(s["width"])
        out["depth"].append(len(s["blocks"]))
        for block in s["blocks"]:
            if block.get("kernel") is not None:
                out["kernel"].append(block["kernel"])
            out["se"].append(bool(block.get("se")))
            out["primitive"].append(block["primitive"])
    return out


def allocation_figure(groups: Sequence[tuple[str, str, Sequence[dict]]], title: str) -> Figure:
    """Small multiples: width, depth, kernel, SE share and primitive mix per stage, one bar per group.

    groups: (label, colour, architecture dicts). Numeric panels show the group mean as a bar and every network
    as a dot; the primitive panel stacks each group's share of blocks per primitive.
    """
    stages = _stage_names(groups)
    primitives = sorted(
        {b["primitive"] for _, _, archs in groups for a in archs for s in a["stages"] for b in s["blocks"]}
    )
    fig = Figure(figsize=(15, 3.8))
    axes = fig.subplots(1, 5)
    n = max(len(groups), 1)
    width = 0.8 / n
    hatches = ["", "//", "..", "xx", "\\\\", "oo"]
    for g, (label, colour, archs) in enumerate(groups):
        offset = (g - (n - 1) / 2) * width
        for i, stage in enumerate(stages):
            values = allocation_values(archs, stage)
            x = i + offset
            for ax, key in zip(axes[:3], ("width", "depth", "kernel")):
                data = values[key]
                if data:
                    ax.bar(
                        x,
                        sum(data) / len(data),
                        width * 0.9,
                        color=colour,
                        alpha=0.55,
                        label=label if i == 0 else None,
                    )
                    jitter = [x + width * 0.3 * ((k % 5) - 2) / 2 for k in range(len(data))]
                    ax.scatter(jitter, data, s=9, color="black", zorder=3)
            if values["se"]:
                axes[3].bar(
                    x,
                    100 * sum(values["se"]) / len(values["se"]),
                    width * 0.9,
                    color=colour,
                    alpha=0.8,
                    label=label if i == 0 else None,
                )
            bottom = 0.0
            total = len(values["primitive"])
            for p, primitive in enumerate(primitives):
                share = 100 * values["primitive"].count(primitive) / total if total else 0
                if share:
                    axes[4].bar(
                        x,
                        share,
                        width * 0.9,
                        bottom=bottom,
                        color=PRIMITIVE_COLOURS[p % len(PRIMITIVE_COLOURS)],
                        edgecolor=colour,
                        linewidth=1.2,
                        hatch=hatches[g % len(hatches)],
                    )
                bottom += share
    for p, primitive in enumerate(primitives):
        axes[4].bar([0], [0], color=PRIMITIVE_COLOURS[p % len(PRIMITIVE_COLOURS)], label=primitive)
    titles = [
        "width (channels)",
        "depth (blocks)",
        "kernel size",
        "SE (% of blocks)",
        "primitive (% of blocks)",
    ]
    for ax, text in zip(axes, titles):
        ax.set_title(text, fontsize=10)
        ax.set_xticks(range(len(stages)), stages)
        ax.grid(axis="y", alpha=0.3)
    axes[3].set_ylim(0, 105)
    axes[4].set_ylim(0, 105)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[4].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if n > 1:
        axes[4].set_xlabel("bars left to right: " + ", ".join(label for label, _, _ in groups), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def allocation_groups(run: RunData) -> list[tuple[str, str, list[dict]]]:
    groups = [
        (
            f"Pareto-optimal ({len(run.pareto)})",
            PARETO_COLOUR,
            [t.architecture for t in run.pareto if t.architecture],
        )
    ]
    if run.dominated:
        groups.append(
            (
                f"dominated ({len(run.dominated)})",
                STATUS_STYLE[TrialStatus.COMPLETE][0],
                [t.architecture for t in run.dominated if t.architecture],
            )
        )
    return groups


def trained_points(trials: Sequence[TrialRecord]) -> list[tuple[float, float]]:
    return [
        (t.latency_ms, t.accuracy)
        for t in trials
        if t.status is TrialStatus.COMPLETE and t.accuracy is not None
    ]
