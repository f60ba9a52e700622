"""The ledger: the one place that tells the study how a candidate ended and counts the trial budget.

Every outcome (complete, infeasible, failed, a duplicate of an evaluated architecture, screened out,
stopped early at a rung) goes through `TrialLedger`, which writes the candidate's attributes to its trial,
tells Optuna, and updates the progress. With pre-screening, a batch asks more candidates than it may
count: the ledger records the rest as screened out once the batch's share of --trials is used.

After each outcome that counts toward --trials (not a screened-out candidate, which was never evaluated),
the ledger calls the search's callbacks with Optuna's signature `(study, frozen_trial)`, so experiment
trackers see every evaluated trial. A callback that raises is reported in one warning naming it and is not
called again in this run; the search goes on (the study keeps every trial, so a tracker can catch up).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import TrialState

from nas.errors import first_line
from nas.records import Attr
from nas.search._candidate import Candidate, Progress
from nas.search._results import trained_trials
from nas.search._study import COMPLETE, FAILED, INFEASIBLE, SCREENED_OUT, STOPPED_EARLY, finished_count

log = logging.getLogger(__name__)

# What a duplicate does not inherit: it spent no time of its own.
_NOT_COPIED = (
    Attr.REQUEUED_FROM,
    Attr.TRAIN_SECONDS,
    Attr.EVAL_SECONDS,
    Attr.PREPARE_SECONDS,
    Attr.LATENCY_SECONDS,
    Attr.ROBUST_SECONDS,
    Attr.RUNG_SECONDS,
    Attr.WALL_SECONDS,
    Attr.CHECKPOINT,
)


class TrialLedger:
    def __init__(
        self,
        study: optuna.Study,
        progress: Progress | None = None,
        callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], Any]] = (),
    ):
        self.study = study
        self.progress = progress or Progress(total=0)
        self.callbacks = list(callbacks)
        self._uncounted: int | None = None  # what is left of the batch's share of --trials (None: no limit)

    # --- the trial budget ------------------------------------------------------------------------
    def finished_count(self) -> int:
        """Trials that count toward --trials (see `finished`)."""
        return finished_count(self.study)

    def start_batch(self, share: int | None) -> None:
        """At most `share` of the batch's candidates may count toward --trials (None: all of them)."""
        self._uncounted = share

    @property
    def share_left(self) -> int | None:
        return self._uncounted

    # --- what is known -----------------------------------------------------------------------------
    def known_results(self) -> dict[str, optuna.trial.FrozenTrial]:
        """arch hash -> the first trial that evaluated it (complete, infeasible or stopped early)."""
        known = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            # A screened-out candidate was never evaluated: proposed again, it is a new candidate.
            if (
                t.user_attrs.get(Attr.DUPLICATE_OF) is None
                and Attr.ARCH_HASH in t.user_attrs
                and t.user_attrs.get(Attr.STATUS) != SCREENED_OUT
            ):
                known.setdefault(t.user_attrs[Attr.ARCH_HASH], t)
        return known

    def trained_points(self) -> list[tuple[float, float, int, int, float | None]]:
        """(objective, latency, params, MACs, NASWOT) of every candidate trained to the end so far."""
        return [
            (
                t.values[0],
                t.user_attrs[Attr.LATENCY_MS],
                t.user_attrs[Attr.PARAMS],
                t.user_attrs[Attr.MACS],
                t.user_attrs.get(Attr.NASWOT),
            )
            for t in trained_trials(self.study)
        ]

    def rung_points(self, epochs: int) -> list[tuple[float, float]]:
        """(accuracy, latency) of every earlier candidate validated at the `epochs` rung."""
        return [
            (t.user_attrs[Attr.RUNG_ACCURACY][str(epochs)], t.user_attrs[Attr.LATENCY_MS])
            for t in self.study.get_trials(deepcopy=False)
            if str(epochs) in t.user_attrs.get(Attr.RUNG_ACCURACY, {})
            and t.user_attrs.get(Attr.DUPLICATE_OF) is None
        ]

    # --- outcomes ----------------------------------------------------------------------------------
    def complete(self, cand: Candidate, objective: float) -> None:
        self._tell(cand, TrialState.COMPLETE, COMPLETE, values=[objective, cand.attrs[Attr.LATENCY_MS]])

    def infeasible(self, cand: Candidate, reason: str) -> None:
        cand.attrs[Attr.INFEASIBLE_REASON] = reason
        self._tell(cand, TrialState.PRUNED, INFEASIBLE)

    def failed(self, cand: Candidate, reason: str) -> None:
        cand.attrs[Attr.FAILURE_REASON] = reason
        self._tell(cand, TrialState.FAIL, FAILED)

    def screened_out(self, cand: Candidate, reason: str) -> None:
        """Never evaluated (pre-screening chose others): recorded, not counted toward --trials."""
        cand.attrs[Attr.INFEASIBLE_REASON] = f"screened out: {reason}"
        self._tell(cand, TrialState.PRUNED, SCREENED_OUT)

    def stopped_early(self, cand: Candidate, reason: str) -> None:
        cand.attrs[Attr.INFEASIBLE_REASON] = reason
        self._tell(cand, TrialState.PRUNED, STOPPED_EARLY)

    def duplicate(self, cand: Candidate, original: optuna.trial.FrozenTrial) -> None:
        """The sampler proposed an architecture already evaluated: reuse its result (same seed, same answer)."""
        copied = {k: v for k, v in original.user_attrs.items() if k not in _NOT_COPIED}
        cand.attrs.update(copied)
        cand.attrs[Attr.DUPLICATE_OF] = original.number
        status = copied.get(Attr.STATUS, COMPLETE)
        state = TrialState.COMPLETE if original.state == TrialState.COMPLETE else TrialState.PRUNED
        self._tell(cand, state, status, values=original.values if state == TrialState.COMPLETE else None)

    def _tell(self, cand: Candidate, state: TrialState, status: str, values=None) -> None:
        if self._uncounted is not None and status != SCREENED_OUT:
            if self._uncounted <= 0:  # beyond this batch's share of --trials: recorded, not counted
                reason = (
                    cand.attrs.get(Attr.FAILURE_REASON)
                    or cand.attrs.get(Attr.INFEASIBLE_REASON)
                    or (
                        f"a duplicate of trial {cand.attrs['duplicate_of']}"
                        if Attr.DUPLICATE_OF in cand.attrs
                        else status
                    )
                )
                cand.attrs[Attr.INFEASIBLE_REASON] = (
                    f"screened out: this batch's share of --trials was used ({reason})"
                )
                state, status, values = TrialState.PRUNED, SCREENED_OUT, None
            else:
                self._uncounted -= 1
        cand.attrs[Attr.STATUS] = status
        cand.attrs[Attr.WALL_SECONDS] = round(time.perf_counter() - cand.started, 3)
        for key, value in cand.attrs.items():
            cand.trial.set_user_attr(key, value)
        frozen = self.study.tell(cand.trial, values=values, state=state)
        self.progress.done += status != SCREENED_OUT
        if status == COMPLETE:
            self.progress.feasible += 1
        self.progress.update(self.progress)
        if status != SCREENED_OUT:
            self._notify(frozen)

    def _notify(self, frozen: optuna.trial.FrozenTrial) -> None:
        for callback in list(self.callbacks):
            try:
                callback(self.study, frozen)
            except Exception as exc:  # Ctrl-C and SIGTERM pass: they stop the search as anywhere else
                self.callbacks.remove(callback)
                log.warning(
                    f"callback {_callback_name(callback)} failed on trial {frozen.number} "
                    f"({type(exc).__name__}: {first_line(exc)}); not called again in this run, the search goes on"
                )


def _callback_name(callback: Callable) -> str:
    """A function's or a callable object's class's qualified name, as a user would find it in their code."""
    named = callback if hasattr(callback, "__qualname__") else type(callback)
    return f"{getattr(named, '__module__', '?')}.{named.__qualname__}"
