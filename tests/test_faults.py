"""Faults a user meets: Ctrl-C and SIGTERM during a search, damaged run files, a Ray that cannot start, cost flags
out of bounds, a search that trains nothing, misleading words. Each ends in one line `nas: ...` on stderr, no
traceback, the documented exit code, and nothing finished is lost."""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _serial_executor import SerialExecutor
from conftest import tiny_search
from ray import cloudpickle

from nas.cli import _bound_local_workers, main
from nas.errors import NasError, on_stop_signal
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.export._folder import EXPORTED_AS
from nas.search import Executor, SearchConfig, load_run_study, search
from nas.search import _api as search_api  # where a stop is put in the preparation
from nas.search import _cheap_objectives as cheap_objectives  # where latency is measured

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


# --- real signals: one search, stopped twice ------------------------------------------------------
def _ray_starting(pid: int) -> bool:
    """A gcs_server child of `pid`: its ray.init is starting a local Ray (which takes seconds more)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if name.startswith("gcs_server") and int(fields[1]) == pid:
            return True
    return False


def test_sigterm_while_ray_starts_then_ctrl_c_in_training_then_the_same_command_finishes(
    tmp_path, tiny_space_file, tiny_dataset_file
):
    """Real signals to a real `nas search`, once in preparation (Ray starting), once in training. The other
    points are stopped in this process below (cheaper, and exactly where they are meant)."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "nas", "search", "--space", str(tiny_space_file)]
    command += ["--dataset", str(tiny_dataset_file), "--trials", "4", "--population", "2", "--workers", "2"]
    command += ["--epochs", "2", "--train-subset", "64", "--prescreen", "1", "--out", str(run_dir), "--quiet"]

    def start():  # SIGINT's default action, even where this test runs as a background job (which ignores it)
        return subprocess.Popen(
            command,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def wait_for(driver, ready, what):
        deadline = time.time() + 240
        while not ready():
            assert driver.poll() is None, f"the search ended early: {driver.stderr.read()[-2000:]}"
            assert time.time() < deadline, f"{what} did not happen in time"
            time.sleep(0.05)

    # 1. SIGTERM while ray.init runs (Ray's own handler is in place then): 143, one line, no run directory.
    driver = start()
    wait_for(driver, lambda: _ray_starting(driver.pid) or run_dir.exists(), "a Ray start")
    driver.send_signal(signal.SIGTERM)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 143, err[-2000:]
    assert one_line_after_signal(err, "nas: terminated (SIGTERM); run the same command again to resume")
    assert not run_dir.exists() or json.loads((run_dir / "config.json").read_text())  # none, or a whole one

    # 2. Ctrl-C with one trial trained and the rest of its batch training: 130, what finished is written.
    driver = start()
    wait_for(driver, lambda: _completed_now(run_dir), "a trained trial")
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-2000:]
    assert one_line_after_signal(err, "nas: interrupted; run the same command again to resume")
    assert (
        "Pareto front" not in out
        and (run_dir / "trials.csv").is_file()
        and (run_dir / "pareto.json").is_file()
    )
    before = completed(run_dir)
    assert before

    # 3. The same command finishes the search; nothing that had finished changed.
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = completed(run_dir)
    assert all(after.get(n) == v for n, v in before.items()), "a trial completed before the stop changed"
    assert (
        sum(
            t.user_attrs.get("status") in ("complete", "infeasible", "failed")
            for t in load_run_study(run_dir).get_trials(deepcopy=False)
        )
        == 4
    )


# --- damaged run files -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_space_file, tiny_dataset_file, ray_executor) -> Path:
    run_dir = tmp_path_factory.mktemp("faults") / "run"
    return tiny_search(run_dir, tiny_space_file, tiny_dataset_file, ray_executor, prescreen=1)


def same_search(run_dir, space, data, trials: int = 2):
    return [
        "search",
        "--space",
        str(space),
        "--dataset",
        str(data),
        "--trials",
        str(trials),
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


# --- stops at named points, in this process ---------------------------------------------------------
# A stop is raised where a signal would land, by what the CLI's handler runs on SIGINT / SIGTERM
# (nas.errors.on_stop_signal), inside `nas search` run in this process on the SerialExecutor: every point
# deterministically, in about a second each. A kill (SIGKILL) is the same in a forked copy of this process.
STOPPED = {
    signal.SIGINT: (130, "nas: interrupted; run the same command again to resume\n"),
    signal.SIGTERM: (143, "nas: terminated (SIGTERM); run the same command again to resume\n"),
}


@pytest.fixture
def serial_search(monkeypatch):
    """`nas search` in this process, every task on the SerialExecutor (no Ray)."""
    module = importlib.import_module("nas.search")  # the package (nas.search, the attribute, is the function)
    real = module.search
    monkeypatch.setattr(module, "search", lambda config, **kw: real(config, executor=SerialExecutor(), **kw))


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, tiny_space_file, tiny_dataset_file) -> Path:
    """A finished run of `same_search` (two trials, one batch), made on the SerialExecutor."""
    run_dir = tmp_path_factory.mktemp("stops") / "run"
    search(
        executor=SerialExecutor(),
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


def stop_when_called(patch, owner, name: str, signum: int, nth: int = 1) -> None:
    """`owner.name` is stopped by `signum` on its `nth` call (`patch`: a monkeypatch)."""
    real, calls = getattr(owner, name), itertools.count(1)

    def stopping(*args, **kwargs):
        if next(calls) == nth:
            on_stop_signal(signum, None)
        return real(*args, **kwargs)

    patch.setattr(owner, name, stopping)


def stop_while_writing(patch, name: str, signum: int | None) -> None:
    """Every atomic write of a file whose name starts with `name` is stopped (`signum`; None: SIGKILL) once
    its bytes are in the temp file, before the rename: where a write that is not atomic leaves half a file."""
    real = os.fsync

    def fsync(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{name}"):
            os.kill(os.getpid(), signal.SIGKILL) if signum is None else on_stop_signal(signum, None)
        return real(fd)

    patch.setattr(os, "fsync", fsync)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_whole(run_dir: Path) -> None:
    """No temp file of an interrupted write is left, and every file a reader opens parses."""
    assert not [p.name for p in run_dir.rglob("*.tmp")], "a temp file of an interrupted write is left"
    json.loads((run_dir / "config.json").read_text())
    if (run_dir / "pareto.json").exists():
        assert isinstance(json.loads((run_dir / "pareto.json").read_text())["pareto"], list)
    if (run_dir / "trials.csv").exists():
        rows = list(csv.DictReader(io.StringIO((run_dir / "trials.csv").read_text())))
        assert all(row["number"] for row in rows)


def _fake_ray_start(signum: int):
    def start(*args, **kwargs):
        if signum == signal.SIGTERM:
            sys.exit(signal.SIGTERM)  # what Ray's own handler, in place while ray.init runs, does on SIGTERM
        on_stop_signal(signum, None)

    return start


def _stop_ray_start(patch, signum: int) -> None:
    """The search starts its own Ray (not the SerialExecutor), and the signal lands while it starts."""
    patch.setattr(importlib.import_module("nas.search"), "search", search_api.search)
    patch.setattr(search_api, "RayExecutor", _fake_ray_start(signum))


PREPARATION = {  # a point before the first batch -> how a stop is put there
    "space": lambda patch, signum: stop_when_called(patch, search_api, "load_space", signum),
    "profile": lambda patch, signum: stop_when_called(patch, search_api, "load_profile", signum),
    "dataset": lambda patch, signum: stop_when_called(patch, search_api, "load_dataset", signum),
    "ray start": lambda patch, signum: _stop_ray_start(patch, signum),
    "study": lambda patch, signum: stop_when_called(patch, search_api, "open_study", signum),  # after config
    "dataset to workers": lambda patch, signum: stop_when_called(patch, SerialExecutor, "put", signum),
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", list(PREPARATION))
def test_a_stop_in_preparation_leaves_no_run_directory_and_a_resumed_one_as_it_was(
    point,
    signum,
    serial_run,
    tmp_path,
    tiny_space_file,
    tiny_dataset_file,
    serial_search,
    monkeypatch,
    capsys,
):
    code, line = STOPPED[signum]
    new = tmp_path / "new" / "run"
    resumed = shutil.copytree(serial_run, tmp_path / "resumed")
    before = files_of(resumed)
    for run_dir, trials in ((new, 2), (resumed, 4)):
        with monkeypatch.context() as patch:
            PREPARATION[point](patch, signum)
            assert main(same_search(run_dir, tiny_space_file, tiny_dataset_file, trials)) == code
        assert capsys.readouterr().err == line
    assert not (tmp_path / "new").exists(), "a stopped start left (part of) a run directory"
    assert files_of(resumed) == before


def test_stops_in_latency_training_and_writing_lose_nothing_and_the_same_command_resumes(
    serial_run, tmp_path, tiny_space_file, tiny_dataset_file, serial_search, monkeypatch, capsys
):
    """The second batch of a run, stopped at each point in turn; each time the same command goes on."""
    run_dir = shutil.copytree(serial_run, tmp_path / "run")
    command = same_search(run_dir, tiny_space_file, tiny_dataset_file, trials=4)
    points = [  # (point, signal, how the stop is put there)
        (
            "latency",
            signal.SIGTERM,
            lambda m: stop_when_called(m, cheap_objectives, "measure_latency", signal.SIGTERM),
        ),
        (
            "training",
            signal.SIGINT,
            lambda m: stop_when_called(m, ProxyTrainer, "train", signal.SIGINT, nth=2),
        ),
        ("a checkpoint write", signal.SIGTERM, lambda m: stop_while_writing(m, "trial_", signal.SIGTERM)),
        (
            "the pareto.json write",
            signal.SIGINT,
            lambda m: stop_while_writing(m, "pareto.json", signal.SIGINT),
        ),
    ]
    kept = completed(run_dir)
    assert len(kept) == 2
    for point, signum, put_stop in points:
        pareto_before = (run_dir / "pareto.json").read_bytes()
        with monkeypatch.context() as patch:
            put_stop(patch)
            assert main(command) == STOPPED[signum][0], point
        assert capsys.readouterr().err == STOPPED[signum][1], point
        assert_whole(run_dir)
        now = completed(run_dir)
        assert all(now.get(n) == v for n, v in kept.items()), f"{point}: a finished trial changed or vanished"
        kept = now
    assert (
        run_dir / "pareto.json"
    ).read_bytes() == pareto_before  # its write was stopped: the old one, whole
    assert len(kept) == 4  # the batch was told before its outputs were written

    assert main(command) == 0
    assert completed(run_dir) == kept and assert_whole(run_dir) is None
    front = {r["trial"] for r in json.loads((run_dir / "pareto.json").read_text())["pareto"]}
    assert front and front <= set(kept)


def test_a_stop_while_exporting_keeps_the_earlier_export_whole(serial_run, tmp_path, monkeypatch, capsys):
    run_dir = shutil.copytree(serial_run, tmp_path / "run")
    assert main(["export", str(run_dir)]) == 0
    export = run_dir / "export"
    for metrics_path in export.glob("*/metrics.json"):  # as exported before the mark: all exported again
        metrics = json.loads(metrics_path.read_text())
        metrics.pop(EXPORTED_AS)
        metrics_path.write_text(json.dumps(metrics))
    stale = export / "07_0123456789ab"  # this run's model of an earlier front: removed, but only at the end
    shutil.copytree(next(export.iterdir()), stale)
    before = files_of(export)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        stop_while_writing(patch, "model.onnx", signal.SIGTERM)
        assert main(["export", str(run_dir)]) == 143
    assert capsys.readouterr().err == STOPPED[signal.SIGTERM][1]
    after = files_of(export)
    assert after.keys() == before.keys() and not [p for p in export.rglob("*.tmp")]
    # spec.json, written first, may be new (the same content); a full export then removes the stale folder
    # (tests/test_export.py)
    assert all(after[name] == before[name] for name in after if not name.endswith("spec.json"))


# --- kills (SIGKILL) at named points, in a forked copy of this process ---------------------------------
def killed(argv: list[str], put_kill) -> None:
    """`nas argv` in a forked child that SIGKILLs itself where `put_kill(patch)` says; waits for it."""
    child = os.fork()
    if child == 0:  # never returns into pytest
        try:
            with pytest.MonkeyPatch.context() as patch:
                put_kill(patch)
                main(argv)
        finally:
            os._exit(99)
    deadline = time.time() + 120
    while not (status := os.waitpid(child, os.WNOHANG))[0]:
        if time.time() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            pytest.fail("the forked search did not end in 120 s")
        time.sleep(0.05)
    assert os.WIFSIGNALED(status[1]) and os.WTERMSIG(status[1]) == signal.SIGKILL, "not killed where meant"


def _kill_when_called(patch, owner, name: str) -> None:
    real = getattr(owner, name)

    def killing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    patch.setattr(owner, name, killing)


def test_a_start_killed_half_way_is_no_run_yet_and_a_retry_with_other_settings_starts(
    tmp_path, tiny_space_file, tiny_dataset_file, serial_search, capsys
):
    run_dir = tmp_path / "run"
    command = same_search(run_dir, tiny_space_file, tiny_dataset_file)
    killed(command, lambda patch: _kill_when_called(patch, search_api, "open_study"))  # config.json written
    assert (run_dir / ".starting").is_file()  # the mark of a start that did not finish
    assert json.loads((run_dir / "config.json").read_text())["search"]["seed"] == 0
    with pytest.MonkeyPatch.context() as patch:  # the retry stopped once it has started (no training needed)
        stop_when_called(patch, ProxyTrainer, "train", signal.SIGINT)
        assert main([*command, "--seed", "1"]) == 130, capsys.readouterr().err
    assert json.loads((run_dir / "config.json").read_text())["search"]["seed"] == 1
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".lock",
        "checkpoints",
        "config.json",
        "pareto.json",
        "study.db",
        "trials.csv",
    ]


def test_kills_in_latency_and_while_writing_lose_nothing_and_the_same_command_resumes(
    serial_run, tmp_path, tiny_space_file, tiny_dataset_file, serial_search
):
    run_dir = shutil.copytree(serial_run, tmp_path / "run")
    command = same_search(run_dir, tiny_space_file, tiny_dataset_file, trials=4)
    kept, pareto_before = completed(run_dir), (run_dir / "pareto.json").read_bytes()
    killed(command, lambda patch: _kill_when_called(patch, cheap_objectives, "measure_latency"))
    assert completed(run_dir) == kept
    killed(command, lambda patch: stop_while_writing(patch, "pareto.json", None))
    assert (run_dir / "pareto.json").read_bytes() == pareto_before  # the old one, whole
    assert [p.name.split(".")[1] for p in run_dir.glob(".*.tmp")] == ["pareto"]  # what a kill leaves
    assert len(completed(run_dir)) == 4 and all(completed(run_dir)[n] == v for n, v in kept.items())

    assert main(command) == 0
    assert_whole(run_dir)  # the temp file of the killed write is gone too
    assert {r["trial"] for r in json.loads((run_dir / "pareto.json").read_text())["pareto"]} <= set(
        completed(run_dir)
    )


# --- a worker killed while it trains -------------------------------------------------------------------
def _is_ray_worker(pid: int) -> bool:
    try:
        return "ray" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


class KilledOnce(ProxyTrainer):
    """The search's first training writes its worker's pid to `folder`/victim.pid, then waits to be killed
    there; every other training (its retry included) trains."""

    def __init__(self, folder: str):
        super().__init__(TrainingRecipe(epochs=1, train_subset=32))
        self.folder = folder

    def train(self, arch, dataset, seed):
        folder = Path(self.folder)
        try:  # exclusive, and kept: of all trainings (two start at once, then the retry) one is the victim
            os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super().train(arch, dataset, seed)
        (folder / "victim.part").write_text(str(os.getpid()))
        os.replace(folder / "victim.part", folder / "victim.pid")  # the test reads a whole pid only
        time.sleep(120)  # killed here
        return super().train(arch, dataset, seed)


def test_a_worker_killed_mid_training_is_retried_and_the_search_finishes(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    """SIGKILL to the worker process (as the OOM killer sends): Ray retries the task on a new worker; a
    worker killed every time fails its trial with the reason (tests/search/test_driver.py)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    done, killed_pids = threading.Event(), []

    def killer():
        while not done.is_set() and not killed_pids:
            if (pids / "victim.pid").exists():
                pid = int((pids / "victim.pid").read_text())
                if _is_ray_worker(pid):
                    killed_pids.append(pid)
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = search(
            executor=ray_executor,
            trainer=KilledOnce(str(pids)),
            space=str(tiny_space_file),
            dataset=str(tiny_dataset_file),
            trials=2,
            population=2,
            prescreen=1,
            out=str(tmp_path / "run"),
        )
    finally:
        done.set()
        thread.join()
    assert len(killed_pids) == 1, "no training was killed"
    assert result.finished == 2 and result.complete == 2 and result.failed == 0
    assert len(completed(result.run_dir)) == 2 and result.pareto


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
    small_disk, tiny_space_file, tiny_dataset_file, ray_executor, capsys
):
    """In this process, on the test session's Ray (a search of its own would start one: seconds)."""
    run_dir = small_disk / "run"
    argv = ["search", "--space", str(tiny_space_file), "--dataset", str(tiny_dataset_file), "--trials", "2"]
    argv += ["--population", "2", "--epochs", "1", "--train-subset", "32", "--prescreen", "1"]
    argv += ["--out", str(run_dir), "--quiet"]
    assert main(argv) == 1
    assert one_line(capsys.readouterr().err, "nas: error: no space left on the device")
    json.loads((run_dir / "config.json").read_text())  # what was written before is whole
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert main(argv) == 0, capsys.readouterr().err[-2000:]
    assert len(completed(run_dir)) >= 1
