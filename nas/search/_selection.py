"""Pre-screening selectors: which of a batch's feasible candidates train.

`--prescreen K` asks K x the batch's share of candidates; after the constraint filters, a `Selector`
keeps at most the share and the ledger records the others as screened out (never trained). Selectors
are registered by name in `SELECTORS` (one declaration each); `--prescreen-score` names one:

- a training-free score (`naswot`, `synflow`, ...): the candidates, sorted by latency, are split into
  as many latency bands as may train, and the best-scoring one of each band trains;
- `ehvi`: the candidates with the largest expected hypervolume improvement under an accuracy model
  fitted to the trained ones (`_acquisition`), once enough have trained; before that, the sampler's
  first proposal of each latency band.

A selector sees the driver only through `SelectionContext`: scoring runs on the workers, and only for
candidates that can still be trained.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from nas.errors import NasError
from nas.records import Attr
from nas.search._exits import screening_latency
from nas.search._registry import Registry

if TYPE_CHECKING:
    from nas.search._candidate import Candidate


@dataclass(frozen=True)
class SelectionContext:
    """What a selector may use of the search."""

    # score(candidates, score name, attribute): the score of each, computed on the workers, stored in the
    # candidate's `attribute`; returns the candidates that were scored (a failure fails its trial)
    score: Callable[[list[Candidate], str, str], list[Candidate]]
    screen_out: Callable[[Candidate, str], None]  # record a candidate as screened out, with the reason
    trained_points: Callable[[], list[tuple]]  # (objective, latency, params, MACs, NASWOT) of trained ones
    budget_ms: float | None = None
    run_dir: Path | None = None


class Selector(ABC):
    """Chooses which feasible candidates of a batch train."""

    def select(self, feasible: list[Candidate], keep: int, ctx: SelectionContext) -> list[Candidate]:
        """At most `keep` of `feasible` to train; the others are screened out through `ctx`."""
        if keep == 0 and feasible:
            for cand in feasible:
                ctx.screen_out(
                    cand,
                    "this batch's share of --trials was used by duplicates and infeasible candidates",
                )
            return []
        return self.choose(feasible, keep, ctx)

    @abstractmethod
    def choose(self, feasible: list[Candidate], keep: int, ctx: SelectionContext) -> list[Candidate]:
        """As `select`, with `keep` >= 1."""


SELECTORS: Registry[Selector] = Registry("score")


def latency_bands(candidates: Sequence[Candidate], count: int) -> list[list[Candidate]]:
    """`candidates` sorted by latency, split into `count` bands of (nearly) equal size."""
    ordered = sorted(candidates, key=screening_latency)
    return [ordered[i * len(ordered) // count : (i + 1) * len(ordered) // count] for i in range(count)]


class LatencyBandSelector(Selector):
    """The best training-free `score` of each latency band trains."""

    def __init__(self, score: str):
        self.score = score

    def choose(self, feasible, keep, ctx):
        if len(feasible) <= keep:  # everything trains: no score needed
            return feasible
        feasible = ctx.score(feasible, self.score, Attr.PRESCREEN_SCORE)
        if len(feasible) <= keep:
            return feasible
        chosen = []
        for band in latency_bands(feasible, keep):
            best = max(band, key=lambda c: c.attrs[Attr.PRESCREEN_SCORE])
            chosen.append(best)
            for cand in band:
                if cand is not best:
                    ctx.screen_out(
                        cand,
                        f"{self.score} {cand.attrs['prescreen_score']:.4g} < "
                        f"{best.attrs['prescreen_score']:.4g} (trial {best.trial.number}) in its latency band",
                    )
        return chosen


class EhviSelector(Selector):
    """The largest expected hypervolume improvement trains. Every trained candidate has a NASWOT score
    (a feature of the accuracy model), so whatever trains is scored, whether or not it was chosen by it."""

    def choose(self, feasible, keep, ctx):
        from nas.search._acquisition import MIN_TRAINED

        if len(feasible) <= keep:
            return self._naswot(feasible, ctx)
        trained = ctx.trained_points()
        if len(trained) >= MIN_TRAINED:
            feasible = self._naswot(feasible, ctx)
            if len(feasible) <= keep:
                return feasible
            return self._by_ehvi(feasible, keep, trained, ctx)
        chosen = []  # no accuracy model yet: the sampler's first proposal of each latency band
        for band in latency_bands(feasible, keep):
            best = min(band, key=lambda c: c.trial.number)
            chosen.append(best)
            for cand in band:
                if cand is not best:
                    ctx.screen_out(
                        cand,
                        f"too few trained candidates for EHVI; trial {best.trial.number} was proposed "
                        "first in its latency band",
                    )
        return self._naswot(chosen, ctx)

    @staticmethod
    def _naswot(candidates, ctx):
        return ctx.score(candidates, "naswot", Attr.NASWOT)

    def _by_ehvi(self, feasible, keep, trained, ctx):
        """The `keep` with the largest EHVI, below the latency budget or, without one, the slowest seen."""
        from nas.search._acquisition import finite_last_score, screening_features, select_by_ehvi

        if any(t[-1] is None for t in trained):
            raise NasError(
                f"{ctx.run_dir}: a trained trial has no NASWOT score (the run was started by an older nas, "
                "whose EHVI did not use it): resume it with that version or start a new run directory"
            )
        reference = ctx.budget_ms or max([t[1] for t in trained] + [screening_latency(c) for c in feasible])
        pool = [
            (screening_latency(c), c.attrs[Attr.PARAMS], c.attrs[Attr.MACS], c.attrs[Attr.NASWOT])
            for c in feasible
        ]
        pool, trained = finite_last_score(pool, trained)
        picks = dict(select_by_ehvi(pool, trained, keep, reference, features=screening_features))
        for index, gain in picks.items():
            feasible[index].attrs[Attr.PRESCREEN_SCORE] = gain
        lowest = min(picks.values())
        for index, cand in enumerate(feasible):
            if index not in picks:
                ctx.screen_out(
                    cand,
                    f"its expected hypervolume improvement ranked below the {len(picks)} trained "
                    f"(the last chosen: {lowest:.3g} acc x ms)",
                )
        return [feasible[index] for index in picks]


# One declaration per selector. The training-free scores are nas.evaluate.ZERO_COST_SCORES.
for _score in ("naswot", "synflow", "grad_norm", "params", "macs"):
    SELECTORS.register(
        _score, partial(LatencyBandSelector, _score), help=f"the best {_score} of each latency band"
    )
SELECTORS.register(
    "ehvi",
    EhviSelector,
    help="the expected hypervolume improvement from an accuracy model of the trained candidates",
)
