"""Hand-designed baselines: valid architectures of the primitives, trained and measured as a run's candidates."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
import torch
from conftest import tiny_search

from nas.baselines import evaluate_baselines, hand_designed
from nas.builder import build_model
from nas.cli import main
from nas.errors import NasError
from nas.evaluate import count_costs
from nas.export import baseline_exports
from nas.onnx_io import read_metadata
from nas.report._load import _read_baselines


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory, tiny_space_file, tiny_dataset_file, ray_executor):
    """One small search (the tiny space, 16 px) that each test copies: the baselines only read its run."""
    run_dir = tmp_path_factory.mktemp("baselines") / "run"
    return tiny_search(run_dir, tiny_space_file, tiny_dataset_file, ray_executor)


def copy_of(run_dir, tmp_path):
    return shutil.copytree(run_dir, tmp_path / "run")


def test_every_baseline_builds_and_scales_with_its_width_multiplier():
    nets = hand_designed((0.5, 1.0))
    assert set(nets) == {
        f"{f}-{m}x" for f in ("mobilenetv2", "mobilenetv3-small", "shufflenet") for m in ("0.5", "1")
    }
    for name, arch in nets.items():
        assert all(stage.width % 8 == 0 for stage in arch.stages) and arch.resolution == 32
        assert build_model(arch, 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    for family in ("mobilenetv2", "mobilenetv3-small", "shufflenet"):
        small, large = (count_costs(build_model(nets[f"{family}-{m}x"], 10), 32) for m in ("0.5", "1"))
        assert small.params < large.params and small.macs < large.macs


def test_baselines_of_a_run_are_written_for_the_report(tmp_path, searched_run, ray_executor):
    run_dir = copy_of(searched_run, tmp_path)
    results = evaluate_baselines(run_dir, (0.5,), executor=ray_executor)
    assert [r["name"] for r in results] == ["mobilenetv2-0.5x", "mobilenetv3-small-0.5x", "shufflenet-0.5x"]
    stored = json.loads((run_dir / "baselines.json").read_text())
    assert stored == json.loads(json.dumps(results))
    assert all(
        0 <= r["accuracy"] <= 1 and r["latency_ms"] > 0 and r["latency_source"] == "measured" for r in results
    )
    assert [b.name for b in _read_baselines(run_dir)] == [r["name"] for r in results]


def test_baselines_keep_the_users_own_entries_and_replace_only_their_own(
    tmp_path, searched_run, ray_executor
):
    run_dir = copy_of(searched_run, tmp_path)
    mine = {"name": "MyNet", "accuracy": 0.5, "latency_ms": 0.05}
    earlier = {
        "name": "mobilenetv2-0.5x",
        "accuracy": 0.1,
        "latency_ms": 9.0,
        "generated_by": "nas baselines",
    }
    other_width = {
        "name": "shufflenet-1x",
        "accuracy": 0.2,
        "latency_ms": 8.0,
        "generated_by": "nas baselines",
    }
    (run_dir / "baselines.json").write_text(json.dumps([mine, earlier, other_width]))
    results = evaluate_baselines(run_dir, (0.5,), executor=ray_executor)
    assert all(r["generated_by"] == "nas baselines" for r in results)
    stored = json.loads((run_dir / "baselines.json").read_text())
    assert stored == [mine, other_width] + json.loads(
        json.dumps(results)
    )  # the earlier mobilenetv2-0.5x replaced
    assert [b.name for b in _read_baselines(run_dir)][:2] == ["MyNet", "shufflenet-1x"]


def test_a_broken_baselines_file_is_refused_before_any_training(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "baselines.json").write_text('{"name": "MyNet"}')
    with pytest.raises(NasError, match="baselines.json: must be a JSON list"):
        evaluate_baselines(run_dir, (0.5,))
    assert (run_dir / "baselines.json").read_text() == '{"name": "MyNet"}'


def test_exported_baselines_are_model_folders_that_nas_train_trains(
    tmp_path, searched_run, tiny_dataset_file, ray_executor, monkeypatch
):
    # One family (SE and Hardswish: the most kinds of node) is enough for the folder contract; each export
    # and training costs seconds. Every family builds and trains in the tests above.
    module = importlib.import_module("nas.baselines")
    monkeypatch.setattr(module, "_FAMILIES", {"mobilenetv3-small": module._FAMILIES["mobilenetv3-small"]})
    run_dir = copy_of(searched_run, tmp_path)
    results = evaluate_baselines(run_dir, (0.5,), executor=ray_executor, export=True)
    config = json.loads((run_dir / "config.json").read_text())
    for entry in results:
        folder = run_dir / "baselines" / entry["name"]
        assert entry["export"] == str(folder)
        assert {p.name for p in folder.iterdir()} >= {
            "model.onnx",
            "spec.json",
            "metrics.json",
            "model_card.md",
        }
        spec, metrics = (json.loads((folder / name).read_text()) for name in ("spec.json", "metrics.json"))
        # the space's input (16 px here), the run's preprocessing, and the run it belongs to
        assert spec["architecture"]["resolution"] == 16 and spec["baseline"] == entry["name"]
        assert spec["preprocessing"]["mean"] == config["preprocessing"]["mean"]
        assert spec["exported_from"]["run_dir"] == str(run_dir.resolve())
        assert metrics["proxy_accuracy"] == entry["accuracy"] and metrics["latency_ms"] == entry["latency_ms"]
        assert json.loads(read_metadata(folder / "model.onnx")["nas.preprocessing"])["classes"] == [
            "red",
            "green",
        ]

    # nas train trains them and re-exports them; run again, it would train them alone, not its own outputs
    command = ["train", str(run_dir), "--baselines", "--dataset", str(tiny_dataset_file), "--epochs", "1"]
    assert main([*command, "--quiet"]) == 0
    assert baseline_exports(run_dir) == sorted(run_dir / "baselines" / entry["name"] for entry in results)
    for entry in results:
        out = run_dir / "baselines" / f"{entry['name']}-deployed"
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["baseline"] == entry["name"] and metrics["proxy_accuracy"] == entry["accuracy"]
        assert metrics["onnx_vs_torch_max_abs_diff"] <= 1e-3 and (out / "model.onnx").is_file()


def test_baselines_match_the_input_resolution_asked_for():
    assert {a.resolution for a in hand_designed((0.5,), resolution=16).values()} == {16}
