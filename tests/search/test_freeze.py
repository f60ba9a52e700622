"""Freezing the local Ray workers while the driver measures latency (nas.search._freeze)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas.evaluate import TrainingResult
from nas.search import Executor, SearchConfig
from nas.search._driver import BatchDriver
from nas.search._freeze import WorkerFreeze
from nas.search._steady_driver import driver_class

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")


def fake_process(proc: Path, pid: int, ppid: int, title: str) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    # the title in parentheses may hold spaces and parentheses: the parent is the 2nd field after the last ')'
    (folder / "stat").write_text(f"{pid} ({title[:15]}) S {ppid} {pid} {pid} 0 -1 4194560\n")
    (folder / "cmdline").write_bytes(title.encode() + b"\0")


def test_the_workers_are_the_raylets_task_processes_only(tmp_path):
    proc = tmp_path / "proc"
    fake_process(proc, 100, 1, "/usr/bin/raylet --node")
    fake_process(proc, 101, 100, "ray::IDLE")
    fake_process(proc, 102, 100, "ray::with_plugins")
    fake_process(proc, 103, 100, "ray::DashboardAgent")
    fake_process(proc, 104, 100, "ray::RuntimeEnvAgent")
    fake_process(proc, 105, 1, "ray::IDLE")  # another node's worker
    fake_process(proc, 106, 100, "python a) b (c")  # a helper the raylet started, not a worker
    fake_process(proc, 107, 100, "/venv/bin/python")  # a worker still starting, not yet renamed by Ray
    (proc / "107" / "cmdline").write_bytes(b"/venv/bin/python\0-u\0/ray/_private/workers/default_worker.py\0")
    (proc / "self").mkdir()
    assert sorted(WorkerFreeze(100, proc=proc).worker_pids()) == [101, 102, 107]


def test_frozen_seconds_count_only_the_overlap_with_the_loop():
    freeze = WorkerFreeze(0)
    freeze.intervals = [(10.0, 11.0), (20.0, 20.5), (30.0, 32.0)]
    assert freeze.frozen_seconds(10.5, 31.0) == pytest.approx(0.5 + 0.5 + 1.0)
    assert freeze.frozen_seconds(0.0, 9.0) == 0.0

    result = TrainingResult(
        accuracy=0.5, val_loss=1.0, train_seconds=12.0, eval_seconds=0.1, epochs=1, state_dict=b"",
        train_ended_at=31.0,
    )  # fmt: skip
    assert freeze.training_seconds(result).train_seconds == pytest.approx(12.0 - 0.5 - 1.0)  # loop: 19-31
    custom = SimpleNamespace(train_seconds=12.0)  # a trainer that does not say when its loop ended
    assert freeze.training_seconds(custom) is custom


@linux_only
def test_a_frozen_process_stops_and_runs_again_even_after_an_error():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        freeze = WorkerFreeze(0)
        freeze.worker_pids = lambda: [child.pid]
        with pytest.raises(RuntimeError), freeze.frozen():
            assert state(child.pid) == "T" and freeze.incomplete == 0
            cpu = cpu_ticks(child.pid)
            time.sleep(0.3)
            assert cpu_ticks(child.pid) == cpu  # no CPU at all while frozen
            raise RuntimeError("a measurement failed")
        time.sleep(0.3)
        assert state(child.pid) in "RS" and cpu_ticks(child.pid) > cpu
        assert len(freeze.intervals) == 1 and freeze.intervals[0][1] - freeze.intervals[0][0] >= 0.3
    finally:
        child.kill()
        child.wait()


@linux_only
def test_the_local_ray_workers_are_frozen_while_measuring(ray_executor):
    freeze = WorkerFreeze.of(ray_executor)
    assert freeze is not None

    def spin(seconds: float) -> int:  # local: Ray ships it by value (this module is not importable there)
        import time

        end, count = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            count += 1
        return count

    handles = [ray_executor.submit(spin, 3.0) for _ in range(ray_executor.workers)]
    time.sleep(1.0)
    pids = freeze.worker_pids()
    assert len([pid for pid in pids if state(pid) == "R"]) >= 1  # spinning (runnable, not stopped)
    with freeze.frozen():
        assert all(state(pid) == "T" for pid in pids)
    assert all(ray_executor.ray.get(h, timeout=60) > 0 for h in handles)  # resumed: they finish


def test_latency_measured_here_trains_without_a_barrier_only_where_workers_can_be_frozen(monkeypatch):
    measured = SimpleNamespace(name="here", latency="measured", latency_model=None)
    remote = SimpleNamespace(name="phone", latency="predicted", latency_model=object())
    local_ray = SimpleNamespace(local_raylet_pid=lambda: 4321)
    cluster = SimpleNamespace(local_raylet_pid=lambda: None)
    config = SearchConfig(latency="auto")
    assert driver_class(config, measured, cluster) is BatchDriver
    assert driver_class(config, measured) is BatchDriver
    assert driver_class(config, remote, cluster).__name__ == "SteadyDriver"
    monkeypatch.setattr(sys, "platform", "linux")
    expected = "SteadyDriver" if Path("/proc").is_dir() else "BatchDriver"
    assert driver_class(config, measured, local_ray).__name__ == expected
    assert WorkerFreeze.of(FakeExecutor()) is None  # no local raylet: no freeze


class FakeExecutor(Executor):
    put = submit = wait_one = result = None


def state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
