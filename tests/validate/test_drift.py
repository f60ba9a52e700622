"""Drift: accuracy per time window with the Cochran-Armitage trend test, and the label-free alarm whose
threshold is calibrated on in-distribution data (false alarms measured on held-out windows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.validate import DriftMonitor, Observations, accuracy_trend, corrupt, drift_report
from tests.conftest import make_easy_images
from tests.validate.candidate_models import colour_model, write_manifest

WINDOW = 50


def _observations(rng, n, shift=0.0) -> Observations:
    confidence = np.clip(rng.beta(8, 2, n) - shift, 0.1, 1.0)
    return Observations(confidence, rng.integers(0, 4, n), rng.normal(shift * 10, 1.0, (n, 12)))


def test_trend_test_sees_falling_accuracy_and_not_a_flat_one():
    falling = accuracy_trend([95, 93, 90, 85, 80, 70], [100] * 6)
    assert falling["direction"] == "falling" and falling["p_value"] < 1e-4 and falling["z"] < 0
    flat = accuracy_trend([90, 91, 89, 90, 90, 91], [100] * 6)
    assert flat["p_value"] > 0.5
    assert accuracy_trend([100, 100], [100, 100])["p_value"] == 1.0  # no variance: nothing to test


def test_the_alarm_keeps_its_false_alarm_rate_and_sees_a_shift():
    rng = np.random.default_rng(0)
    reference, held_out = _observations(rng, 3000), _observations(rng, 3000)
    monitor = DriftMonitor.calibrate(reference, 4, 100, bootstrap=300, seed=0)
    assert monitor.false_alarm_rate(held_out, 100, windows=300) <= 0.05
    shifted = _observations(rng, 100, shift=0.3)
    check = monitor.check(shifted)
    assert check["alarm"] and check["score"] > monitor.threshold
    assert set(monitor.thresholds()) == {"confidence_psi", "class_psi", "image_shift", "image_outliers"}


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    """12 windows of 50 images in time order; the last three ever more darkened (30%, 60%, 100%)."""
    root = tmp_path_factory.mktemp("drift")
    colour_model(root / "m" / "model.onnx", noise=2.0)
    x, y = make_easy_images(300, seed=3)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].copy(), y[order]
    for k, fraction in zip(range(9, 12), (0.3, 0.6, 1.0)):
        index = np.arange(k * WINDOW, k * WINDOW + int(WINDOW * fraction))
        x[index] = corrupt(x[index], "dark", 3, 0)
    times = [f"2026-03-{1 + i // 48:02d}T{(i % 48) // 2:02d}:{30 * (i % 2):02d}:00" for i in range(len(y))]
    shuffle = np.random.default_rng(1).permutation(len(y))  # the manifest's rows are not in time order
    return write_manifest(root, x[shuffle], y[shuffle], extra={"timestamp": np.array(times)[shuffle]})


def test_drift_report_orders_by_time_and_alarms_on_the_corrupted_windows(stream):
    report = drift_report(stream.parent / "m" / "model.onnx", stream, time_column="timestamp", window=WINDOW,
                          bootstrap=300)  # fmt: skip
    d = report.to_dict()
    assert len(d["windows"]) == 12 and d["calibration"]["reference_windows"] == 4
    assert [w["from"] for w in d["windows"]] == sorted(w["from"] for w in d["windows"])
    assert d["alarms"] == [9, 10, 11]
    assert d["trend"]["direction"] == "falling" and d["trend"]["p_value"] < 1e-3
    assert d["windows"][11]["accuracy"] < d["windows"][0]["accuracy"]
    assert all(w["ci95"][0] <= w["accuracy"] <= w["ci95"][1] for w in d["windows"])
    assert 0 <= d["calibration"]["held_out_false_alarm_rate"] <= 1


def test_the_drift_command_writes_json(stream, tmp_path, capsys):
    out = tmp_path / "drift.json"
    argv = ["drift", str(stream.parent / "m" / "model.onnx"), "--manifest", str(stream), "--time-column",
            "timestamp", "--window", str(WINDOW), "--bootstrap", "100", "--json-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "accuracy trend: falling" in capsys.readouterr().out
    assert json.loads(out.read_text())["alarms"]


def test_jpeg_and_occluded_images_stand_out_in_their_own_statistics():
    """The re-encoding error falls for an image already saved as JPEG; flat squares appear with an occluder."""
    from nas.validate._drift import image_features

    x, _ = make_easy_images(10, size=32, seed=5)  # noisy images: no flat squares, much to lose to JPEG
    clean = image_features(x)
    jpeg = image_features(corrupt(x, "jpeg", 3, 0))
    occluded = image_features(corrupt(x, "occlusion", 3, 0))
    assert clean.shape == (20, 12)
    assert np.all(jpeg[:, 10] < clean[:, 10])
    assert np.all(clean[:, 11] == 0) and np.all(occluded[:, 11] > 0.05)
