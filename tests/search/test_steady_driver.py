"""The steady driver (no batch barrier), in process on a simulated clock: busy workers, the trial budget,
twins, asynchronous rungs, Ctrl-C and resume."""

from __future__ import annotations

import csv
import heapq
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas.evaluate import ProxyTrainer, TrainingRecipe, TrainingResult
from nas.search import Executor, SearchConfig, TaskFailed, search
from nas.search._driver import BatchDriver
from nas.search._steady_driver import SteadyDriver, driver_class
from nas.search._tasks import train_candidate


class QuickTrainer(ProxyTrainer):
    """No training: an accuracy drawn from the architecture (the same every time), half of it at a rung.
    What is tested here is when the driver trains, not what training gives."""

    def train(self, arch, dataset, seed, *, stop_after=None, resume=None):
        accuracy = int(arch.hash[:6], 16) / 0xFFFFFF
        paused = stop_after is not None
        return TrainingResult(
            accuracy=accuracy / 2 if paused else accuracy,
            val_loss=1 - accuracy,
            train_seconds=0.001,
            eval_seconds=0.001,
            epochs=stop_after or self.recipe.epochs,
            state_dict=b"weights",
            resume_state=b"paused" if paused else None,
            device="cpu",
        )


FAST = QuickTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32))
SMALL_SPACE = (  # four architectures in all: duplicates and twins are certain
    "name: small\ninput: {resolution: 16}\nstem: {channels: 8, kernel: 3, stride: 1}\n"
    "block_choices: {primitive: [dwsep], kernel: [3], se: [false], activation: [relu]}\n"
    "stages:\n  - {name: a, stride: 2, depth: [1, 2], width: [8, 16]}\n"
)


class _Handle:
    value = error = None
    start = end = 0.0


class ClockExecutor(Executor):
    """Runs each task in this process when submitted, on `workers` simulated workers: a task starts when
    a worker is free and lasts, if it is a training, the next of `durations` (in submission order), else
    no time. `wait_one` returns the task that ends first and moves the clock there."""

    def __init__(self, workers: int, durations=(1.0,)):
        self.workers, self.durations = workers, durations
        self.now = 0.0
        self.free_at = [0.0] * workers  # a heap: when each worker is free
        self.trainings: list[_Handle] = []

    def put(self, value):
        return value

    def submit(self, fn, *args):
        handle = _Handle()
        training = args[1] is train_candidate
        handle.start = max(self.now, heapq.heappop(self.free_at))
        handle.end = handle.start + (
            self.durations[len(self.trainings) % len(self.durations)] if training else 0
        )
        heapq.heappush(self.free_at, handle.end)
        if training:
            self.trainings.append(handle)
        try:
            handle.value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - a task failure, as on Ray
            handle.error = f"{type(exc).__name__}: {exc}"
        return handle

    def wait_one(self, handles):
        first = min(handles, key=lambda h: h.end)
        self.now = max(self.now, first.end)
        return first

    def result(self, handle):
        if handle.error is not None:
            raise TaskFailed(handle.error)
        return handle.value

    def busy_share_until_last_start(self) -> float:
        """Training time / worker time from the first training's start to the last one's: 1.0 when no
        worker idled while candidates were left to train."""
        first, last = min(h.start for h in self.trainings), max(h.start for h in self.trainings)
        busy = sum(max(0.0, min(h.end, last) - h.start) for h in self.trainings)
        return busy / (self.workers * (last - first))


@pytest.fixture
def fast_dir(tmp_path):
    """A folder in memory where there is one: the study's SQLite commits cost most of these tests' time."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="nas-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run(folder, space, data, profile, executor, **settings):
    defaults = dict(
        space=str(space),
        dataset=str(data),
        profile=str(profile),
        latency="predicted",
        trials=6,
        population=3,
        epochs=1,
        train_subset=64,
        out=str(folder / "run"),
        sampler="nsga2",
        prescreen=1,
        prescreen_score="naswot",
        latency_budget_ms=None,
        seed=0,
    )
    return search(executor=executor, trainer=settings.pop("trainer", FAST), **{**defaults, **settings})


def rows(run_dir: Path):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_only_latency_measured_here_keeps_the_batch_barrier():
    measured = SimpleNamespace(name="here", latency="measured", latency_model=None)
    remote = SimpleNamespace(name="phone", latency="predicted", latency_model=object())
    assert driver_class(SearchConfig(latency="measured"), measured) is BatchDriver
    assert driver_class(SearchConfig(latency="auto"), measured) is BatchDriver
    assert driver_class(SearchConfig(latency="auto"), remote) is SteadyDriver
    assert driver_class(SearchConfig(latency="predicted"), remote) is SteadyDriver


def test_no_worker_idles_while_candidates_are_left(
    fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile, monkeypatch
):
    durations = (5.0, 1.0, 1.0, 3.0, 1.0, 2.0)
    steady = ClockExecutor(workers=3, durations=durations)
    result = run(fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile, steady, trials=7)
    assert result.finished == 7 and len(steady.trainings) >= 6
    assert steady.busy_share_until_last_start() == pytest.approx(1.0)

    # The same search with the batch barrier: workers wait for stragglers.
    monkeypatch.setattr(sys.modules["nas.search._api"], "driver_class", lambda *args: BatchDriver)
    batch = ClockExecutor(workers=3, durations=durations)
    run(
        fast_dir,
        tiny_space_file,
        tiny_dataset_file,
        x86_model_profile,
        batch,
        trials=7,
        out=str(fast_dir / "b"),
    )
    assert batch.busy_share_until_last_start() < 0.9


class FreezableClockExecutor(ClockExecutor):
    """A `ClockExecutor` whose "raylet" is a process without children: the freeze stops nothing, but the
    driver must take it around every measurement."""

    def __init__(self, raylet_pid: int, **kwargs):
        super().__init__(**kwargs)
        self.raylet_pid = raylet_pid

    def local_raylet_pid(self):
        return self.raylet_pid


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="the freeze needs Linux's /proc")
def test_latency_measured_here_is_measured_frozen_and_no_worker_idles(
    fast_dir, tiny_space_file, tiny_dataset_file, monkeypatch
):
    from nas.search._freeze import WorkerFreeze

    frozen_around = []
    measure = sys.modules["nas.search._cheap_objectives"].measure_latency

    def measure_latency(*args, **kwargs):
        frozen_around.append(freezes[-1] if freezes and inside else None)
        return measure(*args, **kwargs)

    freezes, inside = [], False
    real_frozen = WorkerFreeze.frozen

    @contextmanager
    def frozen(self, at_least=0):
        nonlocal inside
        freezes.append(len(freezes))
        with real_frozen(self, at_least):
            inside = True
            try:
                yield
            finally:
                inside = False

    monkeypatch.setattr(WorkerFreeze, "frozen", frozen)
    monkeypatch.setattr(sys.modules["nas.search._cheap_objectives"], "measure_latency", measure_latency)
    lone = subprocess.Popen(["sleep", "60"])
    try:
        executor = FreezableClockExecutor(lone.pid, workers=3, durations=(5.0, 1.0, 1.0, 3.0, 1.0, 2.0))
        result = run(
            fast_dir,
            tiny_space_file,
            tiny_dataset_file,
            "x86-cpu",
            executor,
            trials=7,
            latency="measured",
            trainer=LongLoopTrainer(FAST.recipe),
        )
    finally:
        lone.kill()
        lone.wait()
    assert result.finished == 7
    measured = [r for r in rows(result.run_dir) if r["latency_source"] == "measured"]
    assert len(measured) == len(frozen_around) >= 6
    assert frozen_around == list(range(len(frozen_around)))  # each measurement inside a freeze of its own
    assert executor.busy_share_until_last_start() == pytest.approx(1.0)
    # Each training's loop spans every freeze before it: those seconds are taken out of its train_seconds.
    seconds = sorted(float(r["train_seconds"]) for r in rows(result.run_dir) if r["train_seconds"])
    assert seconds and all(s < LongLoopTrainer.LOOP_S for s in seconds[:-1]) and seconds[0] < seconds[-1]


class LongLoopTrainer(QuickTrainer):
    """A training loop said to have lasted `LOOP_S` seconds up to now: it spans every freeze so far."""

    LOOP_S = 1000.0

    def train(self, arch, dataset, seed, *, stop_after=None, resume=None):
        import dataclasses
        import time

        result = super().train(arch, dataset, seed, stop_after=stop_after, resume=resume)
        return dataclasses.replace(result, train_seconds=self.LOOP_S, train_ended_at=time.monotonic())


@pytest.mark.parametrize("prescreen", [1, 4])
def test_duplicates_and_twins_in_flight_never_overshoot_the_trial_budget(
    fast_dir, tiny_dataset_file, x86_model_profile, prescreen
):
    space = fast_dir / "small.yaml"
    space.write_text(SMALL_SPACE)
    executor = ClockExecutor(workers=3, durations=(3.0, 1.0, 2.0))
    result = run(
        fast_dir,
        space,
        tiny_dataset_file,
        x86_model_profile,
        executor,
        trials=6,
        prescreen=prescreen,
        sampler="random",
    )
    table = rows(result.run_dir)
    counted = [r for r in table if r["status"] != "screened_out"]
    assert result.finished == 6 and len(counted) == 6
    trained = {r["number"] for r in table if r["train_seconds"]}
    copies = [r for r in counted if r["duplicate_of"]]
    assert len(trained) <= 4 and copies and all(r["duplicate_of"] in trained for r in copies)


def test_rungs_stop_the_dominated_against_what_validated_so_far(
    fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile
):
    executor = ClockExecutor(workers=3, durations=(1.0, 2.0))
    result = run(
        fast_dir,
        tiny_space_file,
        tiny_dataset_file,
        x86_model_profile,
        executor,
        trials=8,
        epochs=2,
        trainer=QuickTrainer(TrainingRecipe(epochs=2, train_subset=64, batch_size=32)),
        rungs=(1,),
        stop_dominated_by=1,
        stop_margin=0,
    )
    table = rows(result.run_dir)
    stopped = [r for r in table if r["status"] == "stopped_early"]
    trained = [r for r in table if r["status"] == "complete" and not r["duplicate_of"]]
    assert result.finished == 8 and stopped and trained
    rung = {
        int(r["number"]): (json.loads(r["rung_accuracy"].replace("'", '"'))["1"], float(r["latency_ms"]))
        for r in stopped + trained
    }
    for r in stopped:  # something validated at the rung dominated it
        acc, lat = rung[int(r["number"])]
        assert any(
            a >= acc and t <= lat and (a > acc or t < lat)
            for n, (a, t) in rung.items()
            if n != int(r["number"])
        )
        assert not r["train_seconds"] and "1-epoch rung" in r["failure_reason"]


class OrderClockExecutor(ClockExecutor):
    """A ClockExecutor that records which architecture each training was submitted for, in order."""

    def __init__(self, workers: int, durations=(1.0,)):
        super().__init__(workers, durations)
        self.trained: list[str] = []

    def submit(self, fn, *args):
        if args[1] is train_candidate:
            self.trained.append(args[3].hash)
        return super().submit(fn, *args)


def test_the_last_round_is_asked_together_and_starts_longest_first(
    fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile
):
    executor = OrderClockExecutor(workers=3, durations=(3.0, 1.0, 2.0))
    result = run(fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile, executor, trials=9, seed=1)
    table = {int(r["number"]): r for r in rows(result.run_dir)}
    assert result.finished == 9 and len(table) == 9
    last_round = {
        table[n]["arch_hash"]: int(table[n]["macs"]) for n in (6, 7, 8) if table[n]["train_seconds"]
    }
    started = [last_round[h] for h in executor.trained if h in last_round]
    assert len(set(started)) == 3 and started == sorted(started, reverse=True)


def test_same_seed_one_worker_same_search(fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile):
    def trials(out):
        result = run(
            fast_dir,
            tiny_space_file,
            tiny_dataset_file,
            x86_model_profile,
            ClockExecutor(1),
            out=out,
            trials=3,
        )
        return [(r["arch_hash"], r["status"], r["accuracy"]) for r in rows(result.run_dir)]

    assert trials(str(fast_dir / "a")) == trials(str(fast_dir / "b"))


def test_ctrl_c_writes_what_finished_and_resume_completes_the_budget(
    fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile
):
    def interrupt_at_the_second(study, trial):
        if trial.number >= 1:
            raise KeyboardInterrupt

    executor = ClockExecutor(workers=2, durations=(2.0, 1.0))
    with pytest.raises(KeyboardInterrupt):
        run(
            fast_dir,
            tiny_space_file,
            tiny_dataset_file,
            x86_model_profile,
            executor,
            callbacks=[interrupt_at_the_second],
        )
    assert len([r for r in rows(fast_dir / "run") if r["status"] == "complete"]) >= 1
    result = run(
        fast_dir, tiny_space_file, tiny_dataset_file, x86_model_profile, ClockExecutor(workers=2), trials=4
    )
    assert result.finished == 4
