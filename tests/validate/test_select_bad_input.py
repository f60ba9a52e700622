"""Bad input to `nas select` and `nas drift`, table-driven: each row exits 2 with one line (argparse's usage
lines for flag syntax), no traceback, and leaves every file of the fixture folder as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nas.cli import main
from tests.validate.candidate_models import MEAN, STD, build_selection_fixtures, colour_model

ARGPARSE = "usage:"
A, OFF, BARE = "{R}/a/model.onnx", "{R}/off/net.onnx", "{R}/bare/net.onnx"
SEL = ["select", A, OFF, "--no-latency"]
MAN = ["--manifest", "{R}/manifest.csv"]
FLAGS = ["--input-size", "12", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--layout", "NHWC"]
DRIFT = ["drift", A, "--manifest", "{R}/manifest.csv", "--time-column", "timestamp", "--window", "20"]

MANIFESTS = {
    "no-label.csv": "path,camera\nimages/00000.png,c1\n",
    "no-path.csv": "file,label\nimages/00000.png,red\n",
    "empty.csv": "",
    "header-only.csv": "path,label,camera\n",
    "unknown-label.csv": "path,label\nimages/00000.png,red\nimages/00001.png,blue\n",
    "missing-image.csv": "path,label\nimages/00000.png,red\nimages/nope.png,red\n",
    "duplicate-row.csv": "path,label\nimages/00000.png,red\nimages/00001.png,red\nimages/00000.png,red\n",
    "duplicate-column.csv": "path,label,camera,camera\nimages/00000.png,red,c1,c2\n",
    "ragged.csv": "path,label\nimages/00000.png,red,extra\n",
    "empty-label.csv": "path,label\nimages/00000.png,\n",
    "not-an-image.csv": "path,label\nclasses.txt,red\n",
    "unknown-label-time.csv": "path,label,t\nimages/00000.png,red,1\nimages/00001.png,blue,2\n",
    "bad-time.csv": "path,label,timestamp\nimages/00000.png,red,yesterday\n",
}

CASES = [
    # manifests
    ("manifest-not-found", [*SEL, "--manifest", "{R}/nope.csv"], "manifest not found: {R}/nope.csv"),
    ("manifest-no-label-column", [*SEL, "--manifest", "{R}/no-label.csv"], "no 'label' column"),
    ("manifest-no-path-column", [*SEL, "--manifest", "{R}/no-path.csv"], "no 'path' column"),
    ("manifest-empty", [*SEL, "--manifest", "{R}/empty.csv"], "empty manifest"),
    ("manifest-header-only", [*SEL, "--manifest", "{R}/header-only.csv"], "a header but no rows"),
    (
        "manifest-unknown-label",
        [*SEL, "--manifest", "{R}/unknown-label.csv"],
        "unknown-label.csv:3: label 'blue'",
    ),
    ("manifest-image-not-found", [*SEL, "--manifest", "{R}/missing-image.csv"], ":3: image not found"),
    ("manifest-duplicate-row", [*SEL, "--manifest", "{R}/duplicate-row.csv"], ":4: duplicate row"),
    ("manifest-duplicate-column", [*SEL, "--manifest", "{R}/duplicate-column.csv"], "'camera' appears twice"),
    ("manifest-ragged-row", [*SEL, "--manifest", "{R}/ragged.csv"], ":2: 3 fields where the header has 2"),
    ("manifest-empty-label", [*SEL, "--manifest", "{R}/empty-label.csv"], ":2: empty label"),
    ("manifest-not-utf8", [*SEL, "--manifest", "{R}/latin1.csv"], "not a UTF-8 CSV file"),
    ("manifest-not-an-image", [*SEL, "--manifest", "{R}/not-an-image.csv"], "cannot decode image"),
    ("manifest-is-a-folder", [*SEL, "--manifest", "{R}/images"], "is not a file"),
    # slices
    ("combine-unknown-column", [*SEL, *MAN, "--combine", "camera,weather"], "no column 'weather'"),
    ("combine-one-column", [*SEL, *MAN, "--combine", "camera"], "two or more different columns"),
    ("slice-columns-unknown", [*SEL, *MAN, "--slice-columns", "lens"], "--slice-columns: manifest"),
    ("families-without-data", [*SEL, *MAN, "--families", "dark"], "need --data"),
    ("family-unknown", [*SEL, "--data", "{R}/d.npz", "--families", "fog"], "fog"),
    ("severity-out-of-range", [*SEL, "--data", "{R}/d.npz", "--families", "dark", "--severities", "9"], "9"),
    # candidates
    ("one-candidate", ["select", A, *MAN], "two or more candidate models"),
    ("candidate-twice", ["select", A, A, *MAN], "is given twice"),
    ("candidate-not-found", ["select", A, "{R}/nope.onnx", *MAN], "ONNX model file not found"),
    ("classes-mismatch", ["select", A, "{R}/three/model.onnx", *MAN, "--no-latency"], "disagree on classes"),
    ("no-preprocessing", ["select", A, BARE, *MAN], "bare/net.onnx: no preprocessing: missing input_size"),
    ("flags-missing-classes", ["select", A, BARE, *MAN, *FLAGS], "missing classes"),
    (
        "classes-file-not-found",
        ["select", A, BARE, *MAN, *FLAGS, "--classes", "{R}/nope.txt"],
        "classes file not found",
    ),
    (
        "classes-file-wrong-count",
        ["select", A, BARE, *MAN, *FLAGS, "--classes", "{R}/three.txt", "--no-latency"],
        "outputs 2 scores but its flags preprocessing lists 3 classes",
    ),
    (
        "mean-two-numbers",
        ["select", A, BARE, *MAN, *FLAGS, "--classes", "{R}/classes.txt", "--mean", "0.5,0.5"],
        "'mean' must be 3 numbers",
    ),
    ("input-size-syntax", ["select", A, BARE, *MAN, "--input-size", "big"], ARGPARSE),
    ("layout-unknown", ["select", A, BARE, *MAN, "--layout", "CHWN"], ARGPARSE),
    ("sidecar-not-json", ["select", A, "{R}/sc-json/net.onnx", *MAN], "not valid JSON"),
    ("sidecar-bad-layout", ["select", A, "{R}/sc-layout/net.onnx", *MAN], "must be NCHW or NHWC"),
    (
        "sidecar-unknown-field",
        ["select", A, "{R}/sc-field/net.onnx", *MAN],
        "unknown preprocessing field 'scale'",
    ),
    (
        "profile-unknown",
        ["select", A, OFF, *MAN, "--profile", "toaster"],
        "unknown hardware profile 'toaster'",
    ),
    ("json-out-is-a-folder", [*SEL, *MAN, "--json-out", "{R}/images"], "is a folder"),
    ("html-under-a-file", [*SEL, *MAN, "--html", "{R}/classes.txt/page.html"], "is a file"),
    # drift
    ("drift-no-manifest", ["drift", A, "--time-column", "t", "--window", "5"], ARGPARSE),
    (
        "drift-time-column-unknown",
        [*DRIFT[:4], "--time-column", "when", "--window", "20"],
        "no column 'when'",
    ),
    (
        "drift-bad-time",
        ["drift", A, "--manifest", "{R}/bad-time.csv", "--time-column", "timestamp", "--window", "1"],
        "neither a number nor an ISO 8601",
    ),
    ("drift-too-few-windows", [*DRIFT[:6], "--window", "40"], "need more than the 3 reference windows"),
    ("drift-window-zero", [*DRIFT[:6], "--window", "0"], "window must be an integer >= 1"),
    ("drift-reference-too-few", [*DRIFT, "--reference-windows", "2"], "--reference-windows must be"),
    ("drift-alpha-out-of-range", [*DRIFT, "--alpha", "1.5"], "alpha must be"),
    (
        "drift-unknown-label",
        ["drift", A, "--manifest", "{R}/unknown-label-time.csv", "--time-column", "t", "--window", "1"],
        "label 'blue'",
    ),
    (
        "drift-no-preprocessing",
        ["drift", BARE, "--manifest", "{R}/manifest.csv", "--time-column", "timestamp", "--window", "20"],
        "no preprocessing",
    ),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-select") / "template"
    build_selection_fixtures(root)
    for name, text in MANIFESTS.items():
        (root / name).write_text(text)
    (root / "latin1.csv").write_bytes("path,label\nimages/caf\xe9.png,red\n".encode("latin-1"))
    colour_model(root / "three" / "model.onnx", classes=["red", "green", "blue"])
    (root / "three.txt").write_text("red\ngreen\nblue\n")
    sidecars = {"sc-json": "{not json", "sc-layout": {"layout": "NCWH"}, "sc-field": {"scale": 2}}
    for folder, content in sidecars.items():
        (root / folder).mkdir()
        shutil.copy(root / "off" / "net.onnx", root / folder / "net.onnx")
        if isinstance(content, dict):
            content = json.dumps(
                {"input_size": 12, "mean": MEAN, "std": STD, "classes": ["red", "green"], **content}
            )
        (root / folder / "net.preprocessing.json").write_text(content)
    return root


@pytest.fixture
def root(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "user"))


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize("case_id,argv,phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, argv, phrase, root, capsys):
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
