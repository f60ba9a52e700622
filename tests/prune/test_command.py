"""`nas prune` end to end on a tiny network: cut to a predicted latency, fine-tune, re-export; the same
command again does nothing, another command in the same --out is refused, the source is only read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from nas.builder import build_model
from tests.prune.test_channels import PRIMITIVES, small


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def trained_folder(tmp_path) -> Path:
    """A `nas train`-style folder: spec.json, metrics.json and the weights in train_state.safetensors."""
    from nas.export import STATE_FILE
    from nas.export._checkpoint import save_state

    arch = small(PRIMITIVES[0])
    folder = tmp_path / "model"
    folder.mkdir()
    from nas.evaluate import preprocessing_spec

    pre = preprocessing_spec((0.5,) * 3, (0.25,) * 3, 16, ("red", "green"))
    spec = {"arch_hash": arch.hash, "architecture": arch.to_dict(), "num_classes": 2, "preprocessing": pre}
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "metrics.json").write_text(json.dumps({"proxy_accuracy": 0.5, "accuracy": 0.5}))
    save_state(folder / STATE_FILE, {"model": build_model(arch, num_classes=2, seed=0).state_dict()})
    return folder


def test_prune_cuts_fine_tunes_exports_and_resumes(
    trained_folder, tiny_dataset_file, x86_model_profile, tmp_path
):
    from nas.errors import NasError
    from nas.latency import load_profile
    from nas.prune import CUT_FOLDER, PRUNE_FILE, prune_export
    from nas.space import Architecture

    source = _snapshot(trained_folder)
    arch = small(PRIMITIVES[0])
    start = load_profile(x86_model_profile).predict(_features(arch)).latency_ms
    target = round(0.97 * start, 6)  # a cut or two: the test stays short
    settings = dict(profile=str(x86_model_profile), latency="predicted", epochs=1, train_subset=32)
    settings.update(dataset=str(tiny_dataset_file), calibration_images=32)
    out = prune_export(trained_folder, target, out=tmp_path / "pruned", **settings)

    record = json.loads((out / PRUNE_FILE).read_text())
    assert record["finished"] and record["steps"]
    assert record["latency_before"]["latency_ms"] == pytest.approx(start)
    after = record["latency_after"]
    assert (
        after["how"] == "predicted" and after["latency_ms"] <= target and after["low_ms"] < after["high_ms"]
    )
    spec = json.loads((out / "spec.json").read_text())
    pruned = Architecture.from_dict(spec["architecture"])
    assert pruned.pruned and spec["arch_hash"] == pruned.hash != arch.hash
    assert json.loads((out / "metrics.json").read_text())["pruning"]["target_ms"] == target
    assert (out / "model.onnx").is_file() and (out / "model_card.md").is_file()
    cut = json.loads((out / CUT_FOLDER / "spec.json").read_text())
    assert cut["architecture"] == spec["architecture"]  # fine-tuning kept the cut architecture
    model = build_model(pruned, num_classes=2)
    from nas.export import read_init

    model.load_state_dict(read_init(out).weights)  # the export's weights rebuild from its spec
    assert _snapshot(trained_folder) == source

    written = _snapshot(out)
    assert prune_export(trained_folder, target, out=out, **settings) == out  # the same command: nothing to do
    assert _snapshot(out) == written
    with pytest.raises(NasError, match="holds a prune of another command .*latency_ms"):
        prune_export(trained_folder, target * 0.9, out=out, **settings)
    assert _snapshot(out) == written


def _features(arch):
    from nas.latency import ArchitectureFeaturizer

    return ArchitectureFeaturizer(2).features(arch)


def test_measured_latency_is_measured_once_the_estimate_meets_the_target():
    """The measured path: prices from the model, the first measurement scales them, and the network is
    measured again only when the scaled estimate is within the target; a target no cut reaches is one
    NasRuntimeError (exit 1), raised before anything is written."""
    from nas.errors import NasRuntimeError
    from nas.latency import COLUMNS
    from nas.prune._cut import LatencyJudge, cut_to_latency

    class Model:
        def predict(self, features):
            class Prediction:
                latency_ms = sum(features.vector([c for c in COLUMNS if c.endswith(".macs")])) * 1e-6 + 0.01

                def to_dict(self):
                    return {"latency_ms": self.latency_ms}

            return Prediction()

    measured = []

    def measure(model, arch):
        measured.append(arch.hash)
        return {"latency_ms": 2 * LatencyJudge(Model(), 10).price(arch)}  # this machine: twice the model

    arch = small(PRIMITIVES[1])  # expansion 1: few groups, so the unreachable target is reached soon
    model = build_model(arch, num_classes=10, seed=0)
    judge = LatencyJudge(Model(), 10, measure=measure, how="measured")
    first = 2 * judge.price(arch)
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    outcome = cut_to_latency(model, arch, x, y, judge, 0.7 * first)
    assert outcome.latency_after["how"] == "measured" and outcome.latency_after["latency_ms"] <= 0.7 * first
    assert len(measured) == 2  # before, and once the estimate met the target
    with pytest.raises(NasRuntimeError, match="no channel cut brings the network below 1e-06 ms"):
        cut_to_latency(model, outcome.arch, x, y, LatencyJudge(Model(), 10), 1e-6)
    assert [s.latency_ms for s in outcome.steps][:-1] == sorted(
        [s.latency_ms for s in outcome.steps][:-1], reverse=True
    )


def test_distilled_fine_tuning_learns_from_the_network_before_the_cut(
    trained_folder, tiny_dataset_file, x86_model_profile, tmp_path
):
    """--distill: the source's model.onnx is the teacher of the fine-tuning, recorded in the command and in
    the model's training record; a source without model.onnx is refused before anything is cut or written."""
    from nas.errors import NasError
    from nas.evaluate import preprocessing_spec
    from nas.export._folder import write_model_folder
    from nas.latency import load_profile
    from nas.prune import PRUNE_FILE, prune_export

    arch = small(PRIMITIVES[0])
    target = round(0.97 * load_profile(x86_model_profile).predict(_features(arch)).latency_ms, 6)
    settings = dict(profile=str(x86_model_profile), latency="predicted", epochs=1, train_subset=32)
    settings.update(dataset=str(tiny_dataset_file), calibration_images=32, distill=True, kd_alpha=0.7)
    with pytest.raises(NasError, match="--distill needs its model.onnx"):
        prune_export(trained_folder, target, out=tmp_path / "refused", **settings)
    assert not (tmp_path / "refused").exists()

    pre = preprocessing_spec((0.5,) * 3, (0.25,) * 3, 16, ("red", "green"))
    model = build_model(arch, num_classes=2, seed=0).eval()
    write_model_folder(trained_folder, model, arch, 2, pre, {"proxy_accuracy": 0.5, "accuracy": 0.5})
    out = prune_export(trained_folder, target, out=tmp_path / "distilled", **settings)
    command = json.loads((out / PRUNE_FILE).read_text())["command"]
    assert command["distill"] == {"teacher": "EXPORT_DIR", "alpha": 0.7, "temperature": 4.0}
    training = json.loads((out / "metrics.json").read_text())["training"]["knowledge_distillation"]
    assert Path(training["teacher"]) == trained_folder / "model.onnx" and training["alpha"] == 0.7
    with pytest.raises(NasError, match="holds a prune of another command .*distill"):
        prune_export(trained_folder, target, out=out, **{**settings, "distill": False})
