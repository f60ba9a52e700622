"""Pre-screening, the part of the driver that chooses which feasible candidates of a batch to train.

`--prescreen K` asks K x the batch's share of candidates; after the cheap filters (size, latency) each
latency band keeps its best training-free score, or (score `ehvi`) the candidates with the largest
expected hypervolume improvement under an accuracy model are kept. Scores are computed only for
candidates that can still be trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.trial import TrialState

from nas.errors import NasError
from nas.search._acquisition import MIN_TRAINED, finite_last_score, screening_features, select_by_ehvi
from nas.search._config import EHVI
from nas.search._results import trained_trials
from nas.search._study import SCREENED_OUT
from nas.search._tasks import score_candidate

if TYPE_CHECKING:
    from nas.search._driver import Candidate, Progress


class PreScreening:
    """Mixed into `BatchDriver`, whose state (study, executor, settings) and telling it uses."""

    def _select(self, feasible: list[Candidate], keep: int, progress: Progress) -> list[Candidate]:
        """Pre-screening: split the feasible candidates into `keep` latency bands and train only the
        best-scoring one of each band, or (score `ehvi`, once an accuracy model can be fitted) the `keep` with
        the largest expected hypervolume improvement; the others are recorded as screened out (never trained).
        A choice that needs no score scores only what it keeps (EHVI's model needs every trained one's)."""
        ehvi = self.prescreen_score == EHVI
        if len(feasible) <= keep:
            return self._score(feasible, progress) if ehvi else feasible
        if keep == 0:
            for cand in feasible:
                cand.attrs["infeasible_reason"] = (
                    "screened out: this batch's share of --trials was used by duplicates "
                    "and infeasible candidates"
                )
                self._tell(cand, TrialState.PRUNED, SCREENED_OUT, progress)
            return []
        trained = self._trained_points() if ehvi else []
        if not ehvi or len(trained) >= MIN_TRAINED:
            feasible = self._score(feasible, progress)
            if len(feasible) <= keep:
                return feasible
            if ehvi:
                return self._select_by_ehvi(feasible, keep, trained, progress)
        by_latency = sorted(feasible, key=lambda c: c.attrs["latency_ms"])
        bands = [
            by_latency[i * len(by_latency) // keep : (i + 1) * len(by_latency) // keep] for i in range(keep)
        ]
        chosen = []
        for band in bands:
            if ehvi:  # no accuracy model yet: the sampler's first proposal of each band
                best = min(band, key=lambda c: c.trial.number)
            else:
                best = max(band, key=lambda c: c.attrs["prescreen_score"])
            chosen.append(best)
            for cand in band:
                if cand is not best:
                    cand.attrs["infeasible_reason"] = "screened out: " + self._band_loss(cand, best)
                    self._tell(cand, TrialState.PRUNED, SCREENED_OUT, progress)
        return self._score(chosen, progress) if ehvi else chosen  # NASWOT joins the model's data once trained

    def _score(self, candidates: list[Candidate], progress: Progress) -> list[Candidate]:
        """The training-free score (NASWOT for EHVI's accuracy model), computed on the workers only for the
        candidates that can still be trained: the cheap filters (size, latency) run first. Its seconds add
        to the candidate's prepare_seconds. Returns the scored candidates in their order; a failure fails
        its trial."""
        # EHVI's own score is its expected gain; NASWOT is one of its accuracy model's features
        name, attr = (
            ("naswot", "naswot")
            if self.prescreen_score == EHVI
            else (self.prescreen_score, "prescreen_score")
        )
        handles = {
            self.executor.submit(
                score_candidate, c.arch, self.num_classes, self.seed, self.dataset_ref, name
            ): c
            for c in candidates
        }
        scored = set()
        for cand, out in self._as_completed(handles, "score", progress):
            cand.attrs[attr] = out["score"]
            cand.attrs["prepare_seconds"] = round(cand.attrs["prepare_seconds"] + out["seconds"], 3)
            scored.add(id(cand))
        return [c for c in candidates if id(c) in scored]

    def _band_loss(self, cand: Candidate, best: Candidate) -> str:
        """Why `cand` lost its latency band to `best`."""
        if self.prescreen_score == EHVI:
            return f"too few trained candidates for EHVI; trial {best.trial.number} was proposed first in its latency band"
        return (
            f"{self.prescreen_score} {cand.attrs['prescreen_score']:.4g} < {best.attrs['prescreen_score']:.4g} "
            f"(trial {best.trial.number}) in its latency band"
        )

    def _trained_points(self) -> list[tuple[float, float, int, int, float | None]]:
        """(objective, latency, params, MACs, NASWOT) of every candidate trained to the end so far."""
        return [
            (
                t.values[0],
                t.user_attrs["latency_ms"],
                t.user_attrs["params"],
                t.user_attrs["macs"],
                t.user_attrs.get("naswot"),
            )
            for t in trained_trials(self.study)
        ]

    def _select_by_ehvi(
        self, feasible: list[Candidate], keep: int, trained: list, progress: Progress
    ) -> list[Candidate]:
        """Train the `keep` candidates with the largest expected hypervolume improvement (`select_by_ehvi`),
        below the latency budget or, without one, the slowest latency seen."""
        if any(t[-1] is None for t in trained):
            raise NasError(
                f"{self.run_dir}: a trained trial has no NASWOT score (the run was started by an older nas, "
                "whose EHVI did not use it): resume it with that version or start a new run directory"
            )
        reference = self.budget or max([t[1] for t in trained] + [c.attrs["latency_ms"] for c in feasible])
        pool = [
            (c.attrs["latency_ms"], c.attrs["params"], c.attrs["macs"], c.attrs["naswot"]) for c in feasible
        ]
        pool, trained = finite_last_score(pool, trained)
        picks = dict(
            select_by_ehvi(pool, trained, keep, reference, features=screening_features)
        )  # index -> EHVI
        for index, gain in picks.items():
            feasible[index].attrs["prescreen_score"] = gain
        lowest = min(picks.values())
        for index, cand in enumerate(feasible):
            if index not in picks:
                cand.attrs["infeasible_reason"] = (
                    f"screened out: its expected hypervolume improvement ranked below "
                    f"the {len(picks)} trained (the last chosen: {lowest:.3g} acc x ms)"
                )
                self._tell(cand, TrialState.PRUNED, SCREENED_OUT, progress)
        return [feasible[index] for index in picks]
