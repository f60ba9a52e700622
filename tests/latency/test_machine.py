"""A local profile belongs to a machine: signatures, the refusal, calibration here, user profile folder."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from nas._resources import builtin_dir
from nas.cli import main
from nas.errors import NasError
from nas.latency import (
    LatencyModel,
    list_profiles,
    load_profile,
    local_profile,
    machine_signature,
    user_profile_dir,
)
from nas.latency import _machine as machine_module
from nas.latency._machine import calibrate_model, calibrated_path, calibrated_with_held_out, leave_one_out
from nas.latency._signature import signature_differences
from tests.latency.test_prediction import graph

HERE = {
    "cpu": "Some CPU",
    "isa": ["avx2", "fma"],
    "cores": 2,
    "onnxruntime": "1.32.0",
    "provider": "CPUExecutionProvider",
}


def test_signature_differences_name_what_changes_kernels():
    assert signature_differences(HERE, {**HERE, "cores": 64, "onnxruntime": "1.32.5"}) == []
    assert signature_differences({**HERE, "isa": ["avx512f", "avx2"]}, HERE) == [
        "ISA avx512f/avx2 here avx2/fma"
    ]
    assert "the profile's ISA flags are not recorded" in signature_differences({**HERE, "isa": None}, HERE)
    assert signature_differences({**HERE, "cpu": "AMD EPYC", "onnxruntime": "1.31.1"}, HERE) == [
        "CPU 'AMD EPYC' here 'Some CPU'",
        "ONNX Runtime 1.31.1 here 1.32.0",
    ]
    signature = machine_signature()
    assert signature["cpu"] and signature["onnxruntime"] and signature["provider"] == "CPUExecutionProvider"


def test_calibration_recovers_per_family_multipliers_and_the_overhead():
    prior = LatencyModel(
        overhead_ms=0.01, weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 4e-6}
    )
    truth = LatencyModel(
        overhead_ms=0.2, weights={"conv_pointwise_l.macs": 2e-6, "conv_depthwise_k3_l.macs": 12e-6}
    )
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(30):
        g = graph(
            conv_pointwise_l=float(rng.uniform(1e5, 1e6)), conv_depthwise_k3_l=float(rng.uniform(1e4, 2e5))
        )
        samples.append((g, truth.predict(g)))
    calibrated = calibrate_model(prior, samples, strength=1e-6)
    assert calibrated.overhead_ms == pytest.approx(0.2, rel=1e-3)
    assert calibrated.weights == pytest.approx(truth.weights, rel=1e-3)
    # a strong pull keeps the shipped relative costs: both families move by the same (median) factor
    pulled = calibrate_model(prior, samples, strength=1e6)
    ratio = [pulled.weights[c] / prior.weights[c] for c in prior.weights]
    assert ratio[0] == pytest.approx(ratio[1], rel=1e-3)
    assert np.allclose(leave_one_out(prior, samples, strength=1e-6), [y for _, y in samples], rtol=1e-3)


def test_held_out_predictions_leave_out_a_whole_group(monkeypatch):
    prior = LatencyModel(
        overhead_ms=0.1, weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 1e-6}
    )
    rng = np.random.default_rng(1)
    samples = [
        (
            graph(
                conv_pointwise_l=float(rng.uniform(1e5, 1e6)),
                conv_depthwise_k3_l=float(rng.uniform(1e4, 2e5)),
            ),
            float(rng.uniform(0.5, 2.0)),
        )
        for _ in range(12)
    ]
    groups = [i // 3 for i in range(12)]  # four "networks", each with two of its blocks
    model, held_out = calibrated_with_held_out(prior, samples, groups)
    assert model.weights == calibrate_model(prior, samples).weights
    without_first = calibrate_model(prior, samples[3:])
    assert held_out[:3] == pytest.approx([without_first.predict(f) for f, _ in samples[:3]])
    # without groups: leave-one-out; above LEAVE_ONE_OUT_MAX groups: folds of groups, same answer shape
    assert calibrated_with_held_out(prior, samples)[1] == pytest.approx(leave_one_out(prior, samples))
    monkeypatch.setattr(machine_module, "LEAVE_ONE_OUT_MAX", 2)
    monkeypatch.setattr(machine_module, "HELD_OUT_FOLDS", 2)
    folded = calibrated_with_held_out(prior, samples, groups)[1]
    assert folded.shape == (12,) and not np.allclose(folded, held_out)


def signed_copy(tmp_path, machine):
    raw = yaml.safe_load((builtin_dir("hardware_profiles") / "x86-cpu.yaml").read_text())
    raw.pop("measurements")
    raw["machine"] = machine
    # A short protocol: these tests check what calibration measures and writes, not how precisely.
    raw["measurement"] = {
        "warmup_runs": 2,
        "rounds": 3,
        "round_ms": 5.0,
        "max_spread": 0.05,
        "max_attempts": 2,
    }
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_profile(path)


def test_a_profile_from_another_machine_refuses_until_calibrated_here(tmp_path):
    here = machine_signature()
    assert local_profile(signed_copy(tmp_path, here)).machine == here  # measured here: used as it is
    other = signed_copy(tmp_path, {**here, "cpu": "Another CPU"})
    with pytest.raises(NasError) as refused:
        local_profile(other)
    assert "was measured on another machine (CPU 'Another CPU'" in str(refused.value)
    assert "nas profile calibrate --profile x86-cpu" in str(refused.value)
    calibrated = calibrated_path(other)
    assert calibrated.parent == user_profile_dir() and str(calibrated).startswith(
        os.environ["NAS_PROFILE_DIR"]
    )
    calibrated.parent.mkdir(parents=True, exist_ok=True)
    calibrated.write_text((tmp_path / "local.yaml").read_text().replace("Another CPU", "calibrated"))
    try:
        assert local_profile(other).path == calibrated
    finally:
        calibrated.unlink()


def test_calibrate_measures_here_and_writes_a_profile_for_this_machine(tmp_path, tiny_space_file, capsys):
    other = signed_copy(tmp_path, {**machine_signature(), "cpu": "Another CPU"})
    out = tmp_path / "calibrated.yaml"
    assert (
        main(
            [
                "profile",
                "calibrate",
                "--profile",
                str(other.path),
                "--space",
                str(tiny_space_file),
                "--networks",
                "6",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "held-out networks' MAPE" in capsys.readouterr().out
    calibrated = load_profile(out)
    # the error is over the 6 networks, each held out with the blocks it introduced
    assert calibrated.machine == machine_signature() and calibrated.validation["n"] == 6
    assert "blocks (held out with their network)" in calibrated.validation["data"]
    assert calibrated.interval is not None and calibrated.coverage == other.coverage
    assert "and their blocks, each paired with a reference network" in calibrated.provenance
    assert "before calibration the model's MAPE on those networks was" in calibrated.provenance
    assert calibrated.validation["paired"]["reference"].startswith("networks/")
    assert local_profile(calibrated) is calibrated


def test_predicting_with_another_machines_profile_is_one_line(tmp_path, capsys):
    other = signed_copy(tmp_path, {**machine_signature(), "cpu": "Another CPU"})
    onnx_path = tmp_path / "x.onnx"
    onnx_path.write_bytes(b"")
    assert main(["profile", "predict", "--profile", str(other.path), str(onnx_path)]) == 2
    assert "was measured on another machine" in capsys.readouterr().err


def test_user_profiles_go_to_the_user_folder_and_are_listed_by_name(tmp_path, capsys):
    assert (
        main(
            [
                "profile",
                "import",
                "--table",
                str(builtin_dir("hardware_profiles") / "data" / "raspberry-pi-4_fbnet_blocks.csv"),
                "--name",
                "raspberry-pi-4",
            ]
        )
        == 2
    )
    assert "is a built-in profile" in capsys.readouterr().err
    assert (
        main(
            [
                "profile",
                "import",
                "--table",
                str(builtin_dir("hardware_profiles") / "data" / "raspberry-pi-4_fbnet_blocks.csv"),
                "--name",
                "my-pi",
            ]
        )
        == 0
    )
    written = user_profile_dir() / "my-pi.yaml"
    try:
        assert written.is_file() and load_profile("my-pi").path == written
        assert "my-pi" in {p.name for p in list_profiles()}
        assert not (builtin_dir("hardware_profiles") / "my-pi.yaml").exists()
    finally:
        written.unlink()
