"""A network with early exits cut into segments, one ONNX graph each, and its expected latency.

Segment k runs from the previous exit's stage (the image, for the first) through the stage of exit k and
returns `features` (that stage's output) and `logits` (its exit head's); the last segment runs the rest of
the network to the final classifier and returns `logits`. The cascade (`nas.runtime.ExitCascade`) runs
segment k only on images no earlier exit took, so an image leaving at exit k costs segments 0..k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nas.onnx_io import INPUT_NAME, export_onnx

SEGMENT_NAME = "exit_segment_{}.onnx"


class _Segment(nn.Module):
    def __init__(self, layers: list[nn.Module], exit_head: nn.Module | None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.exit_head = exit_head

    def forward(self, x: torch.Tensor):
        x = self.layers(x)
        if self.exit_head is None:
            return x
        return x, self.exit_head(x)


class _Final(nn.Module):
    def __init__(self, network: nn.Module, stages: list[nn.Module]):
        super().__init__()
        self.stages = nn.Sequential(*stages)
        self.head, self.pool, self.classifier = network.head, network.pool, network.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.head(self.stages(x))), 1))


def split_segments(network: nn.Module) -> list[nn.Module]:
    """The segments of a `nas.builder.Network` with exits, sharing its weights (eval mode: no dropout)."""
    arch = network.arch
    segments: list[nn.Module] = []
    layers: list[nn.Module] = [network.stem]
    for spec, stage in zip(arch.stages, network.stages):
        layers.append(stage)
        if spec.name in arch.exits:
            segments.append(_Segment(layers, network.exits[spec.name]))
            layers = []
    segments.append(_Final(network, layers))
    return [segment.train(network.training) for segment in segments]  # a new wrapper starts in train mode


def export_segments(network: nn.Module, resolution: int) -> list[bytes]:
    """ONNX graphs of the segments (dynamic batch, input `input`; outputs `features` and `logits`, the last
    `logits`), exported as the search exports candidates (`export_onnx(fast=True)`, batch norm folded)."""
    graphs = []
    x = torch.zeros(1, 3, resolution, resolution)
    network.eval()
    with torch.no_grad():
        for segment in split_segments(network):
            outputs = ("features", "logits") if isinstance(segment, _Segment) else ("logits",)
            graphs.append(
                export_onnx(
                    segment,
                    resolution,
                    fast=True,
                    dynamic_batch=True,
                    input_shape=tuple(x.shape),
                    output_names=outputs,
                )
            )
            if isinstance(segment, _Segment):
                x = segment(x)[0]
    return graphs


@dataclass(frozen=True)
class ExpectedLatency:
    """sum_k share_k x (latency of segments 0..k), with the same sum at the ends of each segment's interval."""

    expected_ms: float
    cumulative_ms: tuple[float, ...]  # latency up to each exit (the final one: the whole cascade)
    shares: tuple[float, ...]
    low_ms: float | None = None
    high_ms: float | None = None

    def to_dict(self) -> dict:
        return {
            "expected_ms": self.expected_ms,
            "cumulative_ms": list(self.cumulative_ms),
            "shares": list(self.shares),
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
        }


def expected_latency(shares, segment_ms, segment_low_ms=None, segment_high_ms=None) -> ExpectedLatency:
    """Expected latency of the cascade under the distribution `shares` (share of images leaving at each exit)
    from each segment's latency (and interval ends, when predicted)."""
    shares, segment_ms = [float(s) for s in shares], [float(ms) for ms in segment_ms]
    if len(shares) != len(segment_ms) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ValueError(f"shares {shares} must sum to 1, one per segment ({len(segment_ms)})")

    def total(per_segment):
        cumulative = [sum(per_segment[: k + 1]) for k in range(len(per_segment))]
        return sum(s * c for s, c in zip(shares, cumulative)), cumulative

    expected, cumulative = total(segment_ms)
    low = total([float(v) for v in segment_low_ms])[0] if segment_low_ms is not None else None
    high = total([float(v) for v in segment_high_ms])[0] if segment_high_ms is not None else None
    return ExpectedLatency(expected, tuple(cumulative), tuple(shares), low, high)


def segment_latencies(graphs: list[bytes], profile, mode: str | None = None) -> list[dict]:
    """Each segment's latency on `profile`: `mode` "measured", here with ONNX Runtime by the profile's
    protocol, or "predicted" by its model with the interval (None: as the profile's latency is had)."""
    from nas.latency import measure_latency

    mode = mode or profile.latency
    out = []
    for graph in graphs:
        if mode == "measured":
            m = measure_latency(graph, profile.measurement)
            out.append({"latency_ms": m.median_ms, "low_ms": None, "high_ms": None, "spread": m.spread})
        else:
            p = profile.predict(graph)
            out.append({"latency_ms": p.latency_ms, "low_ms": p.low_ms, "high_ms": p.high_ms})
    return out


def cascade_latency(
    network: nn.Module, resolution: int, shares, profile, mode: str | None = None
) -> ExpectedLatency:
    """Export the segments of `network` and return its expected latency on `profile` under `shares`."""
    per = segment_latencies(export_segments(network, resolution), profile, mode)
    has_interval = all(s["low_ms"] is not None for s in per)
    return expected_latency(
        shares,
        [s["latency_ms"] for s in per],
        [s["low_ms"] for s in per] if has_interval else None,
        [s["high_ms"] for s in per] if has_interval else None,
    )


def check_segments(network: nn.Module, graphs: list[bytes], resolution: int, batch: int = 3) -> float:
    """Run a seeded random batch through the ONNX segments (chained) and through `forward_exits`; the largest
    |difference| of any exit's logits. Above `MAX_ABS_DIFF` the export is wrong: RuntimeError, never shipped."""
    import numpy as np
    import onnxruntime as ort

    from nas.onnx_io import MAX_ABS_DIFF

    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    network.eval()
    with torch.no_grad():
        expected = [logits.numpy() for logits in network.forward_exits(x)]
    feed, diff = x.numpy(), 0.0
    for graph, want in zip(graphs, expected):
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {INPUT_NAME: feed})))
        diff = max(diff, float(np.max(np.abs(got["logits"] - want))))
        feed = got.get("features")
    if not diff <= MAX_ABS_DIFF:
        raise RuntimeError(f"exit segments disagree with PyTorch: max |diff| = {diff:.2e} > {MAX_ABS_DIFF}")
    return diff
