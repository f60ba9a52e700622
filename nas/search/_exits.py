"""Early exits in a search: the latency objective of a candidate with exits is its expected latency.

Before training (the latency phase, with nothing else running), each segment of the untrained network is
measured by the profile's protocol or predicted by its model (latency does not depend on the weights);
after training, the shares of validation images leaving at each calibrated exit (`TrainingResult.exits`)
weigh them. The latency budget and the pre-screening see the whole network's latency, known before
training; the objective told to the study is the expected one.
"""

from __future__ import annotations

from typing import Any

from nas.records import Attr

EXIT_SEGMENT_MS = "exit_segment_ms"  # each segment's latency (ms), before training
EXIT_SEGMENT_INTERVAL = "exit_segment_interval_ms"  # predicted: each segment's [low, high]
EXITS = "exits"  # the calibration (thresholds, shares, accuracies) and the expected latency
LATENCY_WHOLE_MS = "latency_whole_ms"  # the whole network's latency, every image to the final exit


def exit_segment_attrs(arch, num_classes: int, profile, latency_mode: str, seed: int) -> dict[str, Any]:
    """The segments' latencies of a candidate with exits (nothing for one without)."""
    if not arch.exits:
        return {}
    if latency_mode not in ("measured", "predicted"):
        raise ValueError(
            f"early exits: the expected latency is measured here or predicted, not with --latency {latency_mode}"
        )
    from nas.builder import build_model
    from nas.exits import export_segments, segment_latencies

    graphs = export_segments(build_model(arch, num_classes, seed=seed), arch.resolution)
    per = segment_latencies(graphs, profile, latency_mode)
    attrs: dict[str, Any] = {EXIT_SEGMENT_MS: [s["latency_ms"] for s in per]}
    if all(s["low_ms"] is not None for s in per):
        attrs[EXIT_SEGMENT_INTERVAL] = [[s["low_ms"], s["high_ms"]] for s in per]
    return attrs


def expected_latency_attrs(attrs: dict[str, Any], exits: dict) -> dict[str, Any]:
    """The trained candidate's attrs with its latency objective made the expected latency."""
    from nas.exits import expected_latency

    if EXIT_SEGMENT_MS not in attrs:
        raise ValueError("early exits: the candidate's segments were not measured before training")
    interval = attrs.get(EXIT_SEGMENT_INTERVAL)
    expected = expected_latency(
        exits["shares"],
        attrs[EXIT_SEGMENT_MS],
        [low for low, _ in interval] if interval else None,
        [high for _, high in interval] if interval else None,
    )
    out: dict[str, Any] = {
        EXITS: {**exits, "expected_latency": expected.to_dict()},
        LATENCY_WHOLE_MS: attrs[Attr.LATENCY_MS],
        Attr.LATENCY_MS: expected.expected_ms,
    }
    if expected.low_ms is not None:
        out[Attr.LATENCY_LOW_MS], out[Attr.LATENCY_HIGH_MS] = expected.low_ms, expected.high_ms
    return out
