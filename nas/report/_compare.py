"""`write_comparison`: several runs side by side (Pareto fronts and capacity allocation) in compare.html.

Latency axes. Runs on the same hardware profile share one absolute axis (ms). Runs on different profiles
have latency scales that can differ by orders of magnitude (an x86 core vs a Raspberry Pi), so the overlay
then divides each run's latencies by that run's own reference latency (its budget, else its largest trained
latency): 1.0 means "at the run's budget", and fronts compare by shape. A second figure keeps every run on
its own absolute axis, so nothing is hidden by the normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from nas.errors import NasError
from nas.report import _html as H
from nas.report._figures import allocation_figure, front_steps
from nas.report._load import RunData, load_run
from nas.report._report import save_figure
from nas.search import hypervolume

RUN_COLOURS = ["#2ca02c", "#1f77b4", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _labels(runs: Sequence[RunData]) -> list[str]:
    names = [r.run_dir.name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [
        f"{r.run_dir.parent.name}/{r.run_dir.name}" if names.count(r.run_dir.name) > 1 else r.run_dir.name
        for r in runs
    ]


def _overlay(runs: Sequence[RunData], labels: Sequence[str], absolute: bool) -> Figure:
    fig = Figure(figsize=(9, 5.5))
    ax = fig.add_subplot()
    for k, (run, label) in enumerate(zip(runs, labels)):
        colour = RUN_COLOURS[k % len(RUN_COLOURS)]
        scale = 1.0 if absolute else run.reference_latency()[0]
        points = [(t.latency_ms / scale, t.accuracy) for t in run.trained]
        front = [(t.latency_ms / scale, t.accuracy) for t in run.pareto]
        ax.scatter([p[0] for p in points], [p[1] for p in points], color=colour, s=14, alpha=0.3)
        xs, ys = front_steps(front, run.reference_latency()[0] / scale)  # out to the hypervolume reference
        ax.step(xs, ys, where="post", color=colour, lw=1.8, label=f"{label} ({run.profile_name})")
        ax.scatter(
            [p[0] for p in front], [p[1] for p in front], color=colour, edgecolors="black", s=45, zorder=3
        )
        if absolute and run.budget_ms:
            ax.axvline(run.budget_ms, color=colour, ls="--", lw=1)
    if not absolute:
        ax.axvline(1.0, color="black", ls="--", lw=1, label="each run's reference latency")
    ax.set_xlabel(
        "latency (ms)"
        if absolute
        else "latency / the run's reference latency (budget, else its slowest trained trial)"
    )
    ax.set_ylabel("proxy accuracy")
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Pareto fronts (dots: every trained trial; step lines: fronts)")
    return fig


def _small_multiples(runs: Sequence[RunData], labels: Sequence[str]) -> Figure:
    n = len(runs)
    fig = Figure(figsize=(min(5 * n, 20), 4.2))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for k, (ax, run, label) in enumerate(zip(axes, runs, labels)):
        colour = RUN_COLOURS[k % len(RUN_COLOURS)]
        ax.scatter(
            [t.latency_ms for t in run.trained],
            [t.accuracy for t in run.trained],
            color=colour,
            s=14,
            alpha=0.35,
        )
        front = [(t.latency_ms, t.accuracy) for t in run.pareto]
        xs, ys = front_steps(front, run.reference_latency()[0])
        ax.step(xs, ys, where="post", color=colour, lw=1.8)
        ax.scatter(
            [p[0] for p in front], [p[1] for p in front], color=colour, edgecolors="black", s=40, zorder=3
        )
        if run.budget_ms:
            ax.axvline(run.budget_ms, color="black", ls="--", lw=1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(f"latency (ms, {run.profile_name})")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("proxy accuracy")
    fig.tight_layout()
    return fig


def write_comparison(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write `compare.html` (and its PNG figures) into the folder `out` (or to `out` itself if it ends in
    .html), comparing the Pareto fronts and capacity allocations of several runs. Returns the HTML path."""
    if isinstance(run_dirs, (str, Path)) or not run_dirs:
        raise NasError("compare: give at least two run directories (a list of paths)")
    if len(run_dirs) < 2:
        raise NasError(
            f"compare: needs at least two run directories, got one ({run_dirs[0]}); "
            f"for a single run use: nas report {run_dirs[0]}"
        )
    runs = [load_run(d) for d in run_dirs]
    out = Path(out)
    path = out if out.suffix == ".html" else out / "compare.html"
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    labels = _labels(runs)
    profiles = {r.profile_name for r in runs}
    absolute = len(profiles) == 1
    spaces = {r.space_name for r in runs}

    body = [f"<h1>nas comparison of {len(runs)} runs</h1>"]
    if len(spaces) > 1:
        body.append(
            f"<p class=\"note\">These runs searched different spaces ({H.esc(', '.join(sorted(spaces)))}); "
            "stages are matched by name.</p>"
        )
    if absolute:
        common = max(r.reference_latency()[0] for r in runs)
        hv_note = f"hypervolume at one common reference latency, {common:.3g} ms (the largest of the runs' references)"
    else:
        hv_note = (
            "hypervolume on the normalised latency axis (reference 1.0 = each run's own reference latency)"
        )
    rows = []
    for run, label in zip(runs, labels):
        points = [
            (t.accuracy, t.latency_ms / (1.0 if absolute else run.reference_latency()[0]))
            for t in run.trained
        ]
        hv = hypervolume(points, common if absolute else 1.0)
        counts = run.counts()
        rows.append(
            [
                label,
                run.space_name,
                run.profile_name,
                H.fmt_ms(run.budget_ms) or "none",
                len(run.trials),
                ", ".join(f"{n} {s}" for s, n in counts.items() if n),
                len(run.pareto),
                f"{max(t.accuracy for t in run.pareto):.4f}",
                H.fmt_ms(min(t.latency_ms for t in run.pareto)),
                f"{hv:.4g}",
                str(run.run_dir.resolve()),
            ]
        )
    body.append(
        H.table(
            [
                "run",
                "space",
                "profile",
                "budget (ms)",
                "trials",
                "status",
                "Pareto size",
                "best accuracy",
                "fastest Pareto (ms)",
                "hypervolume",
                "directory",
            ],
            rows,
            sortable=True,
            numeric=(3, 4, 6, 7, 8, 9),
        )
    )
    body.append(f"<p class=\"note\">Hypervolume column: {H.esc(hv_note)}.</p>")

    axis_note = (
        "All runs use the profile " + H.esc(next(iter(profiles))) + ", so the fronts share one absolute "
        "latency axis (dashed lines: budgets)."
        if absolute
        else "The runs use different hardware profiles (" + H.esc(", ".join(sorted(profiles))) + "), whose "
        "latencies are not comparable in ms, so each run's latencies are divided by its own reference "
        "latency (its budget, else its slowest trained trial): 1.0 is each run's budget, and the fronts "
        "compare by shape. The next figure keeps each run on its own absolute axis."
    )
    body.append("<h2>Pareto fronts</h2>")
    body.append(
        save_figure(
            _overlay(runs, labels, absolute), folder, "compare_fronts.png", "Pareto fronts", axis_note
        )
    )
    body.append(
        save_figure(
            _small_multiples(runs, labels),
            folder,
            "compare_fronts_per_run.png",
            "Pareto front per run",
            "Each run on its own absolute latency axis (ms on its profile).",
        )
    )
    groups = [
        (
            f"{label} ({len(run.pareto)})",
            RUN_COLOURS[k % len(RUN_COLOURS)],
            [t.architecture for t in run.pareto if t.architecture],
        )
        for k, (run, label) in enumerate(zip(runs, labels))
    ]
    body.append("<h2>Capacity allocation of the Pareto-optimal networks</h2>")
    body.append(
        save_figure(
            allocation_figure(groups, "Pareto-optimal networks per run"),
            folder,
            "compare_allocation.png",
            "capacity allocation per run",
            "One bar per run (left to right in the order of the table) for each stage: where each "
            "run's winners put width, depth, kernel size, squeeze-excitation and which primitives "
            "they use. Bars = mean, dots = individual Pareto-optimal networks; the primitive panel "
            "shows shares of blocks, hatched differently per run.",
        )
    )
    body.append(
        "<footer><p>MACs are counted by fvcore and exclude element-wise operations. Accuracy is proxy "
        "accuracy from a short seeded training run. This page is self-contained and opens offline.</p></footer>"
    )
    H.write_file(path, H.page(f"nas comparison: {', '.join(labels)}", "\n".join(body)).encode("utf-8"))
    return path
