"""Threshold calibration: the cascade keeps the accuracy bound on the images it was calibrated on, and no
lower threshold of the first exit would."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import NasError
from nas.exits import calibrate_thresholds, check_max_drop
from nas.runtime import NEVER, route


def _exit(labels: np.ndarray, accuracy: float, sharpness: float, rng, classes: int = 10) -> np.ndarray:
    """Softmax outputs of a fake exit right on about `accuracy` of the images, more confident when right."""
    n = len(labels)
    right = rng.random(n) < accuracy
    guess = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), guess] += sharpness * np.where(right, 2.0, 0.7)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _three_exits(seed: int = 0, n: int = 2000):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    exits = [_exit(labels, a, s, rng) for a, s in ((0.55, 2.0), (0.7, 2.5), (0.8, 3.0))]
    return exits, labels


@pytest.mark.parametrize("max_drop", [0.0, 0.5, 2.0])
def test_the_cascade_keeps_the_bound_and_the_first_threshold_is_the_lowest_that_does(max_drop):
    probabilities, labels = _three_exits()
    cal = calibrate_thresholds(probabilities, labels, max_drop)
    prediction, exit_taken = route(probabilities, list(cal.thresholds))
    final = np.mean(probabilities[-1].argmax(1) == labels)
    cascade = np.mean(prediction == labels)
    assert cal.cascade_accuracy == pytest.approx(cascade) and cal.final_accuracy == pytest.approx(final)
    assert 100 * (final - cascade) <= max_drop + 1e-9
    assert sum(cal.shares) == pytest.approx(1.0)
    assert cal.shares == tuple(np.mean(exit_taken == k) for k in range(3))
    # the first exit's next lower confidence (with the later exits closed, as calibrated) breaks the bound
    first = cal.thresholds[0]
    lower = np.sort(probabilities[0].max(1))
    lower = lower[lower < first]
    if first != NEVER and len(lower):
        p2, _ = route(probabilities, [lower[-1], NEVER])
        assert 100 * (final - np.mean(p2 == labels)) > max_drop


def test_a_larger_allowance_lets_more_images_leave_early():
    probabilities, labels = _three_exits(seed=1)
    tight, loose = (calibrate_thresholds(probabilities, labels, d) for d in (0.0, 3.0))
    assert loose.shares[-1] <= tight.shares[-1]
    assert loose.shares[0] >= tight.shares[0]
    assert loose.shares[0] > 0  # 3 points buy some early exits on these outputs


def test_an_exit_always_right_takes_every_image_at_no_drop():
    labels = np.arange(100) % 4
    sure = np.full((100, 4), 0.1)
    sure[np.arange(100), labels] = 0.7
    cal = calibrate_thresholds([sure, sure], labels, 0.0)
    assert cal.shares == (1.0, 0.0) and cal.cascade_accuracy == 1.0


def test_an_exit_that_never_helps_is_closed():
    labels = np.arange(100) % 4
    wrong = np.full((100, 4), 0.1)
    wrong[np.arange(100), (labels + 1) % 4] = 0.7
    right = np.full((100, 4), 0.2)
    right[np.arange(100), labels] = 0.4
    cal = calibrate_thresholds([wrong, right], labels, 0.5)
    assert cal.thresholds == (NEVER,) and cal.shares == (0.0, 1.0) and cal.drop_points == 0


@pytest.mark.parametrize("bad", [-0.1, 101, float("nan"), "0.5", True, None])
def test_a_bad_bound_is_one_clear_error(bad):
    with pytest.raises(NasError, match="--exit-max-drop: must be a number of accuracy points"):
        check_max_drop(bad)
