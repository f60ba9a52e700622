"""Faults a user meets: Ctrl-C and SIGTERM during a search, damaged run files, a Ray that cannot start, cost flags
out of bounds, a search that trains nothing, misleading words. Each ends in one line `nas: ...` on stderr, no
traceback, the documented exit code, and nothing finished is lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray import cloudpickle

from nas.cli import _bound_local_workers, main
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.search import Executor, SearchConfig, load_run_study, search

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the trainers below travel to the Ray workers

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}
ENV.pop("RAY_ADDRESS", None)


def one_line(err: str, prefix: str = "nas: error: ") -> str:
    assert err.startswith(prefix) and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# Ray's C++ core writes its own log lines straight to stderr while it shuts down after a signal (e.g.
# "[2026-12-01 13:39:37,922 E 18870 19012] task_manager.cc:1545: Failed to push error to driver ..."):
# nas cannot silence them, so after a signal they are allowed before the one nas line.
_RAY_CORE_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [A-Z] \d+ \d+\] \S+\.cc:\d+: ")


def one_line_after_signal(err: str, prefix: str) -> str:
    lines = [line for line in err.splitlines() if not _RAY_CORE_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith(prefix) and "Traceback" not in err, err
    return lines[0]


def completed(run_dir: Path) -> dict[int, tuple]:
    study = load_run_study(run_dir)
    return {
        t.number: (tuple(t.values), t.user_attrs["arch_hash"])
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE"
    }


def _completed_now(run_dir: Path) -> bool:
    if not (run_dir / "checkpoints").is_dir():  # created after the study: reading earlier races its creation
        return False
    try:
        return bool(completed(run_dir))
    except Exception:  # the study is not created yet
        return False


# --- signals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_training_exits_cleanly_and_the_same_command_resumes(
    sig, code, tmp_path, tiny_space_file, tiny_dataset_file
):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(tiny_space_file),
        "--dataset",
        str(tiny_dataset_file),
        "--trials",
        "8",
        "--population",
        "2",
        "--workers",
        "2",
        "--epochs",
        "2",
        "--train-subset",
        "64",
        "--prescreen",
        "1",
        "--out",
        str(run_dir),
        "--quiet",
    ]
    # SIGINT's default action, even where this test runs as a background job (which ignores SIGINT).
    driver = subprocess.Popen(
        command,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    while not _completed_now(run_dir):  # one trained, the rest of its batch still training
        assert driver.poll() is None, f"the search ended early: {driver.stderr.read()[-2000:]}"
        assert time.time() < deadline, "no trial trained in time"
        time.sleep(0.1)
    driver.send_signal(sig)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == code, err[-2000:]
    assert one_line_after_signal(err, "nas: ") and "SIGTERM received" not in err and "Pareto front" not in out
    assert (run_dir / "trials.csv").is_file() and (
        run_dir / "pareto.json"
    ).is_file()  # written on the way out
    before = completed(run_dir)
    assert before

    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = completed(run_dir)
    assert all(after.get(n) == v for n, v in before.items()), (
        "a trial completed before the signal changed or vanished"
    )
    counted = [
        t
        for t in load_run_study(run_dir).get_trials(deepcopy=False)
        if t.user_attrs.get("status") in ("complete", "infeasible", "failed")
    ]
    assert len(counted) == 8


# --- damaged run files -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_space_file, tiny_dataset_file, ray_executor) -> Path:
    run_dir = tmp_path_factory.mktemp("faults") / "run"
    search(
        executor=ray_executor,
        space=str(tiny_space_file),
        dataset=str(tiny_dataset_file),
        trials=2,
        population=2,
        epochs=1,
        train_subset=32,
        prescreen=1,
        out=str(run_dir),
    )
    return run_dir


def same_search(run_dir, space, data):
    return [
        "search",
        "--space",
        str(space),
        "--dataset",
        str(data),
        "--trials",
        "2",
        "--population",
        "2",
        "--epochs",
        "1",
        "--train-subset",
        "32",
        "--prescreen",
        "1",
        "--out",
        str(run_dir),
        "--quiet",
    ]


def test_a_truncated_study_db_is_one_line_and_stays_as_it_was(
    tiny_run, tmp_path, tiny_space_file, tiny_dataset_file, capsys
):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    db = run_dir / "study.db"
    db.write_bytes(db.read_bytes()[:5000])
    damaged = db.read_bytes()
    assert main(same_search(run_dir, tiny_space_file, tiny_dataset_file)) == 2
    err = one_line(capsys.readouterr().err)
    assert str(db) in err and "damaged study database" in err and "backup" in err
    assert db.read_bytes() == damaged


def test_a_truncated_checkpoint_in_export_is_one_line_and_nothing_is_exported(tiny_run, tmp_path, capsys):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    record = json.loads((run_dir / "pareto.json").read_text())["pareto"][0]
    checkpoint = run_dir / record["checkpoint"]
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    assert main(["export", str(run_dir)]) == 2
    err = one_line(capsys.readouterr().err)
    assert str(checkpoint) in err and "damaged checkpoint" in err and "PytorchStreamReader" not in err
    assert not (run_dir / "export").exists()


@pytest.mark.parametrize(
    "content", ["[]", '{"pareto": {}}', '{"pareto": [{"trial": 0}], "preprocessing": {"classes": []}}']
)
def test_a_pareto_json_that_is_not_one_is_one_line_saying_how_to_rewrite_it(
    content, tiny_run, tmp_path, capsys
):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    (run_dir / "pareto.json").write_text(content)
    assert main(["export", str(run_dir)]) == 2
    err = one_line(capsys.readouterr().err)
    assert str(run_dir / "pareto.json") in err and "run the same nas search command again" in err


def test_export_of_a_run_stopped_before_its_first_batch_ended_says_to_resume(tiny_run, tmp_path, capsys):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    (run_dir / "pareto.json").unlink()
    assert main(["export", str(run_dir)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "not a nas run directory" not in err and "resume" in err


# --- a start that fails leaves nothing behind --------------------------------------------------------
def test_a_ray_that_cannot_start_leaves_no_run_directory(tmp_path, tiny_space_file, tiny_dataset_file):
    run_dir = tmp_path / "results" / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas",
            *same_search(run_dir, tiny_space_file, tiny_dataset_file),
            "--ray-address",
            "127.0.0.1:1",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "127.0.0.1:1" in one_line(done.stderr)  # runtime failure: exit 1
    assert not (tmp_path / "results").exists()  # a retry with any settings is a new search


class _NoPut(Executor):
    """An executor whose object store is full: the search fails while starting."""

    workers = 2

    def put(self, value):
        raise RuntimeError("object store full")

    def submit(self, fn, *args):
        raise AssertionError("nothing is submitted before the dataset is shared")

    wait_one = result = submit


def test_a_start_that_fails_removes_only_what_it_created(tmp_path, tiny_space_file, tiny_dataset_file):
    mine = tmp_path / "mine"
    mine.mkdir()  # the user's own empty folder given as --out: kept
    for out in (tmp_path / "new" / "run", mine):
        with pytest.raises(RuntimeError, match="object store full"):
            search(
                executor=_NoPut(),
                space=str(tiny_space_file),
                dataset=str(tiny_dataset_file),
                trials=2,
                population=2,
                epochs=1,
                prescreen=1,
                out=str(out),
            )
    assert not (tmp_path / "new").exists()
    assert mine.is_dir() and not list(mine.iterdir())


def test_ray_address_auto_without_a_cluster_says_what_nas_needs(monkeypatch):
    import ray

    from nas.search import RayExecutor

    def no_cluster(*args, **kwargs):
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to by "
            "setting `--address` flag or `RAY_ADDRESS` environment variable."
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(NasError, match="no Ray cluster is running on this machine") as error:
        RayExecutor(address="auto")
    assert "--address" not in str(error.value) and "ray start --head" in str(error.value)


# --- cost flags --------------------------------------------------------------------------------------
def test_prescreen_is_bounded(capsys):
    assert main(["search", "--prescreen", "100000", "--trials", "2"]) == 2
    assert "prescreen: at most 64" in one_line(capsys.readouterr().err)


def test_more_local_workers_than_cpus_are_capped_with_a_warning(capsys):
    cpus = len(os.sched_getaffinity(0))
    config = _bound_local_workers(SearchConfig(workers=cpus + 14))
    assert config.workers == cpus
    err = capsys.readouterr().err
    assert (
        err.startswith(f"nas: warning: --workers {cpus + 14} is more than the {cpus} CPUs")
        and err.count("\n") == 1
    )
    assert (
        _bound_local_workers(SearchConfig(workers=cpus + 14, ray_address="10.0.0.1:6379")).workers
        == cpus + 14
    )


# --- a search that trains nothing, noise on stdout ---------------------------------------------------
class AlwaysFails(ProxyTrainer):
    def train(self, arch, dataset, seed):
        raise ValueError("cannot train this one")


def test_a_search_where_every_trial_failed_exits_1_with_the_reasons(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, monkeypatch, capsys
):
    import importlib

    module = importlib.import_module("nas.search")  # the package (nas.search, the attribute, is the function)
    real = module.search
    monkeypatch.setattr(
        module,
        "search",
        lambda config, **kw: real(
            config, executor=ray_executor, trainer=AlwaysFails(TrainingRecipe(epochs=1, train_subset=32))
        ),
    )
    assert main(same_search(tmp_path / "run", tiny_space_file, tiny_dataset_file)) == 1
    captured = capsys.readouterr()
    err = one_line(captured.err)
    assert (
        "no trial succeeded" in err
        and "2 failed" in err
        and "trial 0: train: ValueError: cannot train this one" in err
    )
    assert "nas export" not in captured.out


def test_ray_messages_never_reach_stdout(ray_executor, capsys):
    from ray._private import worker

    # What Ray's listener thread calls with the raylet's messages (a worker that died, ...).
    worker.print_to_stdstream(
        {
            "lines": ["\x1b[33mA worker died or was killed while executing a task\x1b[0m"],
            "pid": "raylet",
            "is_err": False,
        },
        ignore_prefix=False,
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "(raylet) A worker died or was killed while executing a task" in captured.err
        and "\x1b" not in captured.err
    )


# --- words -------------------------------------------------------------------------------------------
def test_a_space_resolution_of_one_pixel_is_refused_with_the_field(tmp_path, tiny_space_file):
    from nas.space import load_space

    bad = tmp_path / "res.yaml"
    bad.write_text(tiny_space_file.read_text().replace("resolution: 16", "resolution: 1"))
    with pytest.raises(NasError, match=r"res.yaml:3: input.resolution: must be at least 8 pixels"):
        load_space(bad)


def test_a_folder_given_as_space_says_it_is_a_folder(tmp_path, capsys):
    assert main(["search", "--space", str(tmp_path)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "is a folder" in err and "not found" not in err


def test_a_garbage_npz_is_not_a_valid_npz_without_numpys_advice(tmp_path, capsys):
    garbage = tmp_path / "data.npz"
    garbage.write_bytes(os.urandom(300))
    assert main(["search", "--dataset", str(garbage), "--out", str(tmp_path / "run")]) == 2
    err = one_line(capsys.readouterr().err)
    assert (
        "not a valid .npz with arrays 'x'" in err and "allow_pickle" not in err and "pickle.load" not in err
    )


def test_compare_needs_two_runs(tiny_run, tmp_path, capsys):
    assert main(["compare", str(tiny_run), "--out", str(tmp_path / "cmp")]) == 2
    assert "needs at least two run directories" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "cmp").exists()


def test_profile_validate_on_one_row_says_it_needs_two(tmp_path, capsys):
    from nas import build_model, export_onnx
    from nas.space import load_space

    arch = load_space("mobilenet").sample(_FirstChoice())
    (tmp_path / "m.onnx").write_bytes(export_onnx(build_model(arch, num_classes=10), arch.resolution))
    (tmp_path / "measurements.csv").write_text("model,latency_ms\nm.onnx,0.5\n")
    assert (
        main(
            [
                "profile",
                "validate",
                "--profile",
                "raspberry-pi-4",
                "--measurements",
                str(tmp_path / "measurements.csv"),
            ]
        )
        == 2
    )
    err = one_line(capsys.readouterr().err)
    assert "needs at least 2" in err and "nan" not in err


class _FirstChoice:
    def suggest_categorical(self, name, choices):
        return choices[0]


def test_train_accepts_the_model_file_of_an_export(tiny_run, tmp_path, tiny_dataset_file, capsys):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    assert main(["export", str(run_dir)]) == 0
    model = sorted((run_dir / "export").glob("*/model.onnx"))[0]
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                str(model),
                "--dataset",
                str(tiny_dataset_file),
                "--epochs",
                "1",
                "--train-subset",
                "32",
            ]
        )
        == 0
    )
    assert (model.parent.parent / f"{model.parent.name}-deployed" / "model.onnx").is_file()


# --- a full disk -----------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 160 KB file system of its own (tmpfs), for the run directory: room for config.json, not for the
    whole run of two trials (about 170 KB); skipped where it cannot be made."""
    mount = shutil.which("mount")
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield folder
    # lazily: Ray's workers of the resumed search may hold a file there for a moment after it returns
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_is_one_line_and_the_search_resumes_once_there_is_room(
    small_disk, tiny_space_file, tiny_dataset_file
):
    run_dir = small_disk / "run"
    command = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(tiny_space_file),
        "--dataset",
        str(tiny_dataset_file),
        "--trials",
        "2",
        "--population",
        "2",
        "--epochs",
        "1",
        "--train-subset",
        "32",
        "--prescreen",
        "1",
        "--out",
        str(run_dir),
        "--quiet",
    ]
    full = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert full.returncode == 1
    assert one_line(full.stderr, "nas: error: no space left on the device")
    json.loads((run_dir / "config.json").read_text())  # what was written before is whole
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(completed(run_dir)) >= 1
