"""The driver's composed strategies without Ray: constraints, selectors, the ledger, the fidelity schedule,
and the sampler registry."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import NasError
from nas.search import (
    SAMPLERS,
    SELECTORS,
    Candidate,
    EhviSelector,
    FidelitySchedule,
    LatencyBandSelector,
    LatencyBudget,
    MaxMacs,
    MaxParams,
    Progress,
    SearchConfig,
    SelectionContext,
    Selector,
    TrialLedger,
    constraints_from,
)
from nas.search._constraints import first_violation
from nas.search._samplers import build_sampler, sampler_name


def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def candidates(s, latencies, **attrs):
    out = []
    for latency in latencies:
        cand = Candidate(s.ask(), arch=None)
        cand.attrs.update(latency_ms=latency, params=1000, macs=1000, prepare_seconds=0.0, **attrs)
        out.append(cand)
    return out


class Context:
    """A SelectionContext whose scores are given, recording what was scored and screened out."""

    def __init__(self, scores, trained=()):
        self.scores, self.scored, self.screened = scores, [], {}
        self.ctx = SelectionContext(
            score=self.score, screen_out=self.screen_out, trained_points=lambda: list(trained), budget_ms=None
        )

    def score(self, cands, name, attr):
        self.scored.append((name, [c.trial.number for c in cands]))
        for c in cands:
            c.attrs[attr] = self.scores[c.trial.number]
        return cands

    def screen_out(self, cand, reason):
        self.screened[cand.trial.number] = reason


def test_constraints_come_from_the_config_and_name_what_they_reject():
    config = SearchConfig(max_params=10, max_macs=20, latency_budget_ms=1.5)
    assert constraints_from(config) == (MaxParams(10), MaxMacs(20), LatencyBudget(1.5))
    assert constraints_from(SearchConfig(latency_budget_ms=None)) == ()
    attrs = {"params": 11, "macs": 30, "latency_ms": 2.0}
    assert first_violation(constraints_from(config), "costs", attrs) == "params 11 > max 10"
    assert first_violation(constraints_from(config), "latency", attrs) == "latency 2.000 ms > budget 1.5 ms"
    assert first_violation(constraints_from(config), "latency", {"latency_ms": 1.0}) is None


def test_every_selector_is_a_registered_selector():
    for name in SELECTORS.names():
        assert isinstance(SELECTORS.create(name), Selector)
    assert isinstance(SELECTORS.create("ehvi"), EhviSelector)
    assert SELECTORS.create("synflow").score == "synflow"
    with pytest.raises(NasError, match="prescreen_score: unknown score 'nope'"):
        SearchConfig(prescreen_score="nope")


def test_latency_band_selector_keeps_the_best_score_of_each_band():
    s = study()
    pool = candidates(s, [1.0, 2.0, 3.0, 4.0])
    context = Context({0: 0.1, 1: 0.9, 2: 0.8, 3: 0.2})
    chosen = LatencyBandSelector("naswot").select(pool, 2, context.ctx)
    assert [c.trial.number for c in chosen] == [1, 2]
    assert set(context.screened) == {0, 3} and "naswot 0.1 < 0.9 (trial 1)" in context.screened[0]


def test_a_selector_that_may_keep_everything_scores_nothing_and_keep_zero_screens_all_out():
    s = study()
    pool = candidates(s, [1.0, 2.0])
    context = Context({})
    assert LatencyBandSelector("naswot").select(pool, 2, context.ctx) == pool and not context.scored
    assert LatencyBandSelector("naswot").select(pool, 0, context.ctx) == []
    assert set(context.screened) == {0, 1} and "share of --trials" in context.screened[0]


def test_ehvi_selector_spreads_over_bands_until_a_model_can_be_fitted_then_ranks_by_ehvi():
    s = study()
    pool = candidates(s, [1.0, 1.1, 3.0, 3.1])
    context = Context({n: 1.0 for n in range(4)})
    chosen = EhviSelector().select(pool, 2, context.ctx)
    assert [c.trial.number for c in chosen] == [0, 2]  # the first proposal of each band
    assert context.scored == [("naswot", [0, 2])]  # NASWOT only for what trains
    trained = [(0.5, 1.0, 1000, 1000, 1.0), (0.6, 2.0, 1000, 1000, 1.0)] * 2
    pool = candidates(s, [0.5, 1.5, 2.5, 5.0])
    context = Context({n: 1.0 for n in range(4, 8)}, trained=trained)
    chosen = EhviSelector().select(pool, 2, context.ctx)
    assert len(chosen) == 2 and all(c.attrs["prescreen_score"] > 0 for c in chosen)
    assert len(context.screened) == 2 and all("hypervolume" in r for r in context.screened.values())


def test_ledger_tells_optuna_each_outcome_and_counts_the_progress():
    s = study()
    ledger = TrialLedger(s, Progress(total=4))
    done, infeasible, failed, screened = candidates(s, [1.0, 2.0, 3.0, 4.0])
    ledger.complete(done, 0.7)
    ledger.infeasible(infeasible, "too slow")
    ledger.failed(failed, "boom")
    ledger.screened_out(screened, "not chosen")
    trials = s.get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.PRUNED,
    ]
    assert [t.user_attrs["status"] for t in trials] == ["complete", "infeasible", "failed", "screened_out"]
    assert (
        trials[0].values == [0.7, 1.0]
        and trials[3].user_attrs["infeasible_reason"] == "screened out: not chosen"
    )
    assert ledger.progress.done == 3 and ledger.progress.feasible == 1 and ledger.finished_count() == 3
    assert ledger.trained_points() == [(0.7, 1.0, 1000, 1000, None)]


def test_ledger_reuses_a_known_result_and_never_overshoots_the_batch_share():
    s = study()
    ledger = TrialLedger(s)
    (first,) = candidates(s, [1.0], arch_hash="abc")
    ledger.complete(first, 0.5)
    known = ledger.known_results()
    assert set(known) == {"abc"}
    ledger.start_batch(1)
    again, over = candidates(s, [9.0, 9.0])
    ledger.duplicate(again, known["abc"])
    ledger.infeasible(over, "too slow")  # beyond the share: recorded, not counted
    trials = s.get_trials()
    assert trials[1].values == [0.5, 1.0] and trials[1].user_attrs["duplicate_of"] == 0
    assert trials[2].user_attrs["status"] == "screened_out"
    assert "share of --trials was used (too slow)" in trials[2].user_attrs["infeasible_reason"]
    assert ledger.finished_count() == 2


def test_fidelity_schedule_stops_only_the_dominated():
    schedule = FidelitySchedule.from_config(
        SearchConfig(epochs=4, rungs=(1, 2), stop_margin=0.0), val_size=100
    )
    assert schedule.rungs == (1, 2)
    points = [(0.9, 1.0), (0.8, 1.0), (0.3, 2.0)]
    reason = schedule.stop_reason(1, 0.3, 2.0, points)
    assert reason.startswith("stopped at the 1-epoch rung") and "margin" not in reason
    assert schedule.stop_reason(1, 0.9, 1.0, points) is None


def test_samplers_are_registered_and_an_instance_is_used_as_given():
    assert set(SAMPLERS.names()) == {"nsga2", "tpe", "random"}
    assert isinstance(build_sampler("nsga2", 4, 0), optuna.samplers.NSGAIISampler)
    mine = optuna.samplers.TPESampler(seed=1)
    assert build_sampler(mine, 4, 0) is mine and sampler_name(mine) == "TPESampler"
    config = SearchConfig(sampler=mine)
    assert config.to_dict()["sampler"] == "TPESampler" and config.identity()["sampler"] == "TPESampler"
    with pytest.raises(NasError, match="unknown sampler 'grid'"):
        SearchConfig(sampler="grid")
