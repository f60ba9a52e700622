"""Bad input to `nas adapt`, table-driven: each row exits 2 with one line (argparse's usage lines for flag
syntax), no traceback, nothing trained, and every file of the fixture folder as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.validate.candidate_models import build_selection_fixtures, colour_model, tiny_export
from tests.validate.test_select_bad_input import ARGPARSE, run_cli, snapshot

M = "{R}/export"
AD = ["adapt", M, "--data", "{R}/d.npz", "--families", "dark", "--no-latency"]

CASES = [
    # the model and where the adapted one goes
    ("model-not-found", ["adapt", "{R}/nope", "--data", "{R}/d.npz"], "exported model folder not found"),
    ("model-folder-not-an-export", ["adapt", "{R}/images", "--data", "{R}/d.npz"], "missing spec.json"),
    ("model-onnx-without-folder", ["adapt", "{R}/bare/net.onnx", "--data", "{R}/d.npz"], "folder not found"),
    (
        "model-onnx-broken",
        ["adapt", "{R}/broken", "--data", "{R}/d.npz", "--no-latency"],
        "broken/model.onnx",
    ),
    ("out-is-the-model", [*AD, "--out", M], "is the model's own folder"),
    ("out-holds-a-model", [*AD, "--out", "{R}/other"], "already holds a model"),
    ("out-is-a-file", [*AD, "--out", "{R}/classes.txt"], "is a file, not a folder"),
    # training settings
    ("no-data", ["adapt", M], ARGPARSE),
    ("data-not-found", ["adapt", M, "--data", "{R}/nope.npz", "--no-latency"], "nope.npz"),
    ("data-other-classes", ["adapt", M, "--data", "{R}/three.npz", "--no-latency"], "'blue' is not a class"),
    ("epochs-zero", [*AD, "--epochs", "0"], "--epochs: must be an integer >= 1"),
    ("epochs-not-a-number", [*AD, "--epochs", "many"], ARGPARSE),
    ("train-subset-zero", [*AD, "--train-subset", "0"], "--train-subset: must be an integer >= 1"),
    ("min-gap-out-of-range", [*AD, "--min-gap", "1.5"], "--min-gap: must be a number in [0, 1)"),
    ("min-gap-nan", [*AD, "--min-gap", "nan"], "--min-gap: must be a number in [0, 1)"),
    ("max-families-zero", [*AD, "--max-families", "0"], "--max-families: must be an integer >= 1"),
    ("max-clean-loss-negative", [*AD, "--max-clean-loss", "-0.1"], "--max-clean-loss: must be a number"),
    ("seed-negative", [*AD, "--seed", "-1"], "--seed: must be an integer >= 0"),
    # evaluation slices
    (
        "eval-data-overlaps-training",
        [*AD, "--eval-data", "{R}/d.npz", "--eval-split", "all"],
        "also training",
    ),
    ("eval-data-not-found", [*AD, "--eval-data", "{R}/nope.npz"], "nope.npz"),
    ("eval-split-unknown", [*AD, "--eval-split", "test"], ARGPARSE),
    ("family-unknown", [*AD[:4], "--families", "fog", "--no-latency"], "fog"),
    ("severity-out-of-range", [*AD, "--severities", "9"], "9"),
    ("slices-not-found", [*AD, "--slices", "{R}/nope"], "nope"),
    # candidates and outputs
    ("candidate-not-found", [*AD, "--candidates", "{R}/nope.onnx"], "ONNX model file not found"),
    ("candidate-other-classes", [*AD, "--candidates", "{R}/three/model.onnx"], "are not the model's"),
    ("candidate-no-preprocessing", [*AD, "--candidates", "{R}/bare/net.onnx"], "no preprocessing"),
    ("profile-unknown", [*AD[:-1], "--profile", "toaster"], "unknown hardware profile 'toaster'"),
    ("json-out-is-a-folder", [*AD, "--json-out", "{R}/images"], "is a folder"),
    ("html-under-a-file", [*AD, "--html", "{R}/classes.txt/page.html"], "is a file"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-adapt") / "template"
    build_selection_fixtures(root)
    tiny_export(root / "export", root / "d.npz")
    shutil.copytree(root / "export", root / "other")
    (root / "broken").mkdir()
    shutil.copy(root / "export" / "spec.json", root / "broken" / "spec.json")
    (root / "broken" / "model.onnx").write_bytes(b"not a model")
    colour_model(root / "three" / "model.onnx", classes=["red", "green", "blue"])
    data = np.load(root / "d.npz")
    np.savez(
        root / "three.npz",
        x=data["x"],
        y=np.arange(len(data["y"])) % 3,
        classes=np.array(["red", "green", "blue"]),
    )
    return root


@pytest.fixture
def root(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "user"))


@pytest.mark.parametrize("case_id,argv,phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, argv, phrase, root, capsys, monkeypatch):
    import nas.export

    def no_training(*args, **kwargs):
        raise AssertionError("a bad input reached the training")

    monkeypatch.setattr(nas.export, "deploy_train", no_training)
    argv = [a.replace("{R}", str(root)) for a in argv]
    before = snapshot(root)
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}, stderr: {err}"
    if phrase == ARGPARSE:
        assert err.startswith("usage: ") and "error: " in err, err
    else:
        assert err.startswith("nas: error: ") and err.count("\n") == 1, err
        assert phrase.replace("{R}", str(root)) in err, err
    assert snapshot(root) == before


def test_the_table_is_large_and_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)
