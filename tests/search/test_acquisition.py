"""Which candidates get training: EHVI pre-screening (the accuracy model, the expected area, the greedy
choice of a batch) and dominance at a rung."""

from __future__ import annotations

import math
import random

import pytest

from nas.search import hypervolume
from nas.search._acquisition import (
    AccuracySurrogate,
    expected_improvement_area,
    rung_dominators,
    select_by_ehvi,
)

FRONT = [(0.40, 0.10), (0.50, 0.30), (0.30, 0.05)]


@pytest.mark.parametrize("candidate", [(0.45, 0.02), (0.45, 0.20), (0.60, 0.25), (0.35, 0.12), (0.9, 0.6)])
def test_expected_area_of_a_certain_accuracy_is_the_hypervolume_it_adds(candidate):
    acc, lat = candidate
    added = hypervolume(FRONT + [candidate], 0.5) - hypervolume(FRONT, 0.5)
    assert expected_improvement_area(acc, 1e-9, lat, FRONT, 0.5) == pytest.approx(added, abs=1e-9)


def test_expected_area_under_uncertainty_matches_sampling():
    import numpy as np

    rng = np.random.default_rng(0)
    samples = rng.normal(0.35, 0.05, 20_000)
    base = hypervolume(FRONT, 0.5)
    sampled = float(np.mean([hypervolume(FRONT + [(a, 0.12)], 0.5) - base for a in samples]))
    assert expected_improvement_area(0.35, 1e-9, 0.12, FRONT, 0.5) == pytest.approx(
        0.0, abs=1e-12
    )  # below the front
    assert expected_improvement_area(0.35, 0.05, 0.12, FRONT, 0.5) == pytest.approx(sampled, rel=0.05)


def test_surrogate_learns_a_trend_and_is_less_sure_far_from_its_data():
    rng = random.Random(0)
    trained = []
    for _ in range(30):
        macs = rng.randint(10**6, 10**7)
        trained.append((0.1 + 0.03 * math.log(macs) + rng.gauss(0, 0.005), 0.1, 50_000, macs))
    model = AccuracySurrogate(trained)
    small, large = model.predict(0.1, 50_000, 2 * 10**6), model.predict(0.1, 50_000, 8 * 10**6)
    assert large[0] - small[0] == pytest.approx(0.03 * math.log(4), abs=0.01)
    assert model.predict(0.1, 50_000, 10**9)[1] > 1.5 * large[1]


def test_batch_prefers_the_candidate_that_extends_the_front_and_never_repeats():
    trained = [
        (0.40, 0.20, 100_000, 4 * 10**6),
        (0.41, 0.25, 120_000, 5 * 10**6),
        (0.39, 0.30, 150_000, 6 * 10**6),
        (0.42, 0.35, 200_000, 7 * 10**6),
    ]
    pool = [
        (0.40, 150_000, 6 * 10**6),
        (0.08, 100_000, 4 * 10**6),
        (0.45, 200_000, 7 * 10**6),
        (0.08, 100_000, 4 * 10**6),
    ]
    picks = select_by_ehvi(pool, trained, 3, reference=0.5)
    indices = [i for i, _ in picks]
    assert indices[0] in (1, 3)  # as accurate as the rest, and faster than the whole front
    assert len(set(indices)) == 3
    assert picks[0][1] > picks[1][1]  # the first pick joined the front, so the twin gains less


def test_the_model_can_describe_candidates_by_more_than_their_costs():
    from nas.search._acquisition import cost_features

    rng = random.Random(0)
    # Accuracy follows a per-stage choice (0.5 with it, 0.3 without) that the costs do not reveal.
    trained = [
        (
            0.3 + 0.2 * flag + rng.gauss(0, 0.005),
            rng.uniform(0.1, 0.3),
            rng.randint(10**5, 10**6),
            rng.randint(10**6, 10**7),
            flag,
        )
        for flag in (0, 1) * 6
    ]
    pool = [(0.2, 500_000, 5_000_000, 0), (0.2, 500_000, 5_000_000, 1)]  # same costs; the choice differs
    by_costs = select_by_ehvi([c[:3] for c in pool], [t[:4] for t in trained], 1, 0.5)
    assert by_costs[0][0] == 0  # a tie on costs: the earlier proposal

    def with_choice(latency_ms, params, macs, flag):
        return cost_features(latency_ms, params, macs) + [float(flag)]

    model = AccuracySurrogate(trained, features=with_choice)
    assert model.predict(*pool[0])[0] == pytest.approx(0.3, abs=0.02)
    assert model.predict(*pool[1])[0] == pytest.approx(0.5, abs=0.02)
    assert select_by_ehvi(pool, trained, 1, 0.5, features=with_choice)[0][0] == 1


def test_a_singular_naswot_kernel_counts_as_the_lowest_score_seen():
    from nas.search._acquisition import finite_last_score

    pool, trained = finite_last_score(
        [(0.1, 1, 1, float("-inf")), (0.2, 1, 1, 640.0)],
        [(0.5, 0.1, 1, 1, 610.0), (0.4, 0.2, 1, 1, float("-inf"))],
    )
    assert pool == [(0.1, 1, 1, 610.0), (0.2, 1, 1, 640.0)]
    assert trained == [(0.5, 0.1, 1, 1, 610.0), (0.4, 0.2, 1, 1, 610.0)]


def test_too_few_trained_candidates_is_an_error_of_the_caller():
    with pytest.raises(ValueError, match="at least"):
        select_by_ehvi([(0.1, 1, 1)], [(0.3, 0.1, 1, 1)], 1, 0.5)


def test_rung_dominance_needs_more_than_validation_noise():
    at_chance = [(0.10, 0.05), (0.10, 0.08), (0.10, 0.20)]
    assert rung_dominators(0.10, 0.20, at_chance, 5000) == 0  # all tied at chance: nobody stops
    assert rung_dominators(0.10, 0.20, at_chance, 5000, margin=0) == 2  # plain dominance: the faster two
    # 5,000 validation images at ~0.3: two standard errors of a difference are about 0.018.
    points = [(0.31, 0.1), (0.315, 0.1), (0.40, 0.1), (0.40, 0.3)]
    assert rung_dominators(0.30, 0.2, points, 5000) == 1  # only 0.40 at lower latency counts
    assert rung_dominators(0.30, 0.2, points, 5000, margin=0.012) == 2  # an explicit margin
    assert rung_dominators(0.30, 0.2, points, 50) == 0  # 50 images: 0.10 is within the noise
