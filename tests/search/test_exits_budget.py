"""Latency budgets and pre-screening of candidates with early exits: before training a candidate is judged on
the latency up to its first exit (a lower bound of its expected latency), after training on its expected
latency; pre-screening ranks it by an estimate of the expected latency."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from nas.evaluate import Trainer, TrainingResult
from nas.exits import expected_latency
from nas.latency import ArchitectureFeaturizer, load_profile
from nas.search import search
from nas.search._candidate import Candidate
from nas.search._constraints import DeviceBudget, LatencyBudget
from nas.search._exits import (
    exit_segment_attrs,
    expected_latency_attrs,
    screening_attrs,
    screening_latency,
)
from nas.space import load_space
from tests._serial_executor import SerialExecutor

SPACE = """\
name: exits-budget
input: {resolution: 16}
stem: {channels: 8, kernel: 3, stride: 1, activation: relu}
block_choices: {primitive: mbconv, kernel: 3, expansion: 2, se: false, activation: relu}
stages:
  - {name: a, stride: 2, depth: 1, width: 8}
  - {name: b, stride: 2, depth: 1, width: 16}
  - {name: c, stride: 1, depth: 2, width: 32}
head: {width: 256, activation: relu}
exits: {a: [false, true], b: true}
"""
# The known exit rates the fake trainer reports: with exits at a and b most images leave at a; with an exit
# at b only, every image goes to the end.
SHARES = {("a", "b"): [0.9, 0.05, 0.05], ("b",): [0.0, 1.0]}


class KnownExitRates(Trainer):
    """No training: a fixed accuracy and the exit rates of SHARES."""

    def train(self, arch, dataset, seed):
        shares = SHARES[tuple(arch.exits)]
        calibration = {
            "thresholds": [0.6] * (len(shares) - 1),
            "shares": shares,
            "exit_accuracy": [0.5] * len(shares),
            "cascade_accuracy": 0.55,
            "final_accuracy": 0.56,
            "drop_points": 1.0,
            "max_drop_points": 2.0,
            "n": 100,
        }
        return TrainingResult(0.55, 1.0, 0.0, 0.0, 1, b"weights", exits=calibration)


def _architecture(space, with_a: bool):
    class Draw:
        def suggest_categorical(self, name, options):
            return with_a if name == "exits.a" else options[0]

    return space.sample(Draw())


@pytest.mark.parametrize(
    "latency, fleet",
    [
        ("predicted", False),  # the steady driver, --latency-budget-ms on the search's own latency
        ("measured", True),  # the batch driver, a budget checked on another profile's prediction (as auto's)
    ],
)
def test_a_budget_trains_what_its_expected_latency_fits_and_rejects_what_it_does_not(
    tmp_path, tiny_dataset_file, x86_model_profile, latency, fleet
):
    """Judged on predictions alone (a fleet budget is predicted in a measured search too): the outcome does
    not depend on this machine's speed."""
    space_file = tmp_path / "space.yaml"
    space_file.write_text(SPACE)
    space, profile = load_space(space_file), load_profile(x86_model_profile)
    both, late = _architecture(space, True), _architecture(space, False)
    segments = {
        arch.exits: exit_segment_attrs(arch, 2, profile, "predicted", 0)["exit_segment_ms"]
        for arch in (both, late)
    }
    whole = profile.predict(ArchitectureFeaturizer(2).features(both)).latency_ms  # the same network
    fits = expected_latency(SHARES[both.exits], segments[both.exits]).expected_ms
    too_slow = expected_latency(SHARES[late.exits], segments[late.exits]).expected_ms
    budget = (max(fits, segments[late.exits][0]) + min(whole, too_slow)) / 2
    assert segments[both.exits][0] < budget < whole and fits < budget < too_slow  # what the test needs
    device = tmp_path / "x86-model-copy.yaml"  # the same model under another name: a fleet device
    device.write_text(x86_model_profile.read_text().replace("name: x86-cpu", "name: x86-copy", 1))
    budgets = (
        {"budgets": {str(device): budget}, "latency_budget_ms": None}
        if fleet
        else {"latency_budget_ms": budget}
    )
    result = search(
        executor=SerialExecutor(),
        trainer=KnownExitRates(),
        space=str(space_file),
        dataset=str(tiny_dataset_file),
        trials=4,
        population=2,
        latency=latency,
        profile=str(x86_model_profile),
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=1,
        **budgets,
    )
    on = "@x86-copy" if fleet else ""
    rows = list(csv.DictReader((result.run_dir / "trials.csv").open()))
    by_exits = {}
    for row in rows:
        if not row["duplicate_of"]:
            by_exits[row["summary"].rpartition("exits@")[2]] = row
    assert set(by_exits) == {"a,b", "b"}, rows
    trained = by_exits["a,b"]  # over the budget as a whole network, within it as expected
    assert trained["status"] == "complete"
    assert (
        float(trained[f"latency_ms{on}"]) == pytest.approx(fits)
        and float(trained[f"latency_ms{on}"]) < budget
    )
    rejected = by_exits["b"]  # within the budget up to its first exit, over it as expected
    assert rejected["status"] == "infeasible" and rejected["accuracy"] == ""
    assert rejected["failure_reason"].startswith("expected latency (whole network ")
    assert f"{' on x86-copy' if fleet else ''} {too_slow:.3f} ms" in rejected["failure_reason"]
    assert rejected["failure_reason"].endswith(f" > budget {budget:g} ms")
    assert float(rejected[f"latency_ms{on}"]) == pytest.approx(too_slow)
    assert [entry["trial"] for entry in result.pareto] == [int(trained["number"])]


def test_before_training_a_budget_sees_the_latency_up_to_the_first_exit():
    budget = LatencyBudget(1.0)
    plain = {"latency_ms": 1.5}
    with_exits = {"latency_ms": 1.5, "exit_segment_ms": [0.8, 0.4, 0.3]}
    over_at_first = {"latency_ms": 1.5, "exit_segment_ms": [1.2, 0.3]}
    assert budget.violation(plain) == "latency 1.500 ms > budget 1 ms"
    assert budget.violation(with_exits) is None  # every image might leave at the first exit
    assert budget.violation(over_at_first) == (
        "latency up to the first exit (whole network 1.500 ms) 1.200 ms > budget 1 ms"
    )


def test_after_training_the_budgets_see_the_expected_latency_on_every_device(x86_model_profile):
    profile = load_profile(x86_model_profile)
    attrs = {
        "latency_ms": 1.5,
        "latency_low_ms": 1.4,
        "latency_high_ms": 1.6,
        "latency_straddles_budget": False,
        "exit_segment_ms": [0.5, 0.5, 0.6],
        "exit_segment_interval_ms": [[0.4, 0.6], [0.4, 0.6], [0.5, 0.7]],
        f"latency_ms@{profile.name}": 3.0,
        f"exit_segment_ms@{profile.name}": [1.0, 1.0, 1.2],
    }
    exits = {"shares": [0.5, 0.25, 0.25], "thresholds": [0.7, 0.8]}
    attrs.update(expected_latency_attrs(attrs, exits, budget_ms=1.0))
    assert attrs["latency_ms"] == pytest.approx(0.5 * 0.5 + 0.25 * 1.0 + 0.25 * 1.6)  # 0.9
    assert attrs["latency_low_ms"] == pytest.approx(0.5 * 0.4 + 0.25 * 0.8 + 0.25 * 1.3)  # 0.725
    assert attrs["latency_high_ms"] == pytest.approx(0.5 * 0.6 + 0.25 * 1.2 + 0.25 * 1.9)  # 1.075
    assert attrs["latency_straddles_budget"] is True  # the expected interval holds the budget
    assert (
        attrs["latency_whole_ms"] == 1.5
        and attrs["exits"]["expected_latency"]["expected_ms"] == attrs["latency_ms"]
    )
    assert attrs[f"latency_ms@{profile.name}"] == pytest.approx(1.8)
    assert attrs[f"latency_whole_ms@{profile.name}"] == 3.0
    assert LatencyBudget(1.0).violation(attrs) is None
    assert DeviceBudget(profile, 1.5).violation(attrs) == (
        f"expected latency (whole network 3.000 ms) on {profile.name} 1.800 ms (predicted) > budget 1.5 ms"
    )


def test_pre_screening_ranks_a_candidate_with_exits_by_the_runs_own_exit_savings():
    def trial(expected, whole, **more):
        return SimpleNamespace(
            user_attrs={"exits": {}, "latency_ms": expected, "latency_whole_ms": whole, **more}
        )

    before = {"latency_ms": 2.0, "exit_segment_ms": [0.5, 1.6]}
    assert screening_attrs(before, []) == {"exit_screening_ms": 2.0}  # nothing known: the whole network
    trials = [
        trial(0.6, 1.0),
        trial(0.4, 1.0),
        trial(0.1, 1.0, duplicate_of=0),
    ]  # a duplicate repeats its original
    assert screening_attrs(before, trials) == {"exit_screening_ms": pytest.approx(2.0 * 0.5)}
    assert screening_attrs({"latency_ms": 2.0}, trials) == {}  # no exits
    cand = Candidate(trial=None, arch=None)
    cand.attrs.update({"latency_ms": 2.0, "exit_screening_ms": 1.0})
    assert screening_latency(cand) == 1.0
    cand.attrs.pop("exit_screening_ms")
    assert screening_latency(cand) == 2.0
