import numpy as np
import pytest

from nas.search import hypervolume, pareto_indices


def brute_force_front(points):
    front = []
    for i, (a, lat) in enumerate(points):
        if not any((a2 >= a and lat2 <= lat) and (a2 > a or lat2 < lat) for a2, lat2 in points):
            front.append(i)
    return front


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force_on_random_points(seed):
    rng = np.random.default_rng(seed)
    points = [(float(a), float(lat)) for a, lat in zip(rng.random(40), rng.random(40))]
    assert sorted(pareto_indices(points)) == brute_force_front(points)


def test_front_is_sorted_by_latency_and_keeps_one_of_exact_ties():
    points = [(0.5, 2.0), (0.9, 5.0), (0.5, 2.0), (0.4, 3.0), (0.7, 3.0)]
    front = pareto_indices(points)
    assert front == [0, 4, 1]


def test_single_and_empty():
    assert pareto_indices([]) == []
    assert pareto_indices([(0.1, 1.0)]) == [0]


def test_hypervolume_of_a_staircase():
    # Points (acc, ms): the slab [1, 2) has best acc 0.5, [2, 4) has 0.8, [4, 5) keeps 0.8 (0.6 dominated).
    points = [(0.5, 1.0), (0.8, 2.0), (0.6, 4.0)]
    assert hypervolume(points, 5.0) == pytest.approx(0.5 * 1 + 0.8 * 3)
    assert hypervolume(points, 1.5) == pytest.approx(0.5 * 0.5)
    assert hypervolume([], 5.0) == 0.0
    assert hypervolume([(0.9, 6.0)], 5.0) == 0.0  # beyond the reference: no area


def test_hypervolume_equals_union_of_rectangles_on_a_grid():
    rng = np.random.default_rng(3)
    points = [(float(a), float(lat)) for a, lat in zip(rng.random(15), rng.random(15) * 4)]
    ref = 4.5
    xs = np.linspace(0, ref, 901)[:-1] + ref / 1800  # midpoint rule on latency
    ys = np.linspace(0, 1, 1001)[:-1] + 0.0005
    covered = sum(any(lat <= x and a >= y for a, lat in points) for x in xs[::3] for y in ys[::10])
    estimate = covered * (3 * ref / 900) * (10 / 1000)
    assert hypervolume(points, ref) == pytest.approx(estimate, abs=0.05)
