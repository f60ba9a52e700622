"""The search loop on a real local Ray: outcomes of trials, constraints, failures and crashed workers."""

from __future__ import annotations

import csv
import importlib
import json
import os
import sys
from pathlib import Path

import pytest
from ray import cloudpickle

from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.search import search

# Trainers defined here travel to the Ray workers by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAST = ProxyTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32))


def run(tmp_path, space, data, executor, **settings):
    # Explicit, so a later change of the package's defaults does not change what these tests test.
    defaults = dict(
        space=str(space),
        dataset=str(data),
        trials=6,
        population=3,
        epochs=1,
        train_subset=64,
        out=str(tmp_path / "run"),
        sampler="nsga2",
        prescreen=1,
        prescreen_score="naswot",
        latency_budget_ms=None,
    )
    return search(executor=executor, trainer=settings.pop("trainer", FAST), **{**defaults, **settings})


def rows(run_dir: Path):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_search_writes_study_trials_and_pareto(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor):
    result = run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor)
    assert result.finished == 6 and result.complete == 6
    table = rows(result.run_dir)
    assert len(table) == 6
    for row in table:
        assert row["status"] == "complete"
        assert 0 <= float(row["accuracy"]) <= 1
        assert float(row["latency_ms"]) > 0 and float(row["latency_spread"]) >= 0
        assert int(row["params"]) > 0 and int(row["macs"]) > 0
        assert float(row["wall_seconds"]) > 0
    pareto = json.loads((result.run_dir / "pareto.json").read_text())
    assert pareto["preprocessing"]["classes"] == ["red", "green"]
    front = [(p["accuracy"], p["latency_ms"]) for p in pareto["pareto"]]
    assert front and front == sorted(front, key=lambda p: p[1])
    others = [(float(r["accuracy"]), float(r["latency_ms"])) for r in table if not r["duplicate_of"]]
    for acc, lat in front:  # nothing trained dominates a front member
        assert not any(a >= acc and t <= lat and (a > acc or t < lat) for a, t in others)
    for p in pareto["pareto"]:
        assert (result.run_dir / p["checkpoint"]).is_file()
    assert (result.run_dir / "study.db").is_file()


def test_latency_budget_rejects_before_training(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor):
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trainer=NeverTrain(),
        latency_budget_ms=1e-6,
    )
    assert result.infeasible == 6 and result.complete == 0
    for row in rows(result.run_dir):
        assert row["state"] == "PRUNED" and row["status"] == "infeasible"
        assert "budget" in row["failure_reason"] and float(row["latency_ms"]) > 1e-6
    assert not list((result.run_dir / "checkpoints").iterdir())


@pytest.mark.parametrize("score", ["naswot", "ehvi"])
def test_prescreening_scores_no_candidate_the_cheap_filters_reject(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, score
):
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trainer=NeverTrain(),
        trials=3,
        population=3,
        prescreen=2,
        prescreen_score=score,
        latency_budget_ms=1e-6,
    )
    table = rows(result.run_dir)
    assert result.infeasible == 3 and result.complete == 0
    assert any(r["latency_ms"] for r in table)
    assert not any(r["prescreen_score"] or r["naswot"] for r in table)


@pytest.mark.parametrize("latency, costs_counted", [("predicted", False), ("measured", True)])
def test_a_predicted_latency_over_budget_spares_counting_the_costs(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, latency, costs_counted, x86_model_profile
):
    # A predicted latency costs less than counting params and MACs, so it comes first; to measure, the
    # workers count and export each candidate in one task, before the measurement.
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trainer=NeverTrain(),
        trials=3,
        latency=latency,
        latency_budget_ms=1e-6,
        profile=str(x86_model_profile),
    )
    table = rows(result.run_dir)
    assert result.infeasible == 3 and all("budget" in r["failure_reason"] and r["latency_ms"] for r in table)
    assert [bool(r["params"] and r["macs"]) for r in table] == [costs_counted] * 3


def test_predicted_latency_is_the_exported_graphs_prediction_without_exporting(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, x86_model_profile
):
    from nas.builder import build_model
    from nas.latency import load_profile
    from nas.onnx_io import export_onnx
    from nas.search._study import load_run_study
    from nas.space import Architecture

    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=3,
        latency="predicted",
        profile=str(x86_model_profile),
    )
    model = load_profile(x86_model_profile).latency_model
    assert [r["latency_source"] for r in rows(result.run_dir)] == ["predicted"] * 3
    for trial in load_run_study(result.run_dir).trials:
        arch = Architecture.from_dict(trial.user_attrs["architecture"])
        exported = export_onnx(build_model(arch, 2, seed=0), arch.resolution, fast=True)
        assert trial.user_attrs["latency_ms"] == pytest.approx(model.predict(exported), rel=1e-9)


def test_size_constraint_rejects_without_measuring(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    result = run(
        tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trainer=NeverTrain(), max_params=10
    )
    assert result.infeasible == 6
    for row in rows(result.run_dir):
        assert row["failure_reason"].startswith("params") and row["latency_ms"] == ""


class NeverTrain(ProxyTrainer):
    def train(self, arch, dataset, seed):
        raise AssertionError("an infeasible candidate was trained")


class FailsOnDeepFirstStage(ProxyTrainer):
    def train(self, arch, dataset, seed):
        if arch.stages[0].depth == 2:
            raise ValueError("cannot train this one")
        return super().train(arch, dataset, seed)


def test_failing_candidate_is_recorded_and_search_goes_on(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=10,
        trainer=FailsOnDeepFirstStage(FAST.recipe),
    )
    table = rows(result.run_dir)
    failed = [r for r in table if r["status"] == "failed"]
    assert failed, "the space should have produced at least one deep first stage in 10 trials"
    for row in failed:
        assert row["state"] == "FAIL" and row["param:a.depth"] == "2"
        assert row["failure_reason"] == "train: ValueError: cannot train this one"
    assert result.finished == 10 and result.complete == 10 - len(failed)


class CrashesOnce(ProxyTrainer):
    """Kills its worker process the first time it runs (a segfault or OOM kill looks the same to Ray)."""

    def __init__(self, marker: str):
        super().__init__(FAST.recipe)
        self.marker = marker

    def train(self, arch, dataset, seed):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("crashed")
            os._exit(1)
        return super().train(arch, dataset, seed)


class AlwaysCrashes(ProxyTrainer):
    def train(self, arch, dataset, seed):
        os._exit(1)


def test_crashed_worker_is_retried(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor):
    marker = tmp_path / "crashed"
    result = run(
        tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3, trainer=CrashesOnce(str(marker))
    )
    assert marker.exists(), "the crash did not happen"
    assert result.complete == 3 and result.failed == 0


def test_worker_that_always_crashes_fails_the_trial(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=1,  # each attempt starts a new worker process (seconds): one trial shows the retries
        population=2,
        trainer=AlwaysCrashes(),
    )
    assert result.failed == 1
    for row in rows(result.run_dir):
        assert row["failure_reason"].startswith("train: worker died 3 times")


def test_rerun_with_more_trials_extends_the_run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor):
    first = run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3)
    before = {r["number"]: r for r in rows(first.run_dir)}
    second = run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=5)
    after = {r["number"]: r for r in rows(second.run_dir)}
    assert second.finished == 5 and len(after) == 5
    for number, row in before.items():
        assert after[number]["accuracy"] == row["accuracy"] and after[number]["arch_hash"] == row["arch_hash"]


def test_the_same_command_after_the_run_finished_starts_no_ray(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, monkeypatch
):
    first = run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3)
    table = (first.run_dir / "trials.csv").read_text()

    def no_ray(**_):
        raise AssertionError("Ray started")

    monkeypatch.setattr(importlib.import_module("nas.search._api"), "RayExecutor", no_ray)
    again = run(tmp_path, tiny_space_file, tiny_dataset_file, None, trials=3)  # the package's own executor
    assert again.finished == 3 and again.pareto == first.pareto
    assert (first.run_dir / "trials.csv").read_text() == table
    with pytest.raises(AssertionError, match="Ray started"):  # one trial more: the workers are needed
        run(tmp_path, tiny_space_file, tiny_dataset_file, None, trials=4)


def test_robust_search_optimizes_a_mix_of_clean_and_corrupted_accuracy(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    trainer = ProxyTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32, robust=True))
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=3,
        population=3,
        trainer=trainer,
        robust_weight=0.25,
    )
    for row in rows(result.run_dir):
        clean, corrupted = float(row["clean_accuracy"]), float(row["corrupted_accuracy"])
        assert float(row["accuracy"]) == pytest.approx(0.75 * clean + 0.25 * corrupted)
        assert row["worst_slice"] and 0 <= float(row["worst_slice_accuracy"]) <= corrupted
    pareto = json.loads((result.run_dir / "pareto.json").read_text())
    assert pareto["accuracy_objective"] == "0.75 x clean + 0.25 x mean corrupted validation accuracy"


def test_prescreening_trains_the_best_score_of_each_latency_band(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    result = run(
        tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3, population=3, prescreen=3
    )
    table = rows(result.run_dir)
    trained = [r for r in table if r["status"] == "complete" and not r["duplicate_of"]]
    screened = [r for r in table if r["status"] == "screened_out"]
    assert (
        result.finished == 3
        and len(trained)
        + result.infeasible
        + result.failed
        + sum(bool(r["duplicate_of"]) for r in table if r["status"] == "complete")
        == 3
    )
    assert screened and all(
        r["state"] == "PRUNED" and "screened out: naswot" in r["failure_reason"] for r in screened
    )
    assert not any(
        list((result.run_dir / "checkpoints").glob("trial_*%s*" % r["arch_hash"])) for r in screened
    )
    for row in screened:  # the trial that beat it scored higher
        winner = int(row["failure_reason"].split("(trial ")[1].split(")")[0])
        assert float(table[winner]["prescreen_score"]) >= float(row["prescreen_score"])


def test_ehvi_prescreening_trains_what_the_accuracy_model_expects_to_extend_the_front_most(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, monkeypatch
):
    from nas.search._acquisition import finite_last_score, screening_features, select_by_ehvi
    from nas.search._driver import BatchDriver

    # Batches, as where the workers cannot be frozen (the local Ray's measured search runs without them)
    monkeypatch.setattr(sys.modules["nas.search._api"], "driver_class", lambda *args: BatchDriver)
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=8,
        population=2,
        prescreen=3,
        prescreen_score="ehvi",
    )
    table = rows(result.run_dir)
    batch = 12  # 4 trials per batch (two workers) x 3 proposals each
    first, second = table[:batch], table[batch : 2 * batch]
    trained_first = [r for r in first if r["status"] == "complete"]
    assert len(trained_first) == 4 and all(
        "too few trained candidates for EHVI" in r["failure_reason"]
        for r in first
        if r["status"] == "screened_out"
    )
    # The sampler learns from measured latencies, so it may re-propose a trained architecture: such a duplicate
    # reuses its result, uses up one of the batch's 4 counted trials and never enters the EHVI pool.
    fresh = [r for r in second if not r["duplicate_of"]]
    pool = [r for r in fresh if r["latency_ms"] and "same architecture" not in r["failure_reason"]]
    keep = 4 - sum(r["status"] != "screened_out" for r in second if r["duplicate_of"])
    assert keep >= 1
    # NASWOT is the accuracy model's fourth feature. Before there is a model (first batch) only the candidates
    # kept are scored, since they join its data once trained; the model's batch scores its whole pool.
    # prescreen_score is left for the EHVI of those chosen by the model.
    assert all(
        bool(r["naswot"]) == (r["status"] == "complete") and not r["prescreen_score"]
        for r in first
        if r["latency_ms"]
    )
    assert all(r["naswot"] for r in pool)

    def describe(r):
        return float(r["latency_ms"]), int(r["params"]), int(r["macs"]), float(r["naswot"])

    candidates, trained = finite_last_score(
        [describe(r) for r in pool], [(float(r["accuracy"]), *describe(r)) for r in trained_first]
    )
    reference = max(float(r["latency_ms"]) for r in trained_first + pool)
    expected = select_by_ehvi(candidates, trained, keep, reference, features=screening_features)
    assert {pool[i]["number"] for i, _ in expected} == {
        r["number"] for r in fresh if r["status"] == "complete"
    }
    reasons = [r["failure_reason"] for r in second if r["status"] == "screened_out"]
    assert any("expected hypervolume improvement" in why for why in reasons)
    assert all(
        "expected hypervolume improvement" in why or "same architecture" in why or "share of --trials" in why
        for why in reasons
    )
    assert result.finished == 8


def test_prescreen_score_list_matches_the_scores_implemented():
    from nas.evaluate import ZERO_COST_SCORES
    from nas.search import SELECTORS

    assert set(SELECTORS.names()) == set(ZERO_COST_SCORES) | {"ehvi"}


class FailsOnWidth16(ProxyTrainer):
    def train(self, arch, dataset, seed):
        if arch.stages[0].width == 16:
            raise ValueError("width 16 fails")
        return super().train(arch, dataset, seed)


def test_twins_of_a_failed_candidate_fail_with_it(tmp_path, tiny_dataset_file, ray_executor):
    space = tmp_path / "two.yaml"
    space.write_text(
        "name: two\ninput: {resolution: 16}\nstem: {channels: 8}\n"
        "stages:\n  - {name: a, stride: 2, depth: 1, width: [8, 16], primitive: dwsep}\n"
    )
    result = run(
        tmp_path,
        space,
        tiny_dataset_file,
        ray_executor,
        trials=6,
        population=3,
        trainer=FailsOnWidth16(FAST.recipe),
        sampler="random",
    )
    table = rows(result.run_dir)
    assert result.finished == 6 and not [r for r in table if r["state"] == "RUNNING"]
    failed = [r for r in table if r["param:a.width"] == "16"]
    assert failed and all(r["status"] == "failed" and "width 16 fails" in r["failure_reason"] for r in failed)


def test_multi_fidelity_stops_dominated_candidates_at_an_early_rung(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    trainer = ProxyTrainer(TrainingRecipe(epochs=2, train_subset=64, batch_size=32))
    result = run(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=8,
        population=8,
        epochs=2,
        trainer=trainer,
        rungs=(1,),
        stop_dominated_by=1,
        stop_margin=0,
    )
    table = rows(result.run_dir)
    stopped = [r for r in table if r["status"] == "stopped_early"]
    trained = [r for r in table if r["status"] == "complete" and not r["duplicate_of"]]
    assert result.finished == 8 and stopped and trained
    rung = {
        int(r["number"]): (json.loads(r["rung_accuracy"].replace("'", '"'))["1"], float(r["latency_ms"]))
        for r in stopped + trained
    }
    for r in stopped:  # something dominated it at the rung
        acc, lat = rung[int(r["number"])]
        assert any(
            a >= acc and t <= lat and (a > acc or t < lat)
            for n, (a, t) in rung.items()
            if n != int(r["number"])
        )
        assert r["state"] == "PRUNED" and not r["train_seconds"] and "1-epoch rung" in r["failure_reason"]
    for r in trained:  # survivors trained to the end, with their rung result kept
        assert int(r["number"]) in rung and float(r["train_seconds"]) > 0
    # A survivor resumed where its rung paused: its accuracy is that of one straight 2-epoch training.
    from nas.data import load_dataset
    from nas.space import Architecture

    survivor = trained[0]
    trial = next(t for t in result_study(result.run_dir).trials if t.number == int(survivor["number"]))
    arch = Architecture.from_dict(trial.user_attrs["architecture"])
    straight = trainer.train(arch, load_dataset(str(tiny_dataset_file), val_fraction=0.1, seed=0), seed=0)
    assert straight.accuracy == pytest.approx(float(survivor["accuracy"]), abs=1e-9)


def result_study(run_dir: Path):
    from nas.search._study import load_run_study

    return load_run_study(run_dir)


def test_prescreening_never_overshoots_the_trial_budget(tmp_path, tiny_dataset_file, ray_executor):
    # Four architectures in all: asking 4 x 3 candidates per batch guarantees duplicates.
    space = tmp_path / "small.yaml"
    space.write_text(
        "name: small\ninput: {resolution: 16}\nstem: {channels: 8, kernel: 3, stride: 1}\n"
        "block_choices: {primitive: [dwsep], kernel: [3], se: [false], activation: [relu]}\n"
        "stages:\n  - {name: a, stride: 2, depth: [1, 2], width: [8, 16]}\n"
    )
    result = run(
        tmp_path,
        space,
        tiny_dataset_file,
        ray_executor,
        trials=5,
        population=3,
        prescreen=4,
        sampler="random",
    )
    table = rows(result.run_dir)
    counted = [r for r in table if r["status"] not in ("screened_out", "interrupted")]
    assert result.finished == 5 and len(counted) == 5


def test_resume_refuses_a_space_file_edited_under_the_same_name(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    from nas.errors import NasError

    space = tmp_path / "tiny.yaml"
    space.write_text(tiny_space_file.read_text())
    run(tmp_path, space, tiny_dataset_file, ray_executor, trials=2, population=2)
    run(tmp_path, space, tiny_dataset_file, ray_executor, trials=3, population=2)  # unchanged: resumes
    space.write_text(tiny_space_file.read_text().replace("width: [8, 16]", "width: [8, 24]"))
    with pytest.raises(NasError, match="the space changed since this run started"):
        run(tmp_path, space, tiny_dataset_file, ray_executor, trials=4, population=2)
    assert len(rows(tmp_path / "run")) == 3  # nothing written by the refused resume


def test_prescreening_trains_a_full_share_when_part_of_the_pool_is_infeasible(
    tmp_path, tiny_dataset_file, ray_executor
):
    space = tmp_path / "small.yaml"
    space.write_text(
        "name: small\ninput: {resolution: 16}\nstem: {channels: 8, kernel: 3, stride: 1}\n"
        "block_choices: {primitive: [dwsep], kernel: [3, 5], se: [false], activation: [relu]}\n"
        "stages:\n  - {name: a, stride: 2, depth: [1, 2], width: [8, 16, 32, 64]}\n"
    )
    result = run(
        tmp_path,
        space,
        tiny_dataset_file,
        ray_executor,
        trials=4,
        population=4,
        prescreen=4,
        sampler="random",
        max_params=1500,
    )  # 6 of the 16 architectures exceed it
    table = rows(result.run_dir)
    counted = [r for r in table if r["status"] not in ("screened_out", "interrupted")]
    # The infeasible part of the pool is recorded, but the batch's share of --trials goes to trainings.
    assert result.finished == 4 and [r["status"] for r in counted] == ["complete"] * 4
    over = [r for r in table if r["params"] and int(r["params"]) > 1500]
    assert over and all(r["status"] == "screened_out" and "params" in r["failure_reason"] for r in over)


def test_a_sampler_instance_searches_and_resumes_by_its_class_name(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor
):
    import optuna

    from nas.errors import NasError

    first = run(
        tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=2, population=2,
        sampler=optuna.samplers.TPESampler(seed=3),
    )  # fmt: skip
    assert first.complete == 2
    saved = json.loads((first.run_dir / "config.json").read_text())["search"]
    assert saved["sampler"] == "TPESampler"
    resumed = run(
        tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3, population=2,
        sampler=optuna.samplers.TPESampler(seed=4),
    )  # fmt: skip
    assert resumed.finished == 3
    with pytest.raises(NasError, match="sampler='TPESampler', not 'tpe'"):
        run(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=4, population=2, sampler="tpe")


def test_trainings_start_longest_first_by_the_latency_measured_here_else_by_macs():
    from nas.records import Attr
    from nas.search._candidate import Candidate
    from nas.search._driver import longest_first

    def cand(name, macs, latency_ms, source):
        return Candidate(trial=name, arch=None, attrs={Attr.MACS: macs, Attr.LATENCY_MS: latency_ms,
                                                         Attr.LATENCY_SOURCE: source})  # fmt: skip

    measured = [cand("few MACs, slow", 2e6, 0.35, "measured"), cand("many MACs, fast", 4e7, 0.12, "measured")]
    assert [c.trial for c in longest_first(measured)] == ["few MACs, slow", "many MACs, fast"]
    # another device's latency (predicted, or a device node's) says nothing about training here
    for source in ("predicted", "device"):
        mixed = [measured[0], cand("many MACs, fast", 4e7, 0.12, source)]
        assert [c.trial for c in longest_first(mixed)] == ["many MACs, fast", "few MACs, slow"]
