"""The ablation benchmark's pieces on a tiny setting: the arms' architectures, a cascade arm trained, run and
cut into graphs, the per-round latency of an arm, the predictions it withholds, and its table."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks._ablation_report import (  # noqa: E402
    EXITS,
    arm_rounds,
    graphs_of,
    held_out,
    measure_interleaved,
    predicted,
    table,
)
from benchmarks._harness import absolute_paths  # noqa: E402
from benchmarks.ablation import has_squeeze_excitation, source_folder, with_attention, with_exits  # noqa: E402

BASELINE = ROOT / "results" / "benchmarks" / "headline" / "mobilenetv3-small-0.5x"  # committed


def _arch():
    from nas.space import Architecture

    return Architecture.from_dict(json.loads((BASELINE / "spec.json").read_text())["architecture"])


def test_an_attention_arm_changes_exactly_the_squeeze_excitation_blocks():
    arch = _arch()
    eca = with_attention(arch, "eca")
    before = [b.se for s in arch.stages for b in s.blocks]
    after = [b.se for s in eca.stages for b in s.blocks]
    assert True in before and False in before
    assert after == ["eca" if se is True else se for se in before]
    assert has_squeeze_excitation(arch) and not has_squeeze_excitation(eca)
    assert eca.hash != arch.hash and with_attention(arch, "coord").hash not in (arch.hash, eca.hash)


@functools.lru_cache(maxsize=1)
def _tiny_data():
    import dataclasses

    from nas.data import load_dataset

    full = load_dataset("builtin")
    return dataclasses.replace(full, x_train=full.x_train[:64], y_train=full.y_train[:64],
                               x_val=full.x_val[:100], y_val=full.y_val[:100])  # fmt: skip


def test_a_source_folder_hands_the_variant_and_its_untrained_accuracy_to_export_once(tmp_path, monkeypatch):
    import nas.export

    written = []

    def export_network(folder, model, arch, num_classes, preprocessing, metrics, *, run_dir):
        written.append((arch, num_classes, preprocessing, metrics, run_dir))
        (folder / "spec.json").parent.mkdir(parents=True)
        (folder / "spec.json").write_text("{}")

    monkeypatch.setattr(nas.export, "export_network", export_network)
    arch = with_exits(_arch())
    folder = source_folder(tmp_path / "source", BASELINE, arch, _tiny_data(), tmp_path / "run")
    assert source_folder(folder, BASELINE, None, None, tmp_path / "run") == folder  # written once
    [(exported, classes, pre, metrics, run)] = written
    assert exported == arch and exported.exits == EXITS and classes == 10 and run == tmp_path / "run"
    assert pre == json.loads((BASELINE / "spec.json").read_text())["preprocessing"]
    assert 0 <= metrics["proxy_accuracy"] <= 1 and metrics["params"] > 0 and metrics["macs"] > 0


def test_a_cascade_arm_is_run_and_cut_into_its_segments(tmp_path):
    from nas.builder import build_model
    from nas.evaluate import Preprocessing
    from nas.exits import calibrate_network
    from nas.export import add_exit_segments

    data, arch = _tiny_data(), with_exits(_arch())
    pre = json.loads((BASELINE / "spec.json").read_text())["preprocessing"]
    model = build_model(arch, 10, seed=0).eval()  # untrained: the pieces, not the accuracy, are tested
    calibration = calibrate_network(model, data, Preprocessing(pre["mean"], pre["std"], arch.resolution), 0.5)
    out = tmp_path / "cascade"  # the committed model's folder given the segments (a full export takes ~10 s)
    out.mkdir()
    for name in ("spec.json", "model.onnx"):
        shutil.copy(BASELINE / name, out / name)
    add_exit_segments(out, model, arch, calibration.to_dict(), None)
    graphs = graphs_of(out)
    assert len(graphs) == len(EXITS) + 1 and all(isinstance(g, bytes) for g in graphs)
    row = held_out(out, data.x_val, data.y_val)
    assert row["test_images"] == 100 and abs(sum(row["exit_shares"]) - 1) < 1e-3
    assert row["accuracy_ci95"][0] <= row["accuracy"] <= row["accuracy_ci95"][1]
    assert row["final_exit_alone"]["test_images"] == 100
    ms = measure_interleaved({"a": graphs[0], "b": graphs[1]}, 2, _quick())
    assert [len(v) for v in ms.values()] == [2, 2] and all(t > 0 for v in ms.values() for t in v)


def test_a_plain_arm_is_one_graph_and_its_held_out_accuracy_beats_chance():
    data = _tiny_data()
    assert len(graphs_of(BASELINE)) == 1  # the committed, trained model
    row = held_out(BASELINE, data.x_val, data.y_val)
    assert row["test_images"] == 100 and row["accuracy"] > 0.2 and "exit_shares" not in row
    predicted_tx2 = predicted(graphs_of(BASELINE), None, "jetson-tx2")
    assert predicted_tx2["low_ms"] <= predicted_tx2["latency_ms"] <= predicted_tx2["high_ms"]


def _quick():
    from nas.latency import MeasurementSettings

    return MeasurementSettings(warmup_runs=1, rounds=1, round_ms=1.0, max_attempts=1)


def test_an_arm_takes_its_latency_per_round_and_a_cascade_its_expected_latency():
    assert arm_rounds([[1.0, 2.0]], None) == [1.0, 2.0]
    # shares 0.5 / 0.5: half the images pay segment 0, half pay 0 + 1
    assert arm_rounds([[1.0, 2.0], [4.0, 2.0]], [0.5, 0.5]) == pytest.approx([3.0, 3.0])


def test_a_graph_a_profile_cannot_predict_gives_its_reason_without_paths():
    from nas.builder import build_model
    from nas.onnx_io import export_onnx

    eca = with_attention(_arch(), "eca")
    graph = export_onnx(build_model(eca, 10).eval(), eca.resolution, fast=True)
    out = predicted([graph], None, "raspberry-pi-4")
    assert out["latency_ms"] is None and "activation_sigmoid" in out["why"]
    assert absolute_paths(out) == []


def test_the_table_has_a_row_per_arm_and_a_dash_where_nothing_was_predicted():
    row = {
        "accuracy": 0.45,
        "accuracy_ci95": [0.436, 0.464],
        "points_vs_reference": 0.0,
        "x86-cpu": {"median_ms": 0.1234, "min_ms": 0.1, "ratio_median": 1.0},
        "raspberry-pi-4": {"latency_ms": 2.0, "low_ms": 1.5, "high_ms": 3.0},
        "jetson-tx2": {"latency_ms": None, "why": "not predicted"},
        "train_cpu_seconds": 120.4,
    }
    text = table({"net": {"reference": row, "INT8": {**row, "points_vs_reference": -0.4}}})
    lines = text.splitlines()
    assert len(lines) == 4
    assert (
        lines[2]
        == "| net | reference | 45.0 (43.6-46.4) | +0.0 | 0.123 (0.100) | 1.00 | 2 (1.5-3) | - | 120 |"
    )
    assert "| -0.4 |" in lines[3]
