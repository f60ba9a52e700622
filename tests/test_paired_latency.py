"""benchmarks/_paired.py: a slow phase that slows a network and its adjacent reference alike cancels."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks._paired import paired_latencies, reference_network  # noqa: E402


def test_a_phase_that_slows_network_and_reference_alike_cancels():
    quiet = [(1.0, 2.0), (3.0, 2.0), (0.5, 2.0)]  # (network's median, reference's adjacent geometric mean)
    slow = [(1.7, 3.4), (3.0, 2.0), (0.85, 3.4)]  # networks 1 and 3 measured in a 1.7x slower phase
    first, second = paired_latencies([quiet, slow])
    assert first == pytest.approx([1.0, 3.0, 0.5]) and second == pytest.approx(first)


def test_the_reference_is_the_network_of_median_latency():
    assert reference_network(["a", "b", "c", "d", "e"], [5.0, 1.0, 3.0, 2.0, 4.0]) == "c"
