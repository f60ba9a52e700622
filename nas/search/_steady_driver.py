"""The steady driver: no batch barrier.

`BatchDriver` waits for the slowest training of a batch before the next batch starts, because a latency
measured here must never overlap training. A predicted latency (or one measured on a device node) has no
such need, and a latency measured here needs only the workers frozen while the driver measures
(`_freeze`), so `SteadyDriver` keeps `workers` trainings in flight: when one returns, the next candidate
(asked and screened by the same cheap objectives and constraints while the workers trained) is submitted
at once, then the result is told and the candidate after it asked.

- Pre-screening: each free worker asks a pool of `prescreen` candidates; the `Selector` chooses the one
  that trains (keep = 1). A pool counts toward --trials at most once, as a batch counts at most its share.
- Multi-fidelity (ASHA-like): a candidate back from a rung is compared with every candidate validated at
  that rung so far (told, or still in flight) and stops if dominated, else resumes at once. An early
  arrival sees fewer rivals than it would in a batch, so it stops less often.
- Budget: candidates asked and not yet told (ready, in flight, or waiting for an in-flight twin) count
  with the finished ones, so --trials is never overshot.
- The last round: once no more trials are left than workers, they are asked together (one pool of
  `prescreen` per trial, chosen as a batch's are) and start longest first by MACs as workers free, so the
  search does not end on a long training started last (`longest_first`).
- Determinism: with one worker the order of asks and tells is fixed, so a fixed seed gives the same
  search; it is not the batch driver's search (the sampler sees each result, but the last, before an ask).

It shares every strategy object with `BatchDriver` (it is one, with another `_search`); `driver_class`
chooses between them.
"""

from __future__ import annotations

from typing import Any

from nas.errors import NasError, raise_if_stopped
from nas.latency import HardwareProfile
from nas.records import Attr
from nas.search._candidate import Candidate, Progress
from nas.search._cheap_objectives import resolve_latency_mode
from nas.search._config import SearchConfig
from nas.search._driver import BatchDriver, _rung_point, longest_first
from nas.search._executor import Executor, TaskFailed
from nas.search._freeze import WorkerFreeze


def driver_class(
    config: SearchConfig, profile: HardwareProfile, executor: Executor | None = None
) -> type[BatchDriver]:
    """`SteadyDriver`, unless latency is measured on this machine (it must never overlap training) and
    `executor`'s workers cannot be frozen while it is (`WorkerFreeze.of`): then `BatchDriver`."""
    if resolve_latency_mode(profile, config.latency) != "measured":
        return SteadyDriver
    return SteadyDriver if executor is not None and WorkerFreeze.of(executor) is not None else BatchDriver


class SteadyDriver(BatchDriver):
    """Keeps every worker training; asks a new candidate as soon as one frees."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.freeze: WorkerFreeze | None = None
        if self.cheap.latency_mode != "measured":
            return
        # Latency measured here: the workers are frozen while the driver measures (nas.search._freeze).
        self.freeze = WorkerFreeze.of(self.executor)
        if self.freeze is None:
            raise NasError(
                "latency measured on this machine needs the workers frozen while it measures, and these "
                "workers cannot be (not a local Ray on Linux): use the batch driver (`driver_class`)"
            )
        self.cheap.quiet = lambda: self.freeze.frozen(at_least=len(self._flying))  # only _search measures

    def _search(self, total: int, progress: Progress) -> None:
        self.ledger.progress = progress
        progress.done = self.ledger.finished_count()  # the ledger adds each outcome that counts
        progress.update(progress)
        self._flying: dict[Any, tuple[Candidate, int]] = {}  # handle -> (candidate, index of its stage)
        self._ready: list[Candidate] = []  # screened and chosen, waiting for a free worker
        self._live: dict[str, Candidate] = {}  # arch hash -> the candidate ready or in flight
        self._twins: dict[str, list[Candidate]] = {}  # arch hash in flight -> candidates waiting for it
        settled = 0
        while True:
            raise_if_stopped()
            self._fill(total, progress)
            if not self._flying:
                if progress.done >= total:
                    return
                continue  # a pool that counted nothing (every candidate screened out): ask again
            if not self._ready and progress.done + self._pending() < total:
                self._start_next(total, progress)  # the next one, screened while the workers train
            handle = self.executor.wait_one(list(self._flying))
            raise_if_stopped()
            cand, stage = self._flying.pop(handle)
            if self._ready:  # the freed worker trains at once; telling the result can wait
                self._launch(self._ready.pop(0), 0)
            if self._advance(cand, stage, handle):
                continue
            self._settle(cand)
            settled += 1
            if settled >= self.executor.workers:  # as often as a batch would write its outputs
                settled = 0
                self.on_batch_end()

    def _fill(self, total: int, progress: Progress) -> None:
        """Submit ready candidates, asking new ones, until every worker trains or the budget is spoken for."""
        while len(self._flying) < self.executor.workers:
            if self._ready:
                self._launch(self._ready.pop(0), 0)
            elif progress.done + self._pending() < total:
                self._start_next(total, progress)
            else:
                return

    def _pending(self) -> int:
        """Candidates asked whose outcome is not told yet: they will count toward --trials."""
        return len(self._live) + sum(len(twins) for twins in self._twins.values())

    # --- a free worker -----------------------------------------------------------------------------
    def _start_next(self, total: int, progress: Progress) -> None:
        """Ask a pool (one candidate, or `prescreen` of them), screen it and make the one that trains ready;
        in the last round (no more trials left than workers), the pools of every trial left at once."""
        left = total - progress.done - self._pending()
        keep = left if left <= self.executor.workers else 1
        ledger = self.ledger
        ledger.start_batch(keep if self.oversampled else None)
        known = ledger.known_results()
        fresh: dict[str, Candidate] = {}
        for cand in (self._ask() for _ in range(keep * self.config.prescreen)):
            arch_hash = cand.arch.hash
            same = fresh.get(arch_hash) or self._live.get(arch_hash)
            if arch_hash in known:
                ledger.duplicate(cand, known[arch_hash])
            elif same is not None and self.oversampled:  # one of them is enough to score
                ledger.screened_out(cand, f"the same architecture as trial {same.trial.number}")
            elif same is not None:  # in flight: its result will be this one's
                self._twins.setdefault(arch_hash, []).append(cand)
            else:
                fresh[arch_hash] = cand
        chosen, rejected = self._screen(list(fresh.values()))
        if self.selector is not None:
            chosen = self.selector.select(chosen, ledger.share_left, self.selection)
        chosen, late = self.cheap.confirm(chosen)  # hybrid: measured on the device before it trains
        rejected = [*rejected, *late]
        if self.oversampled:  # the chosen take their share when they are told; the rejected fill the rest
            ledger.start_batch(max(0, ledger.share_left - len(chosen)))
        for cand, reason in rejected:
            ledger.infeasible(cand, reason)
        ledger.start_batch(None)  # trainings told later count, whatever pool they came from
        for cand in chosen:
            self._live[cand.arch.hash] = cand
        self._ready = longest_first([*self._ready, *chosen])

    def _launch(self, cand: Candidate, stage: int) -> None:
        """Submit `cand`'s training to the rung `stage` (past the last rung: to the end)."""
        rungs = self.schedule.rungs
        epochs = rungs[stage] if stage < len(rungs) else None
        self._flying[self._submit_training(cand, epochs)] = (cand, stage)

    # --- a returned training -----------------------------------------------------------------------
    def _advance(self, cand: Candidate, stage: int, handle: Any) -> bool:
        """Take a returned training: True if `cand` trains on (resubmitted to its next stage), False once
        it is told (trained, stopped early or failed)."""
        rungs = self.schedule.rungs
        epochs = rungs[stage] if stage < len(rungs) else None
        try:
            result = self.executor.result(handle)
        except TaskFailed as exc:
            self.ledger.failed(cand, f"{'train' if epochs is None else f'rung {epochs}'}: {exc}")
            return False
        if self.freeze is not None:  # the seconds it spent frozen were measurement, not training
            result = self.freeze.training_seconds(result)
        if epochs is None:
            self._finish_training(cand, result)
            return False
        self._record_rung(cand, epochs, result)
        if self._stops_at_rung(cand, epochs, self._rung_points(epochs)):
            return False
        self._launch(cand, stage + 1)
        return True

    def _rung_points(self, epochs: int) -> list[tuple[float, float]]:
        """(accuracy, latency) at the rung of every candidate validated there so far: told or in flight."""
        validated = [c for c in self._live.values() if str(epochs) in c.attrs.get(Attr.RUNG_ACCURACY, {})]
        return self.ledger.rung_points(epochs) + [_rung_point(c, epochs) for c in validated]

    def _settle(self, cand: Candidate) -> None:
        """`cand` is told: it leaves the flight, and its waiting twins get its result."""
        arch_hash = cand.arch.hash
        del self._live[arch_hash]
        twins = self._twins.pop(arch_hash, [])
        if not twins:
            return
        known = self.ledger.known_results()
        for twin in twins:
            if arch_hash in known:
                self.ledger.duplicate(twin, known[arch_hash])
            else:  # it failed: the same architecture, the same failure
                twin.attrs[Attr.DUPLICATE_OF] = cand.trial.number
                self.ledger.failed(twin, cand.attrs.get(Attr.FAILURE_REASON, "its twin failed"))
