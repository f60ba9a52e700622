"""Latency per stage of one network on every hardware profile: measured here, or predicted by a latency model.

The network is cut into its stem, each stage and the head (1x1 head conv, pooling, classifier); each part
is exported on its own with its real input shape (the fast TorchScript exporter, as in the search) and then
measured with the profile's protocol (`latency: measured`) or predicted by the profile (its model, with
its prior for node kinds the device never measured; the whole network's interval and extrapolated share
become notes). The whole network is measured or predicted too, so the sum of the parts can
be compared with it. A measured part pays its own session call overhead, so the measured parts add up to
a bit more than the whole network. A latency model with a fixed per-inference cost (`overhead_ms`) would
count it once per part: it is taken out of every part and shown once, as the part "overhead".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure

from nas.records import TrialRecord, TrialStatus
from nas.report._load import RunData

OVERHEAD_PART = "overhead"
PROFILE_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860"]


@dataclass
class ProfileBreakdown:
    name: str
    kind: str  # "measured" (on this machine, now) | "predicted"
    part_ms: list[float | None]
    whole_ms: float | None
    notes: list[str] = field(default_factory=list)
    overhead_ms: float = 0.0  # a latency model's fixed per-inference cost (its own bar, see OVERHEAD_PART)


@dataclass
class Breakdown:
    trial: TrialRecord
    parts: list[str]
    shapes: list[tuple[int, ...]]
    profiles: list[ProfileBreakdown]
    skipped: list[str]  # "name: why"


def choose_network(run: RunData, network: int | None) -> TrialRecord:
    from nas.errors import NasError

    if network is None:
        return max(run.pareto, key=lambda t: (t.accuracy, -t.latency_ms))
    match = [t for t in run.trials if t.number == network]
    if not match:
        raise NasError(f"{run.run_dir}: no trial number {network} (trials 0-{len(run.trials) - 1})")
    if match[0].status is not TrialStatus.COMPLETE or not match[0].architecture:
        raise NasError(f"{run.run_dir}: trial {network} is {match[0].status}, not a trained network")
    return match[0]


def resolve_profiles(run: RunData, profiles: Sequence[Any] | None) -> tuple[list[Any], list[str]]:
    """The profiles to break latency down on: given ones (names, paths or profile objects), else the run's
    own profile followed by every built-in profile. Returns (profiles, notes on ones that could not load)."""
    from nas.latency import list_profiles, load_profile

    notes: list[str] = []
    chosen: list[Any] = []
    if profiles is None:
        own = run.config.get("profile") or {}
        candidates: list[Any] = []
        path = own.get("path")
        candidates.append(
            path if path and Path(path).is_file() else own.get("name") or run.search.get("profile")
        )
        try:
            candidates.extend(list_profiles())
        except Exception as exc:  # a broken built-in profile must not stop the report
            notes.append(f"built-in profiles: {exc}")
    else:
        candidates = list(profiles)
    for item in candidates:
        if item is None:
            continue
        try:
            profile = load_profile(item) if isinstance(item, (str, Path)) else item
        except Exception as exc:
            if profiles is not None:  # asked for by name: a mistake to report, not a note
                raise
            notes.append(f"{item}: {exc}")
            continue
        if profile.name not in {p.name for p in chosen}:
            chosen.append(profile)
    return chosen, notes


def _parts(arch_dict: dict, num_classes: int):
    import torch
    from torch import nn

    from nas.builder import build_model
    from nas.space import Architecture

    arch = Architecture.from_dict(arch_dict)
    net = build_model(arch, num_classes, seed=0).eval()
    modules = [("stem", net.stem)] + [(s.name, m) for s, m in zip(arch.stages, net.stages)]
    modules.append(("head", nn.Sequential(net.head, net.pool, nn.Flatten(1), net.dropout, net.classifier)))
    shapes, x = [], torch.zeros(1, 3, arch.resolution, arch.resolution)
    with torch.no_grad():
        for _, module in modules:
            shapes.append(tuple(x.shape))
            x = module(x)
    return arch, net, modules, shapes


def latency_breakdown(
    run: RunData, network: int | None = None, profiles: Sequence[Any] | None = None
) -> Breakdown:
    from nas.latency import measure_latency
    from nas.onnx_io import export_onnx

    trial = choose_network(run, network)
    num_classes = int((run.config.get("dataset") or {}).get("num_classes") or 10)
    arch, net, modules, shapes = _parts(trial.architecture, num_classes)
    onnx_parts: list[bytes | Exception] = []
    for (name, module), shape in zip(modules, shapes):
        try:
            onnx_parts.append(export_onnx(module, arch.resolution, fast=True, input_shape=shape))
        except Exception as exc:
            onnx_parts.append(exc)
    whole = export_onnx(net, arch.resolution, fast=True)
    chosen, skipped = resolve_profiles(run, profiles)
    results = []
    for profile in chosen:
        model = getattr(profile, "latency_model", None)
        overhead = 0.0
        if getattr(profile, "latency", None) == "measured":
            kind, estimate = (
                "measured",
                lambda data, p=profile: measure_latency(data, p.measurement).median_ms,
            )
        elif model is not None:
            overhead = float(getattr(model, "overhead_ms", 0.0) or 0.0)
            # a profile prices the kinds its device never measured by its prior (never at zero)
            kind, estimate = (
                "predicted",
                (lambda data, p=profile: p.predict(data).latency_ms)
                if hasattr(profile, "predict")
                else (lambda data, m=model: float(m.predict(data))),
            )
        else:
            skipped.append(
                f"{profile.name}: latency is {getattr(profile, 'latency', '?')} and the profile has no "
                "latency model, so neither measured nor predicted"
            )
            continue
        breakdown = ProfileBreakdown(profile.name, kind, [], None)
        for (name, _), data in zip(modules, onnx_parts):
            if isinstance(data, Exception):
                breakdown.part_ms.append(None)
                breakdown.notes.append(f"{name}: export failed ({type(data).__name__}: {data})")
                continue
            try:  # a model's fixed per-inference cost is one bar of its own, not paid once per part
                breakdown.part_ms.append(estimate(data) - overhead)
            except Exception as exc:
                breakdown.part_ms.append(None)
                breakdown.notes.append(f"{name}: {type(exc).__name__}: {exc}")
        try:
            breakdown.whole_ms = estimate(whole)
            if kind == "predicted" and hasattr(profile, "predict"):
                breakdown.notes.extend(_prediction_notes(profile.predict(whole)))
        except Exception as exc:
            breakdown.notes.append(f"whole network: {type(exc).__name__}: {exc}")
        breakdown.overhead_ms = overhead
        results.append(breakdown)
    parts = [name for name, _ in modules]
    if any(r.overhead_ms for r in results):
        parts.append(OVERHEAD_PART)
        shapes.append(())
        for r in results:
            r.part_ms.append(r.overhead_ms if r.kind == "predicted" else None)
    return Breakdown(trial, parts, shapes, results, skipped)


def _prediction_notes(prediction) -> list[str]:
    """What the user should know about a whole-network prediction: its interval and what is extrapolated."""
    notes = []
    if prediction.low_ms is not None:
        notes.append(
            f"whole network: {100 * prediction.level:.0f}% interval {prediction.low_ms:.3g}-"
            f"{prediction.high_ms:.3g} ms"
        )
    if prediction.uncovered:
        notes.append(
            f"whole network: {100 * prediction.extrapolated_share:.0f}% of the prediction is extrapolated "
            f"(node kinds this device never measured, priced by the profile's prior: "
            f"{', '.join(prediction.uncovered)})"
        )
    return notes


def breakdown_figure(b: Breakdown) -> Figure:
    """Per part: absolute ms (left) and share of the profile's total (right), one bar per profile."""
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 2)
    n = max(len(b.profiles), 1)
    width = 0.8 / n
    for k, p in enumerate(b.profiles):
        colour = PROFILE_COLOURS[k % len(PROFILE_COLOURS)]
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(b.parts))]
        ms = [v if v is not None else 0.0 for v in p.part_ms]
        total = sum(ms) or 1.0
        label = f"{p.name} ({p.kind})"
        axes[0].bar(xs, ms, width * 0.9, color=colour, label=label)
        axes[1].bar(xs, [100 * v / total for v in ms], width * 0.9, color=colour, label=label)
    values = [v for p in b.profiles for v in p.part_ms if v]
    log = bool(values) and max(values) / min(values) > 30  # devices orders of magnitude apart
    if log:
        axes[0].set_yscale("log")
    axes[0].set_ylabel("ms" + (" (log scale)" if log else ""))
    axes[0].set_title("latency per part (absolute)", fontsize=10)
    axes[1].set_ylabel("% of the sum of the parts")
    axes[1].set_title("latency per part (share of total, per profile)", fontsize=10)
    for ax in axes:
        ax.set_xticks(range(len(b.parts)), b.parts)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Latency breakdown of trial #{b.trial.number} ({b.trial.summary})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    if b.profiles:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="upper center",
            ncol=len(b.profiles),
            fontsize=8,
            bbox_to_anchor=(0.5, 0.93),
            frameon=False,
        )
    return fig
