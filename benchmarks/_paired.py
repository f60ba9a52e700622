"""Latency measured paired with a reference network, for benchmarks on a machine whose speed changes in
phases (a shared virtual machine): the package's pairing (`nas.latency.paired_measurements`: R N1 R N2 R
..., each network's median over the geometric mean of the reference's two beside it), in passes that are
compared with each other on one common scale."""

from __future__ import annotations

import numpy as np

from nas.latency import paired_latencies as paired_ms
from nas.latency import paired_measurements


def reference_network(paths: list, medians: list[float]):
    """The network of median latency: a reference whose kernels resemble the others'."""
    return paths[int(np.argsort(medians)[len(paths) // 2])]


def paired_pass(paths: list, reference, settings) -> list[tuple[float, float]]:
    """(median, the reference's geometric mean right before and after) for each network, in one pass."""
    return [(m.median_ms, ref) for _, m, ref in paired_measurements(paths, reference, settings)]


def paired_latencies(passes: list[list[tuple[float, float]]], scale: float | None = None) -> list[np.ndarray]:
    """Each pass's medians over the reference's adjacent ones, times one `scale` for all passes (default:
    the reference's median over all of them), so that a drift between passes is no error of scale."""
    scale = float(np.median([ref for one in passes for _, ref in one])) if scale is None else scale
    return [paired_ms(one, scale) for one in passes]
