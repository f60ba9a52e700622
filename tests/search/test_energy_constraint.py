"""Energy per inference as a reported cost and a constraint (--max-energy-mj), where the profile has it."""

from __future__ import annotations

import csv

import pytest

from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.search import SearchConfig, search
from nas.search._constraints import EnergyCost, check_energy, constraints_from
from tests._serial_executor import SerialExecutor

BOUND_MJ = 7.8  # about the median predicted energy of the tiny space's networks on jetson-tx2


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_the_energy_bound_must_be_a_positive_number(value):
    with pytest.raises(NasError, match="max_energy_mj: must be a positive finite number of millijoules"):
        SearchConfig(max_energy_mj=value)


def test_a_profile_with_energy_records_it_and_one_without_refuses_a_bound():
    reported = [
        c
        for c in constraints_from(SearchConfig(profile="jetson-tx2", latency_budget_ms=None))
        if isinstance(c, EnergyCost)
    ]
    assert len(reported) == 1 and reported[0].limit_mj is None  # recorded, bounding nothing
    assert reported[0].violation({"energy_mj": 1e9}) is None
    assert not [
        c for c in constraints_from(SearchConfig(latency_budget_ms=None)) if isinstance(c, EnergyCost)
    ]
    with pytest.raises(NasError, match="max_energy_mj: profile 'x86-cpu' has no energy model"):
        constraints_from(SearchConfig(max_energy_mj=5, latency_budget_ms=None))
    assert SearchConfig(max_energy_mj=5).identity()["max_energy_mj"] == 5


def test_a_space_the_energy_data_does_not_cover_is_refused_unless_extrapolating(tiny_space_file):
    from nas.latency import load_profile
    from nas.space import load_space

    profile, space = load_profile("jetson-tx2"), load_space(str(tiny_space_file))  # dense convs, Hardswish
    with pytest.raises(NasError, match=r"the profile jetson-tx2 \(energy model\) has never measured"):
        check_energy(space, profile, SearchConfig(profile="jetson-tx2"))
    check_energy(space, profile, SearchConfig(profile="jetson-tx2", allow_extrapolation=True))
    check_energy(load_space("fbnet"), profile, SearchConfig(profile="jetson-tx2"))  # covered


def test_an_energy_bound_never_trains_a_candidate_over_it(tmp_path, tiny_space_file, tiny_dataset_file):
    result = search(
        executor=SerialExecutor(),
        trainer=ProxyTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32)),
        space=str(tiny_space_file),
        dataset=str(tiny_dataset_file),
        profile="jetson-tx2",
        latency="predicted",
        allow_extrapolation=True,  # the tiny space's dense convolutions and Hardswish: latency x power
        latency_budget_ms=None,
        max_energy_mj=BOUND_MJ,
        trials=8,
        population=4,
        epochs=1,
        train_subset=64,
        prescreen=1,
        prescreen_score="naswot",
        out=str(tmp_path / "run"),
    )
    with open(result.run_dir / "trials.csv") as handle:
        table = list(csv.DictReader(handle))
    trained = [r for r in table if r["status"] == "complete"]
    rejected = [r for r in table if r["status"] == "infeasible"]
    assert trained and rejected, (
        "the bound must both pass and reject candidates, else the test proves nothing"
    )
    for row in table:
        low, energy, high = (float(row[k]) for k in ("energy_low_mj", "energy_mj", "energy_high_mj"))
        assert low < energy < high and 0 <= float(row["energy_extrapolated"]) < 1
    assert all(float(r["energy_mj"]) <= BOUND_MJ for r in trained)
    assert all(float(r["energy_mj"]) > BOUND_MJ and "energy" in r["failure_reason"] for r in rejected)
    assert all(p["energy_mj"] <= BOUND_MJ and len(p["energy_interval_mj"]) == 2 for p in result.pareto)
