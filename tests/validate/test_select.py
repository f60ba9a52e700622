"""`nas select` / `compare_candidates`: nas exports and off-the-shelf ONNX classifiers on the same images,
the candidates x slices matrix with exact McNemar tests, JSON and a page that renders in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.errors import NasError
from nas.validate import PreprocessingFlags, compare_candidates, load_candidate, mcnemar_exact
from tests.validate.candidate_models import CLASSES, MEAN, STD, build_selection_fixtures, offshelf_model

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("select")
    build_selection_fixtures(root)
    return root


@pytest.fixture(scope="module")
def report(root):
    return compare_candidates(
        [root / "a" / "model.onnx", root / "b" / "model.onnx", root / "off" / "net.onnx"],
        root / "d.npz",
        split="all",
        manifest=root / "manifest.csv",
        slice_columns=("camera",),
        combine=[("camera", "site")],
        families=("dark",),
        profile="x86-cpu",
    )


def test_mcnemar_exact_is_the_two_sided_binomial_test():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 8) == pytest.approx(2 / 2**8)
    assert mcnemar_exact(3, 10) == mcnemar_exact(10, 3) == pytest.approx(0.09228515625)
    assert mcnemar_exact(5, 5) == 1.0


def test_every_candidate_on_the_same_slices(report):
    d = report.to_dict()
    names = [c["name"] for c in d["candidates"]]
    assert names == ["a/model", "b/model", "off/net"]
    slices = [s["name"] for s in d["slices"]]
    assert slices[:3] == ["clean", "dark@3", "manifest"]
    assert "camera=c1" in slices and "camera=c2 & site=s3" in slices and "site=s1" not in slices
    for s in d["slices"]:
        assert set(s["results"]) == set(names)
        for r in s["results"].values():
            assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
            assert 0 <= r["ece"] <= 1 and set(r["recall"]) <= set(CLASSES)
    combos = [s for s in d["slices"] if "&" in s["name"]]
    assert combos and all(s["thin"] and s["thin_reason"].startswith("n = ") for s in combos)


def test_the_best_candidate_is_tested_against_each_other_on_the_same_images(report):
    d = report.to_dict()
    clean = d["slices"][0]
    assert clean["best"] == "a/model" and clean["results"]["a/model"]["accuracy"] == 1.0
    against = {c["against"]: c for c in clean["comparisons"]}
    assert set(against) == {"b/model", "off/net"}
    # the off-the-shelf net with random weights is near chance: significantly worse on 120 images
    assert against["off/net"]["significant"] and against["off/net"]["p_value"] < 1e-6
    assert against["off/net"]["other_only_correct"] == 0
    # the noisy colour model is as good on clean images but collapses on dark ones
    assert not against["b/model"]["significant"]
    dark = next(s for s in d["slices"] if s["name"] == "dark@3")
    assert {c["against"]: c["significant"] for c in dark["comparisons"]}["b/model"]
    cands = {c["name"]: c for c in d["candidates"]}
    assert cands["b/model"]["worst_slice"] == "dark@3"
    assert cands["off/net"]["preprocessing"] == "sidecar" and cands["a/model"]["preprocessing"] == "metadata"
    assert all(c["latency"]["median_ms"] > 0 for c in d["candidates"])


def test_json_and_page_in_headless_chromium(report, tmp_path):
    report.write_json(tmp_path / "select.json")
    data = json.loads((tmp_path / "select.json").read_text())
    assert data["test"].startswith("exact McNemar") and len(data["slices"]) == len(report.slices)
    page = report.write_html(tmp_path / "select.html")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.fail("no Chromium found: install it, e.g. `apt-get install -y chromium` (CI installs it)")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rendered = re.search(r'<body[^>]*data-images-rendered="(\d+)/(\d+)"', done.stdout)
    assert rendered and rendered.group(1) == rendered.group(2) == "1", done.stdout[:500]
    assert "camera=c2 &amp; site=s3" in done.stdout and "off/net" in done.stdout


def test_off_the_shelf_preprocessing_from_flags_fills_only_missing_fields(root):
    bare = root / "bare" / "net.onnx"
    flags = PreprocessingFlags(input_size=(12, 12), mean=tuple(MEAN), std=tuple(STD),
                               classes=str(root / "classes.txt"), layout="NHWC")  # fmt: skip
    model, source = load_candidate(bare, flags)
    assert source == "flags" and model.classes == tuple(CLASSES) and model.input_size == (12, 12)
    assert model.logits(np.zeros((3, 20, 20, 3), np.uint8)).shape == (3, 2)
    nas_model, source = load_candidate(root / "a" / "model.onnx", flags)
    assert source == "metadata" and nas_model.input_size == (16, 16)  # flags never override metadata
    with pytest.raises(NasError, match=r"net\.onnx: no preprocessing: missing mean, std, classes"):
        load_candidate(bare, PreprocessingFlags(input_size=(12, 12)))


def test_the_command_writes_json_and_page(root, tmp_path, capsys):
    argv = ["select", str(root / "a" / "model.onnx"), str(root / "bare" / "net.onnx"),
            "--manifest", str(root / "manifest.csv"), "--no-latency", "--input-size", "12x12",
            "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--classes", str(root / "classes.txt"),
            "--layout", "NHWC", "--json-out", str(tmp_path / "s.json"), "--html", str(tmp_path / "s.html")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "manifest" in out and "camera=c1" in out and "timestamp=" not in out
    data = json.loads((tmp_path / "s.json").read_text())
    assert any("timestamp: 120 distinct values" in n for n in data["notes"])
    assert (tmp_path / "s.html").is_file()


@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("torchvision"), reason="torchvision is not installed"
)
def test_a_torchvision_mobilenet_v3_competes(root, tmp_path):
    import torch
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    net = mobilenet_v3_small(weights=None, num_classes=2).eval()  # random weights: nothing is downloaded
    path = tmp_path / "mobilenet.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), str(path), input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "n"}})  # fmt: skip
    flags = PreprocessingFlags(input_size=(32, 32), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                               classes=str(root / "classes.txt"))  # fmt: skip
    report = compare_candidates([root / "a" / "model.onnx", path], root / "d.npz", split="all",
                                profile=None, preprocessing=flags)  # fmt: skip
    assert [c["preprocessing"] for c in report.candidates] == ["metadata", "flags"]


def test_a_hand_built_nhwc_network_of_another_structure_competes(root, tmp_path):
    net = offshelf_model(tmp_path / "other" / "nhwc.onnx", size=20, seed=7)
    flags = PreprocessingFlags(input_size=(20, 20), mean=tuple(MEAN), std=tuple(STD),
                               classes=str(root / "classes.txt"), layout="NHWC")  # fmt: skip
    report = compare_candidates([root / "a" / "model.onnx", net], root / "d.npz", split="all", profile=None,
                                preprocessing=flags)  # fmt: skip
    assert [c["name"] for c in report.candidates] == ["model", "nhwc"]  # stems tell them apart
    assert report.candidates[1]["input_size"] == [20, 20]
    assert 0 <= report.slices[0]["results"]["nhwc"]["accuracy"] <= 1.0


def test_json_alone_prints_the_comparison_on_stdout(root, capsys):
    argv = ["select", str(root / "a" / "model.onnx"), str(root / "b" / "model.onnx"), "--data", str(root / "d.npz"),
            "--split", "all", "--no-latency", "--json"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [c["name"] for c in data["candidates"]] == ["a/model", "b/model"] and "clean" in captured.err
