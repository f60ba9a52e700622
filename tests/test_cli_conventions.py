"""The conventions every `nas` command keeps: --version, -v/-q, a closed stdout, exit codes, --json and
--json-out, `nas search --resume RUN_DIR`, the machine a run was made on, and the run lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import nas
from nas._cli import CLOSED_PIPE
from nas.cli import main
from nas.errors import NasError, NasRuntimeError
from nas.search import SearchConfig

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def nas_command(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "nas", *map(str, args)],
        capture_output=True,
        text=True,
        env={**ENV, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        timeout=timeout,
    )


def one_line(err: str) -> str:
    assert err.startswith("nas: error: ") and err.count("\n") == 1, err
    return err


# --- version, verbosity, closed pipe -----------------------------------------------------------------
def test_version_comes_from_the_installed_distribution(capsys):
    assert nas.__version__ == version(nas.DISTRIBUTION) and nas.DISTRIBUTION == "hwnas"
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"nas {nas.__version__} (hwnas)\n"


def test_quiet_silences_warnings_and_the_commands_progress(monkeypatch, capsys):
    seen = {}

    def fake_search(args):
        from nas._cli import warn

        warn("something worth a warning")
        seen["quiet"] = args.quiet
        return 0

    import nas.cli as cli

    parser = cli._parser
    monkeypatch.setattr(cli, "_parser", lambda: _with_search(parser(), fake_search))
    assert main(["-q", "search"]) == 0
    assert seen["quiet"] is True and capsys.readouterr().err == ""
    assert main(["search"]) == 0
    assert seen["quiet"] is False and capsys.readouterr().err == "nas: warning: something worth a warning\n"


def test_verbose_sets_the_nas_logger_to_info_then_debug(monkeypatch, capsys):
    import logging

    levels = []
    import nas.cli as cli

    parser = cli._parser

    def record(args):
        levels.append(logging.getLogger("nas").getEffectiveLevel())
        logging.getLogger("nas.search").info("resuming")
        return 0

    monkeypatch.setattr(cli, "_parser", lambda: _with_search(parser(), record))
    assert main(["-v", "search"]) == 0 and main(["-vv", "search"]) == 0 and main(["search"]) == 0
    assert levels == [logging.INFO, logging.DEBUG, logging.WARNING]
    assert capsys.readouterr().err.count("nas: info: resuming\n") == 2


def _with_search(parser, run):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["search"].set_defaults(run=run)
    return parser


def test_a_reader_that_closes_stdout_early_gets_no_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "nas", "profiles", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, "PYTHONPATH": str(ROOT)},
    )
    process.stdout.close()  # like `| head -0`: gone before the first write
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == CLOSED_PIPE == 141
    assert err == "", err


def test_a_closed_stdout_in_process_is_exit_141(monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["spaces", "--json"]) == 141


# --- exit codes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,code",
    [
        ([], 2),  # no command: the help, as a usage error
        (["--no-such-flag"], 2),
        (["search", "--trials", "many"], 2),
        (["search", "--space", "no-such-space"], 2),
        (["search", "--resume", "no/such/run"], 2),
        (["spaces"], 0),
    ],
)
def test_exit_codes_of_usage_errors_and_success(argv, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse
        got = exc.code
    assert got == code


@pytest.mark.parametrize("error,code", [(NasError("bad input"), 2), (NasRuntimeError("work failed"), 1)])
def test_a_runtime_failure_is_1_and_a_usage_error_2(error, code, monkeypatch, capsys):
    import nas.cli as cli

    parser = cli._parser

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_parser", lambda: _with_search(parser(), fail))
    assert main(["search"]) == code
    assert one_line(capsys.readouterr().err) == f"nas: error: {error}\n"


def test_an_unreachable_cluster_is_a_runtime_failure(tmp_path, tiny_space_file, tiny_dataset_file, capsys):
    run_dir = tmp_path / "run"
    argv = ["search", "--space", tiny_space_file, "--dataset", tiny_dataset_file, "--out", run_dir]
    assert main([*map(str, argv), "--ray-address", "127.0.0.1:9"]) == 1
    assert "cannot reach the Ray cluster" in one_line(capsys.readouterr().err)
    assert not run_dir.exists()


# --- --json and --json-out ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,expected",
    [
        (["m.onnx"], (False, None, "--json-out")),
        (["m.onnx", "--json"], (True, None, "--json-out")),
        (["m.onnx", "--json", "--json-out", "r.json"], (True, "r.json", "--json-out")),
        (["m.onnx", "--json-out", "r.json"], (False, "r.json", "--json-out")),
        (["m.onnx", "--json", "r.json"], (False, "r.json", "--json")),  # the deprecated spelling
    ],
)
@pytest.mark.parametrize("command", ["validate", "quantize"])
def test_json_means_stdout_and_json_out_a_file(command, argv, expected):
    from nas._cli import json_output
    from nas.cli import _parser

    assert json_output(_parser().parse_args([command, *argv])) == expected


def test_json_file_twice_is_a_usage_error(capsys):
    assert main(["validate", "m.onnx", "--json", "a.json", "--json-out", "b.json"]) == 2
    assert "--json FILE and --json-out FILE" in one_line(capsys.readouterr().err)


def test_the_deprecated_json_file_spelling_warns_then_works(tmp_path, capsys):
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"not onnx")
    assert main(["validate", str(garbage), "--json", str(tmp_path / "s.json"), "--families", "none"]) == 2
    warning, error = capsys.readouterr().err.splitlines()
    assert warning.startswith("nas: warning: '--json ") and "use '--json-out " in warning
    assert error.startswith("nas: error: ")  # the model, not the flag


@pytest.mark.parametrize("flag", ["--json", "--json-out"])
def test_a_json_file_under_a_file_names_the_flag_given(flag, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["quantize", "m.onnx", flag, str(a_file / "int8.json")]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{flag} {a_file}/int8.json" in err and "is a file" in err


@pytest.mark.parametrize("command", [["spaces"], ["profiles"]])
def test_list_json_is_json_on_stdout(command, capsys):
    assert main([*command, "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


# --- --resume ----------------------------------------------------------------------------------------
def _saved_run(tmp_path, **settings) -> Path:
    """A run directory as `nas search` leaves it (config.json only), started with these settings."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = SearchConfig(out=str(run_dir), **settings)
    (run_dir / "config.json").write_text(
        json.dumps({"search": config.to_dict(), "paths": config.canonical_paths()})
    )
    return run_dir


def _resume_config(*argv):
    from nas.cli import _parser
    from nas.search import config_from_arguments

    return config_from_arguments(_parser().parse_args(["search", *map(str, argv)]))


def test_resume_reads_the_settings_and_flags_change_the_others(tmp_path, tiny_space_file, monkeypatch):
    run_dir = _saved_run(tmp_path, space=str(tiny_space_file), epochs=2, trials=6, rungs=(1,), workers=2)
    monkeypatch.chdir(tmp_path / "run")  # another folder than the run's start: paths are the resolved ones
    config = _resume_config("--resume", run_dir, "--trials", 9)
    assert (config.space, config.epochs, config.rungs, config.workers) == (str(tiny_space_file), 2, (1,), 2)
    assert config.trials == 9 and config.run_dir == run_dir


def test_resume_refuses_another_identity_setting_as_any_rerun_does(tmp_path):
    from nas.search._run_dir import check_run_dir

    run_dir = _saved_run(tmp_path, epochs=2)
    config = _resume_config("--resume", run_dir, "--epochs", 3)
    with pytest.raises(NasError, match=r"holds a search with epochs=2, not 3"):
        check_run_dir(config, run_dir)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--out", "elsewhere"], "names the run directory already"),
        (["--config", "search.yaml"], "leave --config out"),
    ],
)
def test_resume_with_out_or_config_is_refused(extra, message, tmp_path, capsys):
    run_dir = _saved_run(tmp_path)
    assert main(["search", "--resume", str(run_dir), *extra]) == 2
    assert message in one_line(capsys.readouterr().err)


def test_resume_of_what_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path)]) == 2
    assert "holds no config.json" in one_line(capsys.readouterr().err)
    (tmp_path / "config.json").write_text("{not json")
    assert main(["search", "--resume", str(tmp_path)]) == 2
    assert "unreadable run configuration" in one_line(capsys.readouterr().err)


def test_the_permission_to_change_machines_is_not_carried_over(tmp_path):
    run_dir = _saved_run(tmp_path, allow_machine_change=True)
    assert _resume_config("--resume", run_dir).allow_machine_change is False
    assert _resume_config("--resume", run_dir, "--allow-machine-change").allow_machine_change is True


# --- the machine of a run ----------------------------------------------------------------------------
def _machine(cpu="CPU A", python="3.11.7"):
    return {
        "cpu": cpu,
        "isa": ["avx2"],
        "architecture": "x86_64",
        "os": "Linux",
        "python": python,
        "versions": {},
    }


@pytest.mark.parametrize(
    "here,mode,allowed,outcome",
    [
        (_machine(), "measured", False, None),  # the same machine: nothing to record
        (_machine(cpu="CPU B"), "measured", False, "refused"),
        (_machine(cpu="CPU B"), "measured", True, "recorded"),
        (_machine(cpu="CPU B"), "predicted", False, "recorded"),
        (_machine(python="3.12.1"), "measured", False, "recorded"),  # same CPU: recorded only
    ],
)
def test_a_measured_run_is_not_resumed_on_another_cpu_without_permission(here, mode, allowed, outcome):
    from nas.search._machine_record import machine_change

    document = {"machine": _machine()}
    if outcome == "refused":
        with pytest.raises(
            NasError, match=r"measured on 'CPU A', this machine has 'CPU B'.*--allow-machine-change"
        ):
            machine_change(document, here, mode, allowed, "run")
        return
    change = machine_change(document, here, mode, allowed, "run")
    assert (change is None) == (outcome is None)
    if change:
        assert change["machine"] == here and change["latency"] == mode
        # once recorded, the same machine again is not a new change
        assert machine_change({**document, "machine_changes": [change]}, here, mode, False, "run") is None


def test_machine_record_names_cpu_os_python_and_versions():
    from nas.search._machine_record import machine_record

    record = machine_record()
    assert record["cpu"] and record["os"] and record["python"]
    assert set(record["versions"]) >= {"nas", "torch", "onnxruntime"}
    assert record["versions"]["nas"] == nas.__version__


def test_search_records_the_machine_and_resume_checks_it(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, monkeypatch, capsys
):
    """In process (the session's Ray), from another working directory: what `--resume` reads is the run's."""
    run_dir = tmp_path / "run"
    first = [*("search", "--space", tiny_space_file, "--dataset", tiny_dataset_file, "--out", run_dir)]
    first += [*("--trials", 2, "--population", 2, "--prescreen", 1, "--epochs", 1, "--train-subset", 32)]
    assert main([*map(str, first), "--workers", "1", "--quiet"]) == 0, capsys.readouterr().err[-2000:]
    document = json.loads((run_dir / "config.json").read_text())
    assert document["machine"]["cpu"] and document["machine"]["versions"]["nas"] == nas.__version__

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["--quiet", "search", "--resume", str(run_dir), "--trials", "3"]) == 0, (
        capsys.readouterr().err
    )
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) - 1 == 3

    assert main(["search", "--resume", str(run_dir), "--epochs", "2"]) == 2
    assert "holds a search with epochs=1, not 2" in one_line(capsys.readouterr().err)

    document["machine"]["cpu"] = "Another CPU"
    (run_dir / "config.json").write_text(json.dumps(document))
    assert main(["search", "--resume", str(run_dir)]) == 2
    assert "--allow-machine-change" in one_line(capsys.readouterr().err)
    assert json.loads((run_dir / "config.json").read_text()) == document  # refused: nothing changed

    assert main(["-q", "search", "--resume", str(run_dir), "--allow-machine-change"]) == 0, (
        capsys.readouterr().err
    )
    changes = json.loads((run_dir / "config.json").read_text())["machine_changes"]
    assert len(changes) == 1 and changes[0]["cpu_changed"] and changes[0]["latency"] == "measured"


# --- the run lock ------------------------------------------------------------------------------------
def test_the_run_lock_is_a_portable_file_lock(tmp_path):
    from nas.search._api import _lock_run_dir

    held = _lock_run_dir(tmp_path)
    with pytest.raises(NasError, match="another nas search is running in this run directory"):
        _lock_run_dir(tmp_path)
    held.close()
    _lock_run_dir(tmp_path).close()  # released: the next driver takes it
    source = (ROOT / "nas" / "search" / "_api.py").read_text()
    assert "fcntl" not in source and "filelock" in source
