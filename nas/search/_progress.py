"""What a running search shows: a live bar on a terminal, plain lines in a log file or CI, nothing with --quiet."""

from __future__ import annotations

import contextlib
import time

from nas.records import Attr
from nas.search._candidate import Progress
from nas.search._results import hypervolume, pareto_trials
from nas.search._study import COMPLETE, finished


class progress_display:
    """Progress while a search runs. On a terminal, a rich bar: trials done, feasible (trained), Pareto size,
    hypervolume, ETA. Elsewhere (a log file, CI), plain lines: one per finished trial (number, status,
    accuracy, latency, seconds) and a summary every `summary_every` seconds and at the end. Nothing when
    disabled (--quiet).

    The hypervolume's reference latency is the budget, else 1.1 x the slowest Pareto member so far.
    """

    def __init__(
        self,
        enabled: bool,
        study,
        total: int,
        budget_ms: float | None,
        *,
        terminal: bool | None = None,
        stream=None,
        summary_every: float = 60.0,
    ):
        """terminal: show the bar (None: when stdout is a terminal); stream: where lines go (stdout)."""
        self.enabled, self.study, self.total, self.budget_ms = enabled, study, total, budget_ms
        self.terminal, self.stream, self.summary_every = terminal, stream, summary_every
        self._bar = None
        self._lines: _ProgressLines | None = None

    def __enter__(self) -> Progress:
        progress = Progress(total=self.total)
        progress.feasible = sum(
            t.user_attrs.get(Attr.STATUS) == COMPLETE for t in self.study.get_trials(deepcopy=False)
        )
        if not self.enabled:
            return progress
        terminal = _stdout_is_terminal() if self.terminal is None else self.terminal
        if not terminal:
            self._lines = _ProgressLines(self.study, self.total, self.stream, self.summary_every)
            progress.update = self._lines.update
            return progress
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("search"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials"),
            TextColumn("feasible {task.fields[feasible]}"),
            TextColumn("pareto {task.fields[pareto]}"),
            TextColumn("HV {task.fields[hv]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self._bar.start()
        task = self._bar.add_task("search", total=self.total, feasible=0, pareto=0, hv="-")

        def update(p: Progress) -> None:
            front = [(t.values[0], t.values[1]) for t in pareto_trials(self.study)]
            reference = self.budget_ms or max((lat for _, lat in front), default=0.0) * 1.1
            hv = f"{hypervolume(front, reference):.3g}" if front else "-"
            self._bar.update(
                task, completed=min(p.done, p.total), feasible=p.feasible, pareto=len(front), hv=hv
            )

        progress.update = update
        return progress

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._lines is not None:
            self._lines.close()


def _stdout_is_terminal() -> bool:
    """A live bar only where it can redraw itself: a terminal (or a notebook); a pipe or file gets lines."""
    import sys

    try:
        if sys.stdout.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False
    return "ipykernel" in sys.modules


class _ProgressLines:
    """The progress of a search as plain lines, for a log file or CI: each trial once when it finishes (trials
    finished before this start, on resume, are not repeated; screened-out candidates are not trials of
    --trials and get none), and a summary from a background thread every `every` seconds."""

    def __init__(self, study, total: int, stream, every: float):
        import sys
        import threading

        self.study, self.total, self.every = study, total, every
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._seen = {t.number for t in study.get_trials(deepcopy=False) if finished(t)}
        self._done, self._trained, self._best = len(self._seen), 0, None
        for t in study.get_trials(deepcopy=False):
            self._note_best(t)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._summaries, name="nas-progress", daemon=True)
        self._thread.start()

    def update(self, progress: Progress) -> None:
        new = [t for t in self.study.get_trials(deepcopy=False) if finished(t) and t.number not in self._seen]
        with self._lock:
            for t in sorted(new, key=lambda t: t.number):
                self._seen.add(t.number)
                self._note_best(t)
                self._print(_trial_line(t))
            self._done = progress.done

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._print(self._summary())

    def _note_best(self, trial) -> None:
        if trial.user_attrs.get(Attr.STATUS) != COMPLETE or not trial.values:
            return
        self._trained += 1
        if self._best is None or trial.values[0] > self._best[0]:
            self._best = (trial.values[0], trial.values[1], trial.number)

    def _summaries(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                self._print(self._summary())

    def _summary(self) -> str:
        best = (
            f"best accuracy {self._best[0]:.3f} at {self._best[1]:.3f} ms (trial {self._best[2]})"
            if self._best
            else "none trained yet"
        )
        elapsed = time.perf_counter() - self.started
        return (
            f"search: {min(self._done, self.total)}/{self.total} trials, {self._trained} trained, {best}, "
            f"{elapsed // 60:.0f} min {elapsed % 60:02.0f} s elapsed"
        )

    def _print(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not stop the search
            print(line, file=self.stream, flush=True)


def _trial_line(trial) -> str:
    """`trial N  status  accuracy A  latency L ms  S s`, with '-' for what the trial has not got."""
    attrs = trial.user_attrs
    status = str(attrs.get(Attr.STATUS) or trial.state.name.lower())
    accuracy = trial.values[0] if status == COMPLETE and trial.values else None
    latency, seconds = attrs.get(Attr.LATENCY_MS), attrs.get(Attr.WALL_SECONDS)
    line = (
        f"trial {trial.number:>4}  {status:<13}"
        f"  accuracy {'-' if accuracy is None else f'{accuracy:.3f}':>5}"
        f"  latency {'-' if latency is None else f'{latency:.3f}':>8} ms"
        f"  {'-' if seconds is None else f'{seconds:.1f}':>6} s"
    )
    reason = attrs.get(Attr.FAILURE_REASON) or (
        attrs.get(Attr.INFEASIBLE_REASON) if status != COMPLETE else None
    )
    return f"{line}  ({str(reason).splitlines()[0][:120]})" if reason else line
