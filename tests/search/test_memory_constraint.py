"""Peak activation and weight memory: recorded for every candidate, and as constraints applied before training."""

from __future__ import annotations

import csv
import sys

import pytest
from ray import cloudpickle

from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.search import SearchConfig, search

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAST = ProxyTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32))
BOUND_KB = 20.0  # the tiny space's candidates peak at 16 or 32 KiB


def _search(tmp_path, space, data, executor, **settings):
    defaults = dict(
        space=str(space),
        dataset=str(data),
        trials=8,
        population=4,
        epochs=1,
        train_subset=64,
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=1,
        prescreen_score="naswot",
    )
    return search(executor=executor, trainer=FAST, **{**defaults, **settings})


def _rows(run_dir):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("latency", ["measured", "predicted"])
def test_a_peak_memory_bound_never_trains_a_candidate_over_it(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, x86_model_profile, latency
):
    result = _search(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        latency=latency,
        profile=str(x86_model_profile),
        max_peak_memory_kb=BOUND_KB,
    )
    table = _rows(result.run_dir)
    assert all(float(r["peak_memory_kb"]) > 0 and float(r["weights_kb"]) > 0 for r in table)
    trained = [r for r in table if r["status"] == "complete"]
    rejected = [r for r in table if r["status"] == "infeasible"]
    assert trained and all(float(r["peak_memory_kb"]) <= BOUND_KB for r in trained)
    assert all(r["train_device"] == "cpu" for r in trained)  # where each proxy training ran
    assert rejected, "the bound rejected no candidate: the test would prove nothing"
    for r in rejected:
        assert float(r["peak_memory_kb"]) > BOUND_KB and "peak memory" in r["failure_reason"]
        assert not r["train_seconds"]
    pareto = result.pareto
    assert all(p["peak_memory_kb"] <= BOUND_KB and p["weights_kb"] > 0 for p in pareto)


def test_predicted_latency_without_a_memory_bound_exports_nothing_for_memory(
    tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, x86_model_profile
):
    result = _search(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        ray_executor,
        trials=3,
        latency="predicted",
        profile=str(x86_model_profile),
    )
    table = _rows(result.run_dir)
    assert table and all(r["peak_memory_kb"] == "" and r["weights_kb"] == "" for r in table)


def test_a_weights_bound_rejects_before_training(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor):
    result = _search(tmp_path, tiny_space_file, tiny_dataset_file, ray_executor, trials=3, max_weights_kb=0.5)
    table = _rows(result.run_dir)
    assert result.infeasible == 3
    assert all("weights" in r["failure_reason"] and not r["train_seconds"] for r in table)


@pytest.mark.parametrize("name", ["max_peak_memory_kb", "max_weights_kb"])
@pytest.mark.parametrize("value", [0, -3.0, float("inf"), True, "12"])
def test_memory_bounds_must_be_positive_numbers(name, value):
    with pytest.raises(NasError, match=f"{name}: must be a positive finite number of KiB"):
        SearchConfig(**{name: value})


def test_memory_bounds_are_part_of_the_runs_identity():
    assert SearchConfig(max_peak_memory_kb=64).identity()["max_peak_memory_kb"] == 64
    assert SearchConfig().identity()["max_weights_kb"] is None
