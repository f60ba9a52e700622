"""Bad input found by testing: output paths that cannot be created, nonsense width multipliers, file modes.

Each is one line `nas: error: ...` naming the flag and the path or value, exit code 2, before any work starts,
and nothing already written changes.
"""

from __future__ import annotations

import os
import stat

import pytest

from nas._io import check_output_path, write_atomic, write_json_atomic
from nas.baselines import hand_designed
from nas.cli import main
from nas.errors import NasError


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"the user's data")
    return path


@pytest.mark.parametrize(
    "args,flag",
    [
        (["search", "--out", "{f}/run"], "--out"),
        (["export", "{d}/run", "--out", "{f}/export"], "--out"),
        (["train", "{d}/run/export/00_0123456789ab", "--out", "{f}/deployed"], "--out"),
        (["report", "{d}/run", "--out", "{f}/report"], "--out"),
        (["compare", "{d}/run", "{d}/run2", "--out", "{f}/compare"], "--out"),
        (["compare", "{d}/run", "{d}/run2", "--out", "{f}/compare.html"], "--out"),
        (["validate", "{d}/model.onnx", "--json", "{f}/slices.json"], "--json"),
        (["validate", "{d}/model.onnx", "--plot", "{f}/slices.png"], "--plot"),
        (["quantize", "{d}/model.onnx", "--out", "{f}/model.int8.onnx"], "--out"),
        (["quantize", "{d}/model.onnx", "--json", "{f}/int8.json"], "--json"),
        (["profile", "bundle", "--out", "{f}/bundle"], "--out"),
        (
            [
                "profile",
                "fit",
                "--measurements",
                "{d}/measurements.csv",
                "--name",
                "dev",
                "--out",
                "{f}/dev.yaml",
            ],
            "--out",
        ),
    ],
)
def test_an_output_path_under_a_file_is_one_line_naming_flag_and_path(args, flag, a_file, tmp_path, capsys):
    # The inputs do not exist either: the output is checked first, before any work.
    args = [a.format(f=a_file, d=tmp_path) for a in args]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert flag in err and str(a_file) in err and "is a file" in err
    assert a_file.read_bytes() == b"the user's data" and sorted(tmp_path.iterdir()) == [a_file]


def test_check_output_path_refuses_what_cannot_be_created(tmp_path, a_file):
    assert (
        check_output_path(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    )  # created later
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(NasError, match=r"--out .*data.npz: is a file, not a folder"):
        check_output_path(a_file, "--out")
    with pytest.raises(NasError, match=r"--json .*: is a folder, not a file"):
        check_output_path(tmp_path, "--json", folder=False)
    check_output_path(a_file, "--json", folder=False)  # an existing file output is replaced, as before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_path_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(NasError, match="not writable"):
            check_output_path(locked / "report", "--out")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("widths", ["-1", "0", "nan", "inf", "0.5,-inf", "1e400", "100", "0.5,-0.5"])
def test_nonsense_width_multipliers_are_one_line_errors(widths, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "baselines.json").write_text("[]")
    assert main(["baselines", str(run_dir), "--widths", widths]) == 2
    assert "widths" in one_line_error(capsys)
    assert (run_dir / "baselines.json").read_text() == "[]"


@pytest.mark.parametrize("widths", [(-1,), (0,), (float("nan"),), (float("inf"),), (True,), ("1",), ()])
def test_hand_designed_refuses_nonsense_width_multipliers(widths):
    with pytest.raises(NasError, match="widths"):
        hand_designed(widths)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mode):
    before = os.umask(umask)
    try:
        written = [
            write_atomic(tmp_path / "model.onnx", b"x"),
            write_json_atomic(tmp_path / "config.json", {}),
        ]
    finally:
        os.umask(before)
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [mode, mode]


def test_a_bundle_over_a_measured_bundle_is_refused_and_its_measurements_stay(
    tmp_path, tiny_space_file, capsys
):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text('{"format": "nas-bundle/1", "models": []}')
    (bundle / "measurements.csv").write_text("model,latency_ms\nnetworks/a.onnx,1.5\n")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert main(["profile", "bundle", "--space", str(tiny_space_file), "--out", str(bundle)]) == 2
    assert "exists and is not empty" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


@pytest.mark.parametrize("bad", [["--families", "bogus"], ["--severities", "9"]])
def test_validate_checks_its_arguments_before_loading_torch_or_onnx_runtime(bad, tmp_path):
    """An argument error is said at once: no heavy import (seconds) comes before it. In a fresh interpreter,
    as this one has imported them already."""
    import subprocess
    import sys

    probe = (
        "import sys; from nas.cli import main; code = main(sys.argv[1:]); "
        "print(code, *[m for m in ('torch', 'onnxruntime', 'optuna', 'ray') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "validate", str(tmp_path / "model.onnx"), *bad],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["2"], done.stdout + done.stderr  # exit 2, and none of them imported
    assert done.stderr.startswith("nas: error: ") and done.stderr.count("\n") == 1
