"""`nas export` into folders that hold other exports: it replaces or removes only the model folders it made
for the same run (each spec.json names its run), refuses a folder of other exports without --force, and even
with --force never deletes or overwrites them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_search

from nas.cli import main

FOREIGN = "07_0123456789ab"  # a model folder name no tiny run makes (rank 7)


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, tiny_space_file, tiny_dataset_file, ray_executor) -> Path:
    """A tiny real search, exported to RUN/export (read-only for the tests: they copy it)."""
    run_dir = tiny_search(
        tmp_path_factory.mktemp("export") / "run",
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        prescreen=1,
    )
    assert main(["export", str(run_dir)]) == 0
    return run_dir


def copy_run(source: Path, target: Path, other_run: bool) -> Path:
    """A copy of the run; `other_run`: made another run (its config.json differs, as another search's would),
    exported to its own export folder."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("export") if other_run else None)
    if other_run:
        config = json.loads((target / "config.json").read_text())
        config["search"]["out"] = str(target)
        (target / "config.json").write_text(json.dumps(config))
        assert main(["export", str(target)]) == 0
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def add_foreign_export(export_dir: Path, origin: str | None) -> Path:
    """A model folder of another run's export (origin: its run directory; None: of unknown origin), with the
    results a user added to it (slices.json, int8.json)."""
    folder = export_dir / FOREIGN
    folder.mkdir(parents=True)
    spec = {
        "arch_hash": FOREIGN[3:],
        **({"exported_from": {"run_dir": origin, "config_sha256": "0" * 16}} if origin else {}),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    for name in ("model.onnx", "slices.json", "int8.json"):
        (folder / name).write_text(f"the other run's {name}")
    return folder


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_export_into_another_runs_export_is_refused_and_changes_nothing(exported_run, tmp_path, capsys):
    other = copy_run(exported_run, tmp_path / "other", other_run=True)
    for folder in (other / "export").iterdir():
        (folder / "slices.json").write_text('{"note": "validated by the user"}')
    before = snapshot(other / "export")
    assert main(["export", str(exported_run), "--out", str(other / "export")]) == 2
    err = one_line_error(capsys)
    assert str(other / "export") in err and "--force" in err
    assert snapshot(other / "export") == before


def test_force_never_replaces_another_runs_model_folder_of_the_same_name(exported_run, tmp_path, capsys):
    other = copy_run(exported_run, tmp_path / "other", other_run=True)  # same front: the same folder names
    before = snapshot(other / "export")
    assert main(["export", str(exported_run), "--out", str(other / "export"), "--force"]) == 2
    assert "never replaces it" in one_line_error(capsys)
    assert snapshot(other / "export") == before


@pytest.mark.parametrize("origin", ["/elsewhere/another-run", None])
def test_force_exports_next_to_other_exports_and_deletes_none(exported_run, tmp_path, capsys, origin):
    out = tmp_path / "models"
    foreign = add_foreign_export(out, origin)
    before = snapshot(foreign)
    assert main(["export", str(exported_run), "--out", str(out)]) == 2
    assert (
        FOREIGN in one_line_error(capsys)
        and [p.name for p in out.iterdir()] == [FOREIGN]
        and snapshot(foreign) == before
    )
    assert main(["export", str(exported_run), "--out", str(out), "--force"]) == 0
    assert snapshot(foreign) == before
    mine = sorted(p.name for p in out.iterdir() if p.name != FOREIGN)
    assert mine == sorted(p.name for p in (exported_run / "export").iterdir())
    assert all((out / name / "model.onnx").is_file() for name in mine)


def test_reexport_into_its_own_folder_replaces_only_its_own_stale_folders(exported_run, tmp_path):
    run = copy_run(exported_run, tmp_path / "run", other_run=False)
    export = run / "export"
    current = sorted(p.name for p in export.iterdir())
    own_stale = export / "09_aaaaaaaaaaaa"  # this run's export of an earlier front
    shutil.copytree(export / current[0], own_stale)
    deployed = export / f"{current[0]}-deployed"  # nas train's output: not export's to remove
    deployed.mkdir()
    (deployed / "model.onnx").write_text("deployed")
    foreign = add_foreign_export(export, "/elsewhere/another-run")
    (export / current[0] / "notes.txt").write_text("the user's notes")

    assert main(["export", str(run)]) == 2  # another run's folder among them: refused without --force
    assert main(["export", str(run), "--force"]) == 0
    assert not own_stale.exists() and foreign.is_dir() and (deployed / "model.onnx").read_text() == "deployed"
    assert (export / current[0] / "notes.txt").read_text() == "the user's notes"
    shutil.rmtree(foreign)
    assert main(["export", str(run)]) == 0  # only its own folders left: as before, no --force needed


def test_a_moved_run_and_exports_made_before_the_record_still_reexport_into_their_own_folder(
    exported_run, tmp_path
):
    moved = copy_run(exported_run, tmp_path / "moved", other_run=False)
    for spec_path in (moved / "export").glob("*/spec.json"):  # as exported before spec.json named the run
        spec = json.loads(spec_path.read_text())
        spec.pop("exported_from")
        spec_path.write_text(json.dumps(spec))
    assert main(["export", str(moved)]) == 0
    spec = json.loads(next((moved / "export").glob("*/spec.json")).read_text())
    assert spec["exported_from"]["run_dir"] == str(moved.resolve())


def test_exports_of_unknown_origin_elsewhere_are_not_adopted(exported_run, tmp_path, capsys):
    out = tmp_path / "models"
    shutil.copytree(exported_run / "export", out)
    for spec_path in out.glob("*/spec.json"):
        spec = json.loads(spec_path.read_text())
        spec.pop("exported_from")
        spec_path.write_text(json.dumps(spec))
    before = snapshot(out)
    assert main(["export", str(exported_run), "--out", str(out), "--force"]) == 2
    one_line_error(capsys)
    assert snapshot(out) == before


def test_the_same_export_again_writes_nothing_unless_one_was_cut_short(exported_run, tmp_path, monkeypatch):
    """An export already finished for the same checkpoint, metrics, run and format is kept as it is (the ONNX
    export takes seconds per model); a folder without the mark that is written last is exported again."""
    from nas.export import _run
    from nas.export._folder import EXPORTED_AS

    run = copy_run(exported_run, tmp_path / "run", other_run=False)  # moved: exported again, for its place
    written = []
    real = _run.write_export
    monkeypatch.setattr(
        _run, "write_export", lambda folder, *a, **k: written.append(folder) or real(folder, *a, **k)
    )
    assert main(["export", str(run)]) == 0
    folders = sorted(p for p in (run / "export").iterdir())
    assert sorted(written) == folders
    before = snapshot(run / "export")

    written.clear()
    assert main(["export", str(run)]) == 0
    assert written == [] and snapshot(run / "export") == before

    metrics_path = folders[0] / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.pop(EXPORTED_AS)  # as an export killed before its last write leaves it
    metrics_path.write_text(json.dumps(metrics))
    assert main(["export", str(run)]) == 0
    assert written == [folders[0]] and EXPORTED_AS in json.loads(metrics_path.read_text())
