"""Freezing this machine's Ray workers while the driver measures latency, so trainings need no batch barrier.

A latency measured on the training machine must not overlap training (a training on the other cores
ruins ONNX Runtime's medians). `BatchDriver` ensures it by waiting, at each batch's end, for the slowest
training: the other workers idle meanwhile. `WorkerFreeze` ensures it instead by stopping every worker
process of the local Ray node (SIGSTOP: the kernel takes them off the CPU at once, whatever they are
doing) for the fraction of a second a measurement takes, then resuming them (SIGCONT). The computation of
a frozen training is unchanged, only delayed, and the seconds it spent frozen are subtracted from its
recorded training time (`training_seconds`), so trial records and the overhead benchmark count them as
measurement, not training.

It applies only where every worker that could disturb a measurement is a child process of a Ray node this
driver started (`nas.search` with a local Ray, on Linux, where /proc names each process's parent); with a
cluster address, or elsewhere, `WorkerFreeze.of` gives None and the batch driver keeps its barrier.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

PROC = Path("/proc")
STOP_WAIT_S = 2.0  # the longest a freeze waits for the kernel to stop a worker before measuring anyway
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")  # the node's own helpers, not task workers


class WorkerFreeze:
    """Stops and resumes the task workers of one local Ray node (children of its raylet process)."""

    def __init__(self, raylet_pid: int, proc: Path = PROC):
        self.raylet_pid = raylet_pid
        self.proc = proc
        self.intervals: list[tuple[float, float]] = []  # (start, end) of each freeze, time.monotonic()
        self.incomplete = 0  # freezes in which some worker could not be confirmed stopped

    @classmethod
    def of(cls, executor) -> "WorkerFreeze | None":
        """The freeze of `executor`'s workers, or None when they are not all children of a local Ray node
        this process started (see the module's docstring)."""
        raylet = getattr(executor, "local_raylet_pid", lambda: None)()
        if raylet is None or not sys.platform.startswith("linux") or not PROC.is_dir():
            return None
        return cls(raylet)

    def worker_pids(self) -> list[int]:
        """The raylet's child processes that run tasks: titled ``ray::IDLE`` or ``ray::<task>`` by Ray, or
        still starting (``.../default_worker.py ...`` until Ray renames them)."""
        pids = []
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = _parent_pid((entry / "stat").read_text())
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError):  # the process ended while this looked
                continue
            title = command.split("\0", 1)[0]
            titled = title.startswith("ray::") and not title.startswith(AGENTS)
            if ppid == self.raylet_pid and (titled or "default_worker.py" in command):
                pids.append(int(entry.name))
        return pids

    @contextmanager
    def frozen(self, at_least: int = 0) -> Iterator[None]:
        """Every task worker stopped for the duration of the block, then resumed (also on an exception).
        `at_least`: the trainings in flight; fewer workers found, or some not confirmed stopped, is warned
        of (the measurement may then time contention) and counted in `incomplete`."""
        stopped: list[int] = []
        pids = self.worker_pids()
        start = time.monotonic()
        try:
            for pid in pids:
                stopped.append(pid)  # first: an interrupt between the two must still resume it
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            if not self._wait_stopped(stopped) or len(stopped) < at_least:
                self.incomplete += 1
                if self.incomplete == 1:
                    log.warning(
                        f"latency measured with {at_least} training(s) in flight, but only "
                        f"{len(stopped)} Ray worker(s) of this machine could be frozen: the measurement "
                        "may time the contention"
                    )
            yield
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self.intervals.append((start, time.monotonic()))

    def frozen_seconds(self, start: float, end: float) -> float:
        """How long the workers were frozen between two `time.monotonic()` readings."""
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.intervals)

    def training_seconds(self, result):
        """`result` (a `TrainingResult`) with the seconds its training loop spent frozen taken out of
        `train_seconds`; as it is when the trainer did not say when its loop ended (`train_ended_at`)."""
        ended = getattr(result, "train_ended_at", None)
        if ended is None:
            return result
        frozen = self.frozen_seconds(ended - result.train_seconds, ended)
        return replace(result, train_seconds=max(0.0, result.train_seconds - frozen)) if frozen else result

    def _wait_stopped(self, pids: list[int]) -> bool:
        """Wait until the kernel reports every thread of `pids` stopped (a signal is delivered
        asynchronously); False if some still ran after `STOP_WAIT_S`."""
        deadline = time.monotonic() + STOP_WAIT_S
        pending = list(pids)
        while pending:
            pending = [pid for pid in pending if not self._stopped(pid)]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def _stopped(self, pid: int) -> bool:
        try:
            tasks = list((self.proc / str(pid) / "task").iterdir())
            return all(_state((t / "stat").read_text()) in "TtZX" for t in tasks)  # stopped, or dead
        except (OSError, ValueError):  # gone: it cannot run any more
            return True


def _stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/PID/stat line after the title (in parentheses, which may hold spaces and
    parentheses): the state, then the parent pid, ..."""
    return stat[stat.rindex(")") + 2 :].split()


def _parent_pid(stat: str) -> int:
    return int(_stat_fields(stat)[1])


def _state(stat: str) -> str:
    return _stat_fields(stat)[0]
