"""model_card.md of a real exported model, with and without slice and INT8 results next to it."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from nas.errors import NasError
from nas.latency import list_profiles
from nas.validate import compare_precisions, evaluate_slices, quantize_int8, write_model_card


def test_card_without_then_with_validation_results(exported_dir, tiny_dataset_file, tmp_path):
    folder = tmp_path / exported_dir.name
    shutil.copytree(exported_dir, folder)
    spec = json.loads((folder / "spec.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())

    text = write_model_card(folder).read_text()
    assert text.startswith("---\n")  # the front matter first, then the card
    assert f"\n---\n\n# Model card: {folder.name}\n" in text
    assert (
        f"parameters: {metrics['params']:,}" in text
        and f"MACs: {metrics['macs']:,} (fvcore: convolution and linear" in text
    )
    for stage in spec["architecture"]["stages"]:
        assert f"| {stage['name']} | {stage['stride']} | {stage['width']} | {len(stage['blocks'])} |" in text
    assert "| x86-cpu | measured now on" in text and "spread" in text
    for profile in list_profiles():
        if profile.latency == "predicted":
            assert f"| {profile.name} | predicted by its latency model |" in text
            assert f"cross-validated MAPE {profile.validation['mape']:.1f}%" in text
    assert f"Proxy accuracy {100 * metrics['proxy_accuracy']:.1f}%" in text
    assert "Not evaluated (no slices.json" in text and "Not quantized (no int8.json" in text

    evaluate_slices(
        folder / "model.onnx", tiny_dataset_file, families=("jpeg",), severities=(5,), split="all"
    ).write_json(folder / "slices.json")
    int8 = quantize_int8(folder / "model.onnx", tiny_dataset_file, samples=16, split="all")
    result = compare_precisions(
        folder / "model.onnx",
        int8,
        tiny_dataset_file,
        families=("jpeg",),
        severities=(5,),
        split="all",
        measure=False,
    )
    (folder / "int8.json").write_text(json.dumps(result))
    text = write_model_card(folder, measure=False).read_text()
    assert "| x86-cpu | measured now" not in text
    front = yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))
    measured = front["model-index"][0]["results"][0]["metrics"]
    clean = json.loads((folder / "slices.json").read_text())["clean_accuracy"]
    assert any(m["name"].startswith("clean accuracy (nas validate") and m["value"] == clean for m in measured)
    assert "| clean | 80 |" in text and "| jpeg@5 | 80 |" in text and "thin: n = 80 < 100" in text
    assert (
        f"clean accuracy: FP32 {100 * result['clean']['fp32']:.1f}%, INT8 {100 * result['clean']['int8']:.1f}%"
        in text
    )
    assert "jetson-tx2 latency: FP32 predicted" in text and "INT8 not predictable" in text
    assert "per-channel int8 weights, uint8 activations, MinMax calibration on 16 images" in text


def test_card_mistakes(tmp_path):
    with pytest.raises(NasError, match="exported model folder not found"):
        write_model_card(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasError, match="missing spec.json"):
        write_model_card(tmp_path / "empty")
