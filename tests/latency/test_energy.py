"""Energy per inference: fitted like latency from a table's energy column, predicted with coverage rules."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
import yaml

from nas.errors import NasError
from nas.latency import ArchitectureFeaturizer, import_block_table, load_profile
from nas.space import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _features(space: str, seed: int = 3):
    arch = load_space(space).sample(
        optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    )
    return ArchitectureFeaturizer(10).features(arch)


def test_the_shipped_jetson_profile_predicts_energy_within_its_measured_power():
    profile = load_profile("jetson-tx2")
    features = _features("fbnet")
    energy, latency = profile.predict_energy(features), profile.predict(features)
    assert energy.extrapolated_mj == 0 and energy.uncovered == ()  # fbnet is what the table measured
    assert energy.low_mj < energy.energy_mj < energy.high_mj and energy.level == pytest.approx(0.9)
    power = profile.energy.power  # measured energy / latency of the same blocks, in watts
    assert power.low <= energy.energy_mj / latency.latency_ms <= power.high
    validation = profile.energy.validation
    assert validation["n"] == 212 and 0 < validation["mape"] < 20  # recorded by the generator


def test_kinds_the_energy_data_lacks_cost_their_latency_times_the_median_power():
    profile = load_profile("jetson-tx2")
    features = _features("mobilenet")  # dense convolutions, Hardswish, SE: never measured on the TX2
    energy, latency = profile.predict_energy(features), profile.predict(features)
    assert energy.uncovered == latency.uncovered and energy.uncovered
    assert energy.extrapolated_mj == pytest.approx(latency.extrapolated_ms * profile.energy.power.median)
    assert energy.high_mj / energy.low_mj > latency.high_ms / latency.low_ms  # the power's spread on top


def test_the_energy_model_is_fitted_exactly_as_the_latency_model(tmp_path):
    """Energy = 6 x latency on every row: the energy model must be 6 x the latency model, 6 W throughout."""
    from nas.latency import EnergySection, add_energy_section

    source = load_profile("jetson-tx2").measurements["path"]
    with open(source, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["dataset"] == "cifar100"][:30]
    table = tmp_path / "table.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "energy_mJ": 6 * float(row["latency_ms"])})
    profile = import_block_table(table, "t", "t", {"engine": "tensorrt"}, "", prior_reference=None)
    section = EnergySection.from_dict(add_energy_section(profile, table, "energy_mJ")["energy"])
    assert section.power.median == pytest.approx(6) and section.power.high == pytest.approx(6)
    latency_weights = profile["model"]["weights"]
    assert section.model.overhead_ms == pytest.approx(6 * profile["model"]["overhead_ms"], rel=1e-6)
    assert set(section.model.weights) == set(latency_weights)
    for column, weight in section.model.weights.items():
        assert weight == pytest.approx(6 * latency_weights[column], rel=1e-6, abs=1e-12)
    assert section.validation["mape"] == pytest.approx(profile["validation"]["mape"], rel=1e-6)


def test_a_profile_without_energy_refuses_to_predict_it():
    with pytest.raises(NasError, match="profile 'x86-cpu' has no energy model"):
        load_profile("x86-cpu").predict_energy(_features("mobilenet"))


def test_a_bad_energy_section_is_one_line_naming_the_field(tmp_path):
    from nas._resources import builtin_dir

    raw = yaml.safe_load((builtin_dir("hardware_profiles") / "jetson-tx2.yaml").read_text())
    raw.pop("measurements")
    raw["energy"]["power_w"]["median"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(NasError, match=r"bad.yaml:\d+: energy.power_w.median: must be a positive number"):
        load_profile(str(path))


def test_profile_predict_prints_energy_where_the_profile_has_it(tmp_path, capsys, x86_model_profile):
    from nas.cli import main
    from nas.latency._block_samples import build_block_module
    from nas.latency._tables import BlockConfig
    from nas.onnx_io import export_onnx

    module, shape = build_block_module(BlockConfig("conv_block", 3, 3.0, 1, 1, 16, 16, 32, 32))
    path = tmp_path / "block.onnx"
    path.write_bytes(export_onnx(module, 0, fast=True, input_shape=shape))
    assert main(["profile", "predict", "--profile", "jetson-tx2", str(path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    energy = row["energy"]
    assert energy["low_mj"] < energy["energy_mj"] < energy["high_mj"] and energy["extrapolated_share"] == 0
    assert main(["profile", "predict", "--profile", str(x86_model_profile), str(path), "--json"]) == 0
    assert "energy" not in json.loads(capsys.readouterr().out)[0]  # x86-cpu has none
