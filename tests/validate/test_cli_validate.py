"""`nas validate` and `nas quantize` end to end."""

from __future__ import annotations

import json
import shutil

import pytest

from nas.cli import main


def test_validate_then_quantize_write_reports_and_card(exported_dir, tiny_dataset_file, tmp_path, capsys):
    folder = tmp_path / exported_dir.name
    shutil.copytree(exported_dir, folder)
    model = folder / "model.onnx"
    assert (
        main(
            [
                "validate",
                str(model),
                "--data",
                str(tiny_dataset_file),
                "--split",
                "all",
                "--families",
                "jpeg,occlusion",
                "--severities",
                "1,5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "occlusion@5" in out and "slice report:" in out
    report = json.loads((folder / "slices.json").read_text())
    assert [s["name"] for s in report["slices"]] == [
        "clean",
        "jpeg@1",
        "jpeg@5",
        "occlusion@1",
        "occlusion@5",
    ]
    assert (folder / "slices.png").read_bytes()[:4] == b"\x89PNG" and "| occlusion@5 | 80 |" in (
        folder / "model_card.md"
    ).read_text()

    assert (
        main(
            [
                "quantize",
                str(model),
                "--data",
                str(tiny_dataset_file),
                "--split",
                "all",
                "--samples",
                "16",
                "--families",
                "none",
            ]
        )
        == 0
    )
    assert (folder / "model.int8.onnx").is_file() and json.loads((folder / "int8.json").read_text())[
        "n"
    ] == 80
    assert (
        "## INT8" in (folder / "model_card.md").read_text()
        and "INT8 not predictable" in (folder / "model_card.md").read_text()
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["validate", "/no/model.onnx"], "ONNX model file not found: /no/model.onnx"),
        (["quantize", "/no/model.onnx"], "ONNX model file not found: /no/model.onnx"),
    ],
)
def test_mistakes_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and message in err and err.count("\n") == 1


def test_quantize_out_elsewhere_writes_nothing_into_the_export_folder(
    exported_dir, tiny_dataset_file, tmp_path
):
    folder = tmp_path / exported_dir.name
    shutil.copytree(exported_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    elsewhere = tmp_path / "elsewhere" / "small.int8.onnx"
    assert (
        main(
            [
                "quantize",
                str(folder / "model.onnx"),
                "--data",
                str(tiny_dataset_file),
                "--split",
                "all",
                "--samples",
                "16",
                "--families",
                "none",
                "--out",
                str(elsewhere),
            ]
        )
        == 0
    )
    assert elsewhere.is_file() and sorted(p.name for p in elsewhere.parent.iterdir()) == ["small.int8.onnx"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
