"""Paired measurement: each graph between two measurements of a reference, read relative to them, so that a
machine whose speed changes in phases measures consistently (nas.latency._measure, _bundle, _calibrate)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nas.cli import main
from nas.errors import NasError
from nas.latency import (
    LatencyMeasurement,
    bundle_reference,
    load_profile,
    measure_bundle,
    measurement_samples,
    paired_latencies,
    paired_measurements,
    reference_latencies,
)
from nas.latency import _bundle as bundle_module
from nas.latency._bundle import FORMAT, MANIFEST
from tests.latency.test_device_measure import blocked_env

SLOW = 1.6  # the machine runs this much slower in its slow phases


class PhasedMachine:
    """A fake `measure_latency`: each model's true latency times the speed of the phase the call falls in
    (phases of `phase` calls, alternately quick and slow)."""

    def __init__(self, truth: dict, phase: int = 15):
        self.truth, self.phase, self.calls = truth, phase, 0

    def factor(self, call: int) -> float:
        return SLOW if (call // self.phase) % 2 else 1.0

    def __call__(self, model, settings=None) -> LatencyMeasurement:
        ms = self.truth[str(model)] * self.factor(self.calls)
        self.calls += 1
        return LatencyMeasurement(median_ms=ms, spread=0.0, round_medians_ms=(ms,), attempts=1, stable=True)


def relative_errors(measured, truth) -> np.ndarray:
    """Each measurement's error once the common scale is removed (a scale is only a unit)."""
    ratio = np.asarray(measured) / np.asarray(truth)
    return np.abs(ratio / np.median(ratio) - 1)


def test_paired_measurements_recover_the_true_ratios_where_single_ones_carry_the_phases():
    rng = np.random.default_rng(0)
    truth = {f"m{i}": float(t) for i, t in enumerate(rng.uniform(0.5, 5.0, 40))}
    truth["ref"] = 2.0
    machine = PhasedMachine(truth)
    assert list(paired_measurements([], "ref", measure=machine)) == [] and machine.calls == 0
    out = list(paired_measurements(list(truth)[:-1], "ref", measure=machine))
    assert machine.calls == 2 * 40 + 1  # R M1 R M2 R ...: one reference between two models, not two
    models = [model for model, _, _ in out]
    true = [truth[m] for m in models]
    single = relative_errors([m.median_ms for _, m, _ in out], true)
    paired = relative_errors(paired_latencies([(m.median_ms, ref) for _, m, ref in out]), true)
    # a model whose three measurements (reference, it, reference) fall in one phase is exact; one at a
    # phase change is off by at most the square root of the change
    one_phase = [
        machine.factor(2 * i) == machine.factor(2 * i + 1) == machine.factor(2 * i + 2) for i in range(40)
    ]
    assert np.all(paired[one_phase] < 1e-9) and np.mean(one_phase) > 0.5
    assert paired.max() <= SLOW**0.5 - 1 + 1e-9
    assert np.mean(single > 0.2) > 0.3  # unpaired, the slow phases stay in the measurements
    assert np.mean(paired) < np.mean(single) / 3


def test_paired_latencies_scale_by_the_reference_median_or_a_common_one():
    pairs = [(1.0, 2.0), (3.0, 2.0), (0.85, 3.4)]
    assert paired_latencies(pairs) == pytest.approx([1.0, 3.0, 0.5])
    assert paired_latencies(pairs, scale=4.0) == pytest.approx([2.0, 6.0, 1.0])


def conv_graph(path: Path, channels: int) -> None:
    """A 3x3 convolution from 3 to `channels` channels on 8x8: MACs grow with `channels`."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [channels, 3, 3, 3], [0.01] * (27 * channels))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 8, 8])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.fixture()
def bundle(tmp_path) -> Path:
    """Five 'networks' (1 to 5 ms, MACs in the same order, listed shuffled) and a block of 20 channels."""
    folder = tmp_path / "bundle"
    (folder / "networks").mkdir(parents=True)
    models = []
    for channels in (12, 4, 20, 8, 16):
        conv_graph(folder / "networks" / f"c{channels}.onnx", channels)
        models.append({"path": f"networks/c{channels}.onnx", "kind": "network", "id": f"c{channels}"})
    conv_graph(folder / "networks" / "b20.onnx", 20)
    models.append({"path": "networks/b20.onnx", "kind": "block", "id": "b20"})
    (folder / MANIFEST).write_text(json.dumps({"format": FORMAT, "space": "fake", "models": models}))
    return folder


def truth_of(bundle: Path) -> dict:
    return {str(bundle / "networks" / f"c{c}.onnx"): c / 4 for c in (4, 8, 12, 16, 20)} | {
        str(bundle / "networks" / "b20.onnx"): 0.3
    }


def test_the_reference_is_the_network_of_median_macs(bundle):
    assert bundle_reference(bundle) == "networks/c12.onnx"  # not the block, though it has the largest MACs


def test_a_paired_bundle_measurement_records_the_reference_and_reads_back_paired(bundle, monkeypatch):
    machine = PhasedMachine(truth_of(bundle), phase=3)
    monkeypatch.setattr(bundle_module, "measure_latency", machine)
    csv_path = measure_bundle(bundle, reference="networks/c12.onnx")
    assert machine.calls == 2 * 6 + 1
    with open(csv_path, newline="") as handle:
        assert next(csv.reader(handle)) == ["model", "latency_ms", "spread", "stable", "reference_ms"]
    assert json.loads((bundle / "measurements.meta.json").read_text())["reference"] == "networks/c12.onnx"
    order = [str(bundle / m["path"]) for m in json.loads((bundle / MANIFEST).read_text())["models"]]
    true = [truth_of(bundle)[path] for path in order]
    paired = [y for _, y in measurement_samples(csv_path)]
    single = [y for _, y in measurement_samples(csv_path, paired=False)]
    assert relative_errors(paired, true).max() < relative_errors(single, true).max()
    references = reference_latencies(csv_path)
    assert len(references) == 6 and min(references) >= 3.0  # the reference: 3 ms, or 4.8 when slow
    common = measurement_samples(csv_path, scale=2 * float(np.median(references)))
    assert [y for _, y in common] == pytest.approx([2 * y for y in paired])


def test_an_unpaired_csv_reads_as_before_and_a_half_filled_reference_column_names_its_row(
    bundle, monkeypatch
):
    monkeypatch.setattr(bundle_module, "measure_latency", PhasedMachine(truth_of(bundle)))
    csv_path = measure_bundle(bundle)
    assert reference_latencies(csv_path) is None
    assert [y for _, y in measurement_samples(csv_path)] == [
        y for _, y in measurement_samples(csv_path, paired=False)
    ]
    rows = csv_path.read_text().splitlines()
    rows[0] += ",reference_ms"
    rows[1] += ",2.5"
    csv_path.write_text("\n".join(rows) + "\n")
    with pytest.raises(NasError, match=r"measurements.csv:3: reference_ms: not a number"):
        measurement_samples(csv_path)


def interrupt(bundle: Path, kept: int) -> list[str]:
    """Leave the measurement as a device switched off after `kept` rows leaves it; the rows kept."""
    rows = (bundle / "measurements.csv").read_text().splitlines()[: kept + 1]
    (bundle / "measurements.csv").write_text("\n".join(rows) + "\n")
    meta = json.loads((bundle / "measurements.meta.json").read_text())
    (bundle / "measurements.meta.json").write_text(json.dumps({**meta, "finished": False}))
    return rows


def test_a_resumed_measurement_never_mixes_references_or_paired_with_unpaired_rows(bundle, monkeypatch):
    machine = PhasedMachine(truth_of(bundle))
    monkeypatch.setattr(bundle_module, "measure_latency", machine)
    measure_bundle(bundle, reference="networks/c12.onnx")
    kept = interrupt(bundle, 2)
    machine.calls = 0
    measure_bundle(bundle, reference="networks/c12.onnx")  # the same reference: resumes
    assert (bundle / "measurements.csv").read_text().splitlines()[:3] == kept and machine.calls == 2 * 4 + 1
    for reference in ("networks/c8.onnx", None):  # another reference, or none: starts over
        interrupt(bundle, 2)
        machine.calls = 0
        measure_bundle(bundle, reference=reference)
        assert machine.calls == (6 if reference is None else 2 * 6 + 1)
    # an unfinished measurement from before pairing (no reference in its metadata) resumes unpaired
    kept = interrupt(bundle, 2)
    meta = json.loads((bundle / "measurements.meta.json").read_text())
    del meta["reference"]
    (bundle / "measurements.meta.json").write_text(json.dumps(meta))
    machine.calls = 0
    measure_bundle(bundle)
    assert (bundle / "measurements.csv").read_text().splitlines()[:3] == kept and machine.calls == 4
    with pytest.raises(NasError, match="reference: 'nope.onnx' is not a graph of the bundle"):
        measure_bundle(bundle, reference="nope.onnx")


def test_measure_paired_chooses_the_reference_and_needs_no_torch(bundle, tmp_path, monkeypatch):
    """`nas profile measure --paired` pairs with the bundle's reference, which a device without torch,
    fvcore or optuna can choose (onnx alone)."""
    monkeypatch.setattr(bundle_module, "measure_latency", PhasedMachine(truth_of(bundle)))
    assert main(["profile", "measure", str(bundle), "--paired", "--quiet"]) == 0
    assert json.loads((bundle / "measurements.meta.json").read_text())["reference"] == "networks/c12.onnx"
    assert len(reference_latencies(bundle / "measurements.csv")) == 6
    probe = (
        "import sys; from nas.latency import bundle_reference; "
        f"print(bundle_reference({str(bundle)!r}), sorted(m for m in ('torch', 'optuna') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=blocked_env(tmp_path)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["networks/c12.onnx", "[]"]


def test_calibration_pairs_its_measurements_so_the_phases_do_not_become_its_model(
    tmp_path, tiny_space_file, monkeypatch
):
    """A machine that runs every graph 1.3x the shipped model's prediction, in quick and slow phases:
    calibrated on paired measurements, the held-out networks come out near-exact; unpaired, not."""
    from nas.latency import graph_features

    shipped = load_profile("x86-cpu")

    class Machine(PhasedMachine):
        def __init__(self):
            super().__init__({})

        def __call__(self, model, settings=None):
            self.truth.setdefault(str(model), 1.3 * shipped.latency_model.predict(graph_features(model)))
            return super().__call__(model, settings)

    from nas.latency._machine import calibrate_profile

    errors = {}
    for paired in (True, False):
        monkeypatch.setattr(bundle_module, "measure_latency", Machine())
        out = tmp_path / f"paired-{paired}.yaml"
        calibrated = load_profile(
            calibrate_profile(shipped, space=str(tiny_space_file), networks=6, paired=paired, out=out)
        )
        errors[paired] = calibrated.validation["mape"]
        recorded = calibrated.validation.get("paired")
        assert (recorded is not None) == paired and ("each paired with" in calibrated.provenance) == paired
    assert recorded is None and errors[True] < 5 and errors[False] > 2 * errors[True]
