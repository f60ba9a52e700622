"""Latency measured paired with a reference network, for benchmarks on a machine whose speed changes in
phases (a shared virtual machine): each network is measured right between two measurements of the same
reference network, and its median is divided by their geometric mean. A slow phase spanning the three (under
a second) cancels; the ratio times the reference's median over the whole run gives milliseconds again."""

from __future__ import annotations

import numpy as np

from nas.latency import measure_latency


def reference_network(paths: list, medians: list[float]):
    """The network of median latency: a reference whose kernels resemble the others'."""
    return paths[int(np.argsort(medians)[len(paths) // 2])]


def paired_pass(paths: list, reference, settings) -> list[tuple[float, float]]:
    """(median, the reference's geometric mean right before and after) for each network, in one pass."""
    out = []
    for path in paths:
        before = measure_latency(reference, settings).median_ms
        median = measure_latency(path, settings).median_ms
        after = measure_latency(reference, settings).median_ms
        out.append((median, (before * after) ** 0.5))
    return out


def paired_latencies(passes: list[list[tuple[float, float]]]) -> list[np.ndarray]:
    """Each pass's medians over the reference's adjacent ones, times the reference's median over all passes."""
    scale = float(np.median([ref for one in passes for _, ref in one]))
    return [np.array([median / ref * scale for median, ref in one]) for one in passes]
