"""Slice evaluation of a real exported model (tiny search), fed only from its ONNX metadata."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from nas.errors import NasError
from nas.evaluate import Preprocessing
from nas.validate import evaluate_slices, preprocess
from nas.validate._onnx import OnnxClassifier

FAMILIES = ("gaussian_noise", "defocus_blur", "occlusion")


@pytest.fixture(scope="module")
def report(exported_model, tiny_dataset_file):
    return evaluate_slices(
        exported_model, tiny_dataset_file, families=FAMILIES, severities=(1, 5), split="all"
    )


def _manual_predictions(onnx_path, x):
    """Preprocess as the metadata says, written out independently of nas.validate."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pre = json.loads(session.get_modelmeta().custom_metadata_map["nas.preprocessing"])
    inp = (x.astype(np.float32) / 255 - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return session.run(None, {pre["input_name"]: inp.transpose(0, 3, 1, 2).astype(np.float32)})[0].argmax(1)


def test_clean_accuracy_on_the_search_validation_split_equals_the_proxy_accuracy(
    exported_dir, tiny_dataset_file
):
    metrics = json.loads((exported_dir / "metrics.json").read_text())
    clean = evaluate_slices(exported_dir / "model.onnx", tiny_dataset_file, families=(), seed=0).clean
    assert clean["n"] == 8  # 10% of 2 x 40, per class
    assert clean["accuracy"] == pytest.approx(metrics["proxy_accuracy"])


def test_report_structure_and_per_class_consistency(report, exported_model, tiny_dataset_file):
    data = np.load(tiny_dataset_file)
    assert [s["name"] for s in report.slices] == ["clean"] + [f"{f}@{s}" for f in FAMILIES for s in (1, 5)]
    predicted = _manual_predictions(exported_model, data["x"])
    assert report.clean["n"] == 80 and report.clean["correct"] == int((predicted == data["y"]).sum())
    for s in report.slices:
        per_class = s["per_class"]
        assert sum(c["n"] for c in per_class.values()) == s["n"]
        assert sum(round(c["accuracy"] * c["n"]) for c in per_class.values()) == s["correct"]
        assert s["ci95"][0] <= s["accuracy"] <= s["ci95"][1]
        assert s["thin"] and "n = 80 < 100" in s["thin_reason"]
        assert s["drop"] == pytest.approx(report.clean["accuracy"] - s["accuracy"])
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["worst_slice_accuracy"] == min(s["accuracy"] for s in report.slices[1:])
    assert as_dict["thin_slices"] == [s["name"] for s in report.slices]


def test_occlusion_slice_matches_manual_corruption(report, exported_model, tiny_dataset_file):
    from nas.validate import corrupt

    data = np.load(tiny_dataset_file)
    predicted = _manual_predictions(exported_model, corrupt(data["x"], "occlusion", 5, seed=0))
    assert report.slice("occlusion@5")["correct"] == int((predicted == data["y"]).sum())


def test_resize_follows_the_training_normalizer():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 24, 20, 3), dtype=np.uint8)
    pre = {"input_shape": ["batch", 3, 16, 16], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    ours = preprocess(images, pre)
    theirs = (
        Preprocessing(pre["mean"], pre["std"], 16)(torch.from_numpy(images), augment=False)
        .contiguous()
        .numpy()
    )
    assert ours.shape == theirs.shape == (4, 3, 16, 16)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # Pillow float resize == torch antialiased bilinear
    up = rng.integers(0, 256, size=(2, 12, 12, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        preprocess(up, pre),
        Preprocessing(pre["mean"], pre["std"], 16)(torch.from_numpy(up), augment=False).contiguous().numpy(),
        atol=1e-4,
    )
    same = preprocess(images[:, :16, :16], pre)
    exact = Preprocessing(pre["mean"], pre["std"], 16)(
        torch.from_numpy(images[:, :16, :16].copy()), augment=False
    )
    np.testing.assert_allclose(same, exact.contiguous().numpy(), atol=1e-5)


def _write_folder(root, images_by_class):
    for name, images in images_by_class.items():
        (root / name).mkdir(parents=True)
        for i, img in enumerate(images):
            Image.fromarray(img).save(root / name / f"{i:03d}.png")


def test_user_slices_by_folder(tmp_path, exported_model, tiny_dataset_file):
    data = np.load(tiny_dataset_file)
    x, y = data["x"], data["y"]
    slices = tmp_path / "slices"
    dim = (x * 0.5).astype(np.uint8)
    _write_folder(slices / "night", {"red": dim[y == 0][:12], "green": dim[y == 1][:9]})
    _write_folder(slices / "only_green", {"green": x[y == 1][:5]})
    (slices / ".hidden").mkdir()
    result = evaluate_slices(exported_model, tiny_dataset_file, families=(), user_slices=slices)
    names = [s["name"] for s in result.slices]
    assert names == ["clean", "user:night", "user:only_green"]
    night = result.slice("user:night")
    assert night["kind"] == "user" and night["n"] == 21 and night["folder"].endswith("night")
    assert set(night["per_class"]) == {"red", "green"} and night["per_class"]["red"]["n"] == 12
    expected = np.concatenate([dim[y == 0][:12], dim[y == 1][:9]])
    labels = np.array([0] * 12 + [1] * 9)
    assert night["correct"] == int((_manual_predictions(exported_model, expected) == labels).sum())
    assert set(result.slice("user:only_green")["per_class"]) == {"green"}


def test_unknown_class_folder_is_an_error(tmp_path, exported_model, tiny_dataset_file):
    slices = tmp_path / "slices"
    _write_folder(slices / "fog", {"blue": np.zeros((2, 16, 16, 3), np.uint8)})
    with pytest.raises(
        NasError,
        match=r"slice folder .*fog/blue: class 'blue' is not a class of the model \(model classes: red, green\)",
    ):
        evaluate_slices(exported_model, tiny_dataset_file, families=(), user_slices=slices)
    with pytest.raises(NasError, match="slices folder not found"):
        evaluate_slices(exported_model, tiny_dataset_file, families=(), user_slices=tmp_path / "nope")


def test_other_user_mistakes(tmp_path, exported_model, tiny_dataset_file):
    with pytest.raises(NasError, match="unknown corruption 'rain'"):
        evaluate_slices(exported_model, tiny_dataset_file, families=("rain",))
    with pytest.raises(NasError, match="severities: severity must be an integer 1..5"):
        evaluate_slices(exported_model, tiny_dataset_file, severities=(0,))
    with pytest.raises(NasError, match="ONNX model file not found"):
        evaluate_slices(tmp_path / "missing.onnx", tiny_dataset_file)
    bare = onnx.load(str(exported_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(NasError, match="no 'nas.preprocessing' metadata"):
        evaluate_slices(tmp_path / "bare.onnx", tiny_dataset_file)
    np.savez(
        tmp_path / "other.npz",
        x=np.zeros((4, 16, 16, 3), np.uint8),
        y=np.array([0, 0, 1, 1]),
        classes=np.array(["red", "cat"]),
    )
    with pytest.raises(NasError, match=r"dataset .*other.npz: class 'cat' is not a class of the model"):
        evaluate_slices(exported_model, tmp_path / "other.npz", split="all")


def test_max_images_subset_and_outputs(tmp_path, report, exported_model, tiny_dataset_file):
    small = evaluate_slices(
        exported_model, tiny_dataset_file, families=("jpeg",), severities=(3,), split="all", max_images=30
    )
    assert [s["n"] for s in small.slices] == [30, 30]
    from rich.console import Console

    buffer = io.StringIO()
    report.print(Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "occlusion@5" in text and "thin" in text and report.worst["name"] in text
    png = report.write_plot(tmp_path / "slices.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(report.write_json(tmp_path / "slices.json").read_text())
    assert saved["slices"][0]["name"] == "clean" and saved["precision"] == "fp32"
    assert OnnxClassifier(exported_model).classes == ("red", "green")
