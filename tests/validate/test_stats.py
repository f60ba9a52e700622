"""Wilson interval, expected calibration error and per-slice statistics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from nas.validate import expected_calibration_error, wilson_interval
from nas.validate._stats import slice_statistics


def test_wilson_interval_hand_cases():
    low, high = wilson_interval(8, 10)  # textbook value: 0.4902 - 0.9433
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # narrower with more data at the same proportion
    assert np.diff(wilson_interval(800, 1000))[0] < np.diff(wilson_interval(80, 100))[0]


def test_wilson_interval_contains_the_proportion_despite_rounding():
    for n in range(1, 300):
        for correct in range(n + 1):
            low, high = wilson_interval(correct, n)
            assert 0.0 <= low <= correct / n <= high <= 1.0
    assert wilson_interval(3, 3)[1] == 1.0 and wilson_interval(0, 3)[0] == 0.0  # 0.9999999999999999 before


def test_ece_hand_cases():
    # two bins: conf 0.9 with accuracy 0.5, conf 0.6 with accuracy 1.0 -> 0.5 * 0.4 + 0.5 * 0.4
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(0.4)
    # calibrated: confidence 0.75 (one bin), 3 of 4 correct
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)
    # confidence exactly on a bin edge (2/15) stays in its bin (k/B, (k+1)/B]
    assert expected_calibration_error([2 / 15, 1.0], [0, 1]) == pytest.approx(0.5 * 2 / 15)
    assert expected_calibration_error([], []) == 0.0


def test_slice_statistics_per_class_and_confusions():
    classes = ("a", "b", "c")
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    logits = np.eye(3)[predicted] * 5.0
    stats = slice_statistics(logits, labels, classes)
    assert stats["n"] == 6 and stats["correct"] == 3 and stats["accuracy"] == 0.5
    assert stats["per_class"] == {
        "a": {"n": 3, "accuracy": pytest.approx(1 / 3)},
        "b": {"n": 2, "accuracy": 0.5},
        "c": {"n": 1, "accuracy": 1.0},
    }
    assert stats["confusions"][0] == {
        "true": "a",
        "predicted": "b",
        "count": 2,
        "fraction_of_true": pytest.approx(2 / 3),
    }
    assert [(c["true"], c["predicted"]) for c in stats["confusions"]] == [("a", "b"), ("b", "a")]
    confidence = np.exp(5) / (np.exp(5) + 2)
    assert stats["ece"] == pytest.approx(abs(0.5 - confidence))
