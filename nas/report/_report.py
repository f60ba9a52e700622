"""`write_report`: one run directory -> report/index.html (self-contained) + the PNG figures next to it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from nas.records import TrialStatus
from nas.report import _html as H
from nas.report._breakdown import Breakdown, breakdown_figure, latency_breakdown
from nas.report._calibration import calibration_figure, calibration_points, relative_errors
from nas.report._exits import exits_section, trained_over_budget
from nas.report._figures import (
    allocation_figure,
    allocation_groups,
    pareto_figure,
    png_bytes,
    progress_figure,
)
from nas.report._load import BASELINES_FORMAT, RunData, load_run

FIGURES = ("pareto.png", "progress.png", "calibration.png", "allocation.png", "latency_breakdown.png")
MACS_NOTE = (
    "MACs and params are counted by fvcore: one multiply-accumulate of a convolution or linear layer counts "
    "once; element-wise operations (activations, residual adds, the squeeze-excitation multiply) count zero, "
    "and batch norm is folded into the convolution at export."
)


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    network: int | None = None,
    profiles: Sequence[Any] | None = None,
) -> Path:
    """Write `index.html` and its PNG figures into `out` (default `RUN_DIR/report`); return the HTML path.

    `network`: the trial number whose latency is broken down per stage (default: the most accurate
    Pareto-optimal network). `profiles`: profile names, paths or loaded profiles for that breakdown
    (default: the run's profile and every built-in one).
    """
    run = load_run(run_dir)
    out = Path(out) if out is not None else run.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for stale in FIGURES:  # a figure this report does not draw must not linger from an earlier one
        (out / stale).unlink(missing_ok=True)
    breakdown = latency_breakdown(run, network, profiles)
    sections = [
        _header(run),
        _pareto_section(run, out),
        _table_section(run, out),
        exits_section(run),  # "" for a run without exits
        _progress_section(run, out),
        _calibration_section(run, out),
        _allocation_section(run, out),
        _breakdown_section(breakdown, out),
        _footer(),
    ]
    path = out / "index.html"
    H.write_file(path, H.page(f"nas report: {run.name}", "\n".join(sections)).encode("utf-8"))
    return path


def save_figure(fig, out: Path, filename: str, alt: str, caption: str) -> str:
    png = png_bytes(fig)
    H.write_file(out / filename, png)
    return H.figure(filename, png, alt, caption)


def _header(run: RunData) -> str:
    s, counts = run.search, run.counts()
    dataset = run.config.get("dataset") or {}
    status = ", ".join(
        f"{n} {name}"
        for name, n in counts.items()
        if n or name not in (TrialStatus.RUNNING, TrialStatus.SCREENED_OUT, TrialStatus.STOPPED_EARLY)
    )
    duplicates = sum(1 for t in run.trials if t.duplicate_of is not None)
    pairs = [
        ("run directory", str(run.run_dir.resolve())),
        ("search space", f"{run.space_name} ({s.get('space')})"),
        ("hardware profile", f"{run.profile_name} (latency {run.latency_kind})"),
        (
            "dataset",
            f"{s.get('dataset')}: {dataset.get('num_classes', '?')} classes, "
            f"{dataset.get('num_train', '?')} train / {dataset.get('num_val', '?')} validation images",
        ),
        (
            "trials",
            f"{len(run.trials)} in the study ({s.get('trials')} requested): {status}"
            + (f"; {duplicates} duplicates reused an earlier result" if duplicates else ""),
        ),
        ("Pareto-optimal", f"{len(run.pareto)} of {len(run.trained)} distinct trained networks"),
        ("sampler", f"{s.get('sampler')} (population {s.get('population')}, seed {s.get('seed')})"),
        ("proxy training", f"{s.get('epochs')} epochs of {s.get('train_subset') or 'all'} images"),
        (
            "constraints",
            ", ".join(
                f"{k} {s[k]:g}"
                for k in ("latency_budget_ms", "max_params", "max_macs", "max_energy_mj")
                if s.get(k) is not None
            )
            or "none",
        ),
    ]
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"<header><h1>nas report: {H.esc(run.name)}</h1>\n<p class=\"note\">generated {H.esc(stamp)}</p>\n"
        f"{H.settings_table(pairs)}</header>"
    )


def _pareto_section(run: RunData, out: Path) -> str:
    fig, note = pareto_figure(run)
    budget = (
        (
            f" The dashed vertical line is the latency budget ({run.budget_ms:g} ms, from "
            "<code>config.json</code> <code>search.latency_budget_ms</code>)."
        )
        if run.budget_ms
        else " No latency budget was set."
    )
    baselines = (
        " Gold stars: hand-designed baselines from <code>baselines.json</code>."
        if run.baselines
        else " Hand-designed baselines can be added as <code>RUN_DIR/baselines.json</code>."
    )
    caption = (
        f"Every trial coloured by status. Trained trials at ({run.latency_kind} latency on {H.esc(run.profile_name)}, "
        "proxy accuracy); the green step line is the Pareto front (the best accuracy reachable at each "
        "latency). Infeasible, failed and interrupted trials were never trained, so they have no accuracy: "
        "those with a measured latency sit in the strip below the plot (infeasible ones rejected by a "
        f"size constraint were never measured).{_exits_caveat(run)} {H.esc(note)}{budget}{baselines} "
        f"Format: {H.esc(BASELINES_FORMAT)}"
    )
    return "<h2>Accuracy-latency Pareto front</h2>\n" + save_figure(
        fig, out, "pareto.png", "Pareto front", caption
    )


def _exits_caveat(run: RunData) -> str:
    """What the caption says of candidates with exits trained, then infeasible (nothing when there are none)."""
    over = trained_over_budget(run)
    if not over:
        return ""
    return (
        f" Except {len(over)} with early exits: trained, then infeasible on their expected latency (shown at it; "
        "see Early exits)."
    )


def _energy_cell(trial) -> str:
    if trial.energy_mj is None:
        return ""
    if trial.energy_low_mj is None:
        return f"{trial.energy_mj:.2f}"
    return f"{trial.energy_mj:.2f} ({trial.energy_low_mj:.2f}-{trial.energy_high_mj:.2f})"


def _table_section(run: RunData, out: Path) -> str:
    exported = (run.run_dir / "export").is_dir()
    fleet = sorted({k for t in run.pareto for k in t.fleet_latencies if k.startswith("latency_ms@")})
    energy = any(t.energy_mj is not None for t in run.pareto)  # a profile with an energy model
    headers = (
        ["trial", "accuracy", "latency (ms)"]
        + [f"on {key.partition('@')[2]} (ms)" for key in fleet]  # --budget's other devices
        + (["energy (mJ, 90% interval)"] if energy else [])
        + ["params", "MACs", "summary"]
        + (["ONNX", "model card"] if exported else [])
    )
    rows = []
    for t in run.pareto:
        row: list[object] = [
            (str(t.number), t.number),
            (f"{t.accuracy:.4f}", t.accuracy),
            (H.fmt_ms(t.latency_ms), t.latency_ms),
            *((H.fmt_ms(t.extra.get(key)), t.extra.get(key) or 0) for key in fleet),
            *([(_energy_cell(t), t.energy_mj or 0)] if energy else []),
            (H.fmt_int(t.params), t.params or 0),
            (H.fmt_int(t.macs), t.macs or 0),
            t.summary,
        ]
        if exported:
            directory = run.exports.get(t.arch_hash or "")
            if directory is None:
                row += ["not exported (re-run nas export)", ""]
            else:
                link = os.path.relpath(directory / "model.onnx", out).replace(os.sep, "/")
                row.append(
                    (f"<a href=\"{H.esc(link)}\">{H.esc(directory.name)}/model.onnx</a>", directory.name)
                )
                card = directory / "model_card.md"
                card_link = os.path.relpath(card, out).replace(os.sep, "/")
                row.append((f"<a href=\"{H.esc(card_link)}\">model_card.md</a>", 1) if card.is_file() else "")
        rows.append(row)
    note = (
        "Links are relative to this page (they work while the report stays in the run directory)."
        if exported
        else "Run <code>nas export RUN_DIR</code> to add links to the ONNX models."
    )
    return (
        "<h2>Pareto-optimal networks</h2>\n<p class=\"note\">Click a column header to sort. "
        + note
        + "</p>\n"
        + H.table(headers, rows, sortable=True, numeric=tuple(range(5 + len(fleet))), css_id="pareto-table")
    )


def _progress_section(run: RunData, out: Path) -> str:
    fig, curves = progress_figure(run)
    _, which = run.reference_latency()
    caption = (
        "Hypervolume: the area (accuracy x ms) dominated by the trained trials so far, bounded by accuracy 0 "
        f"and a reference latency, here {H.esc(which)}; trials slower than the reference add nothing. "
        "Best feasible accuracy: the most accurate trained (constraint-satisfying) trial so far. Left: after "
        "each trial, by trial number; right: against the wall-clock time at which trials finished (since the "
        "first trial started; parallel workers finish out of order, and a resumed run shows the "
        "pause as a gap). Compare hypervolumes of runs only with the same reference latency."
    )
    return "<h2>Search progress</h2>\n" + save_figure(fig, out, "progress.png", "search progress", caption)


def _calibration_section(run: RunData, out: Path) -> str:
    """A hybrid search's online calibration; nothing for a run without predictions checked on a device."""
    points = calibration_points(run.trials)
    fallback = sum(t.latency_source == "fallback" for t in run.trials)
    if not points:
        return ""
    errors = relative_errors(points)
    half = len(errors) // 2
    caption = (
        "Each trained candidate was predicted by the profile's model, refitted on every device measurement "
        "before it, then measured on the device: a held-out prediction. Left: predicted against measured "
        "(on the line: exact). Right: each prediction's error, in the order of the measurements, and the "
        f"running MAPE. MAPE of the first {len(errors) - half} predictions {errors[: len(errors) - half].mean():.1f}%"
        + (f", of the last {half} {errors[len(errors) - half :].mean():.1f}%" if half else "")
        + "."
        + (
            f" {fallback} trial(s) kept their prediction: the device node had left (latency_source fallback)."
            if fallback
            else ""
        )
    )
    figure = calibration_figure(points, run.profile_name)
    return "<h2>Latency model calibration</h2>\n" + save_figure(
        figure, out, "calibration.png", "latency model calibration", caption
    )


def _allocation_section(run: RunData, out: Path) -> str:
    groups = allocation_groups(run)
    fig = allocation_figure(
        groups, f"Capacity allocation per stage: Pareto-optimal vs dominated ({run.name})"
    )
    caption = (
        "Where the networks put their capacity, stage by stage, for the Pareto-optimal networks (green) and "
        "the dominated trained ones (blue). Width, depth and kernel: bar = mean, dots = individual networks "
        "(kernel and SE over blocks; skip blocks have no kernel). SE: share of blocks with "
        "squeeze-excitation. Primitive: share of blocks per primitive (hatched bars: dominated networks). "
        "Duplicates and untrained trials are left out."
    )
    return "<h2>Capacity allocation</h2>\n" + save_figure(
        fig, out, "allocation.png", "capacity allocation", caption
    )


def _breakdown_section(b: Breakdown, out: Path) -> str:
    html = [f"<h2>Latency breakdown of trial #{b.trial.number}</h2>"]
    html.append(
        f"<p class=\"note\">{H.esc(b.trial.summary)}: accuracy {b.trial.accuracy:.4f}, "
        f"{H.fmt_ms(b.trial.latency_ms)} ms in the search. Parts: "
        + ", ".join(f"{H.esc(n)} (input {'x'.join(map(str, s))})" for n, s in zip(b.parts, b.shapes) if s)
        + ".</p>"
    )
    if b.profiles:
        caption = (
            "Each part (stem, every stage, head = head conv + pooling + classifier) exported on its own with "
            "its real input shape and measured with the profile's protocol on the machine that wrote this "
            "report (<i>measured</i>) or predicted by the profile's latency model (<i>predicted</i>). Each "
            "separately measured part pays its own call overhead, so measured parts add up to a little more "
            "than the whole network (table below); a latency model's fixed per-inference cost is taken out "
            "of every part and shown once as <i>overhead</i>. Right: each part's share of its profile's total, which "
            "compares devices whose absolute speeds differ by orders of magnitude."
        )
        html.append(
            save_figure(breakdown_figure(b), out, "latency_breakdown.png", "latency breakdown", caption)
        )
        headers = (
            ["profile", "how"] + [f"{p} (ms)" for p in b.parts] + ["sum of parts (ms)", "whole network (ms)"]
        )
        rows = []
        for p in b.profiles:
            parts = [H.fmt_ms(v) for v in p.part_ms]
            total = sum(v for v in p.part_ms if v is not None)
            rows.append([p.name, p.kind, *parts, H.fmt_ms(total), H.fmt_ms(p.whole_ms)])
        html.append(H.table(headers, rows, numeric=range(2, len(headers))))
        for p in b.profiles:
            html += [f"<p class=\"note\">{H.esc(p.name)}: {H.esc(n)}</p>" for n in p.notes]
    else:
        html.append("<p class=\"note\">No profile could measure or predict latency.</p>")
    if b.skipped:
        html.append("<p class=\"note\">Skipped profiles: " + "; ".join(H.esc(s) for s in b.skipped) + ".</p>")
    return "\n".join(html)


def _footer() -> str:
    return (
        f"<footer><p>{H.esc(MACS_NOTE)}</p><p>Accuracy is the proxy accuracy of a short seeded training run "
        "(validation top-1), not the accuracy of a fully trained network. Written by <code>nas report</code>; "
        "this page is self-contained (figures embedded) and opens offline.</p></footer>"
    )
