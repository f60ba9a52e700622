import itertools

import numpy as np
import pytest

from nas.search import pareto_indices


def brute_force_front(points):
    front = []
    for i, (a, l) in enumerate(points):
        if not any((a2 >= a and l2 <= l) and (a2 > a or l2 < l) for a2, l2 in points):
            front.append(i)
    return front


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force_on_random_points(seed):
    rng = np.random.default_rng(seed)
    points = [(float(a), float(l)) for a, l in zip(rng.random(40), rng.random(40))]
    assert sorted(pareto_indices(points)) == brute_force_front(points)


def test_front_is_sorted_by_latency_and_keeps_one_of_exact_ties():
    points = [(0.5, 2.0), (0.9, 5.0), (0.5, 2.0), (0.4, 3.0), (0.7, 3.0)]
    front = pareto_indices(points)
    assert front == [0, 4, 1]


def test_single_and_empty():
    assert pareto_indices([]) == []
    assert pareto_indices([(0.1, 1.0)]) == [0]
