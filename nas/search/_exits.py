"""Early exits in a search: the latency of a candidate with exits is its expected latency.

Before training (the latency phase, with nothing else running), each segment of the untrained network is
measured by the profile's protocol or predicted by its model (latency does not depend on the weights), and
predicted by the model of every fleet device with a budget (`--budget`, and the auto budget a measured
search checks on the profile's prediction). After training, the shares of validation images leaving at
each calibrated exit (`TrainingResult.exits`) weigh them into the expected latency.

Budgets (`budget_latency`): before training the shares are unknown, and the expected latency is a
weighted mean of the latencies up to each exit, so it is at least the latency up to the first exit (every
image leaving there); nothing tighter holds without the trained weights (an early exit as accurate as the
final one may take every image within any accuracy bound). A candidate is rejected before training only
when that bound is over a budget; after training it is judged on its expected latency.

Pre-screening (`screening_latency`) cannot use the bound (it would favour every candidate with exits): it
estimates the expected latency as the whole network's latency times the mean ratio expected / whole of
the candidates with exits trained so far in the run, and uses the whole network's latency until one has
trained (what a cascade costs when no image leaves early, but for the segments' own call overheads).
"""

from __future__ import annotations

from statistics import fmean
from typing import Any, Iterable

from nas.records import Attr, fleet_key

EXIT_SEGMENT_MS = "exit_segment_ms"  # each segment's latency (ms), before training
EXIT_SEGMENT_INTERVAL = "exit_segment_interval_ms"  # predicted: each segment's [low, high]
EXITS = "exits"  # the calibration (thresholds, shares, accuracies) and the expected latency
SCREENING_MS = "exit_screening_ms"  # the latency pre-screening saw: an estimate of the expected latency


def exit_segment_attrs(
    arch, num_classes: int, profile, latency_mode: str, seed: int, fleet: Iterable[Any] = ()
) -> dict[str, Any]:
    """The segments' latencies of a candidate with exits (nothing for one without): on the search's profile
    as its latency is had, and predicted on each profile of `fleet` (under `exit_segment_ms@PROFILE`)."""
    if not arch.exits:
        return {}
    if latency_mode not in ("measured", "predicted"):
        raise ValueError(
            f"early exits: the expected latency is measured here or predicted, not with --latency {latency_mode}"
        )
    from nas.builder import build_model
    from nas.exits import export_segments

    graphs = export_segments(build_model(arch, num_classes, seed=seed), arch.resolution)
    attrs = _segment_attrs(graphs, profile, latency_mode, None)
    for other in fleet:
        attrs.update(_segment_attrs(graphs, other, "predicted", other.name))
    return attrs


def _segment_attrs(graphs: list[bytes], profile, mode: str, fleet_name: str | None) -> dict[str, Any]:
    from nas.exits import segment_latencies

    per = segment_latencies(graphs, profile, mode)
    attrs: dict[str, Any] = {_on(EXIT_SEGMENT_MS, fleet_name): [s["latency_ms"] for s in per]}
    if all(s["low_ms"] is not None for s in per):
        attrs[_on(EXIT_SEGMENT_INTERVAL, fleet_name)] = [[s["low_ms"], s["high_ms"]] for s in per]
    return attrs


def budget_latency(attrs: dict[str, Any], profile_name: str | None = None) -> tuple[float, str]:
    """(the latency a budget judges, what it is): the expected latency of a trained candidate with exits,
    the latency up to its first exit before training (a lower bound of the expected one), else the latency.
    `profile_name`: of that fleet device (`latency_ms@PROFILE`)."""
    latency = attrs[_on(Attr.LATENCY_MS, profile_name)]
    if EXITS in attrs:
        return (
            latency,
            f"expected latency (whole network {attrs[_on(Attr.LATENCY_WHOLE_MS, profile_name)]:.3f} ms)",
        )
    if _on(EXIT_SEGMENT_MS, profile_name) in attrs:
        first = attrs[_on(EXIT_SEGMENT_MS, profile_name)][0]
        return first, f"latency up to the first exit (whole network {latency:.3f} ms)"
    return latency, "latency"


def expected_latency_attrs(attrs: dict[str, Any], exits: dict, budget_ms: float | None) -> dict[str, Any]:
    """The trained candidate's attrs with its latency on the search's profile, and on each fleet device
    whose segments were predicted, made the expected latency (its interval, when predicted, and whether
    that holds `budget_ms`, the search's budget); the whole network's kept as `latency_whole_ms[@PROFILE]`."""
    from nas.exits import expected_latency

    if EXIT_SEGMENT_MS not in attrs:
        raise ValueError("early exits: the candidate's segments were not measured before training")
    out: dict[str, Any] = {}
    for name in [None] + [k.partition("@")[2] for k in attrs if k.startswith(f"{EXIT_SEGMENT_MS}@")]:
        interval = attrs.get(_on(EXIT_SEGMENT_INTERVAL, name))
        expected = expected_latency(
            exits["shares"],
            attrs[_on(EXIT_SEGMENT_MS, name)],
            [low for low, _ in interval] if interval else None,
            [high for _, high in interval] if interval else None,
        )
        if name is None:
            out[EXITS] = {**exits, "expected_latency": expected.to_dict()}
        out[_on(Attr.LATENCY_WHOLE_MS, name)] = attrs[_on(Attr.LATENCY_MS, name)]
        out[_on(Attr.LATENCY_MS, name)] = expected.expected_ms
        if expected.low_ms is not None:
            out[_on(Attr.LATENCY_LOW_MS, name)] = expected.low_ms
            out[_on(Attr.LATENCY_HIGH_MS, name)] = expected.high_ms
    if budget_ms is not None and out.get(Attr.LATENCY_LOW_MS) is not None:  # the usual marking, anew
        out[Attr.LATENCY_STRADDLES_BUDGET] = (
            out[Attr.LATENCY_LOW_MS] <= budget_ms <= out[Attr.LATENCY_HIGH_MS]
        )
    return out


def _on(attr: str, profile: str | None) -> str:
    """`attr`'s key on the fleet device `profile` (`latency_ms@PROFILE`), or on the search's profile (None)."""
    return fleet_key(attr, profile) if profile else attr


def screening_latency(cand) -> float:
    """The latency pre-screening ranks `cand` (a `Candidate`) by: its estimated expected latency when it has
    exits (`screening_attrs`), else its latency."""
    return cand.attrs.get(SCREENING_MS, cand.attrs[Attr.LATENCY_MS])


def screening_attrs(attrs: dict[str, Any], trials: Iterable[Any]) -> dict[str, Any]:
    """For a candidate with exits before training: its whole latency times the mean ratio expected / whole
    of the candidates with exits trained so far (`trials`: Optuna FrozenTrials); 1 while none has."""
    if EXIT_SEGMENT_MS not in attrs:
        return {}
    ratios = [
        t.user_attrs[Attr.LATENCY_MS] / t.user_attrs[Attr.LATENCY_WHOLE_MS]
        for t in trials
        if EXITS in t.user_attrs
        and t.user_attrs.get(Attr.LATENCY_WHOLE_MS)
        and t.user_attrs.get(Attr.DUPLICATE_OF) is None
    ]
    return {SCREENING_MS: attrs[Attr.LATENCY_MS] * (fmean(ratios) if ratios else 1.0)}
