"""--latency-budget-ms auto (the default): the 80th percentile of the profile's predicted latency over the
space, recorded by the run, checked on the model's prediction when latency is measured; none: no budget."""

from __future__ import annotations

import csv
import json
import logging
import random

import pytest

from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.latency import ArchitectureFeaturizer, load_profile
from nas.search import SearchConfig, search
from nas.search._arguments import load_config_file
from nas.search._default_budget import _Draw, default_budget_ms
from nas.space import load_space
from tests._serial_executor import SerialExecutor

SEED = 1  # its first candidates include one over the tiny space's default budget
FAST = ProxyTrainer(TrainingRecipe(epochs=1, train_subset=32, batch_size=32))


def test_the_default_budget_cuts_the_slowest_fifth_of_the_space(tiny_space_file, x86_model_profile):
    space, profile = load_space(str(tiny_space_file)), load_profile(str(x86_model_profile))
    budget = default_budget_ms(space, profile, num_classes=2)
    assert budget == default_budget_ms(space, profile, num_classes=2)  # the same command, the same budget
    featurizer, rng = ArchitectureFeaturizer(2), random.Random(1)  # other draws than the rule's own
    latencies = [
        profile.predict(featurizer.features(space.sample(_Draw(rng)))).latency_ms for _ in range(200)
    ]
    over = sum(latency > budget for latency in latencies) / len(latencies)
    assert 0.08 <= over <= 0.35, f"{over:.0%} of the space is over the default budget {budget} ms"


def test_a_profile_without_a_latency_model_has_no_default_budget(tiny_space_file, tmp_path):
    import yaml

    from nas._resources import builtin_dir

    raw = yaml.safe_load((builtin_dir("hardware_profiles") / "x86-cpu.yaml").read_text())
    from nas.latency._profiles import MODEL_SECTIONS

    for key in ("model", *MODEL_SECTIONS):
        raw.pop(key, None)
    path = tmp_path / "measured-only.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert default_budget_ms(load_space(str(tiny_space_file)), load_profile(str(path)), 2) is None


def test_none_is_the_one_spelling_of_no_budget(tmp_path):
    assert SearchConfig().latency_budget_ms == "auto"
    for text, value in (("none", None), ("auto", "auto"), ("0.3", 0.3)):
        path = tmp_path / f"{text}.yaml"
        path.write_text(f"latency_budget_ms: {text}\n")
        assert load_config_file(path).latency_budget_ms == value
    with pytest.raises(NasError, match="latency_budget_ms: must be a positive finite number"):
        SearchConfig(latency_budget_ms="fast")


def _search(tmp_path, space, data, **settings):
    defaults = dict(
        space=str(space),
        dataset=str(data),
        trials=3,
        population=2,
        epochs=1,
        train_subset=32,
        out=str(tmp_path / "run"),
        prescreen=1,
        prescreen_score="naswot",
    )
    return search(executor=SerialExecutor(), trainer=FAST, **{**defaults, **settings})


def test_a_measured_search_checks_the_default_budget_on_the_prediction_and_resumes(
    tmp_path, tiny_space_file, tiny_dataset_file, caplog
):
    with caplog.at_level(logging.INFO, logger="nas"):
        result = _search(tmp_path, tiny_space_file, tiny_dataset_file, sampler="random", seed=SEED)
    saved = json.loads((result.run_dir / "config.json").read_text())
    budget = saved["search"]["latency_budget_ms"]
    assert saved["latency_mode"] == "measured" and budget == saved["latency_budget"]["auto_ms"] > 0
    assert saved["latency_budget"]["checked_on"] == "the profile's predicted latency"
    assert f"latency budget {budget:g} ms" in caplog.text
    with open(result.run_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    predicted = [float(r["latency_ms@x86-cpu"]) for r in rows]  # what the budget was checked on
    assert all(p <= budget for p, r in zip(predicted, rows) if r["status"] == "complete")
    rejected = [r for r in rows if r["status"] == "infeasible"]
    assert rejected, "the budget must reject a candidate, or the test proves nothing"
    assert all(f"(predicted) > budget {budget:g} ms" in r["failure_reason"] for r in rejected)
    assert not any(r["latency_ms"] for r in rejected)  # rejected before this machine exported and measured it

    again = _search(tmp_path, tiny_space_file, tiny_dataset_file, sampler="random", seed=SEED, trials=4)
    assert again.finished == 4  # the same command resumed, with the budget the run recorded
    from nas.search._arguments import read_run_settings

    resumed = read_run_settings(result.run_dir)
    assert resumed["latency_budget_ms"] == budget  # --resume reads the number: the run's auto budget
    with pytest.raises(NasError, match=r"latency_budget_ms=.*--latency-budget-ms"):
        _search(
            tmp_path, tiny_space_file, tiny_dataset_file, sampler="random", seed=SEED, latency_budget_ms=None
        )


def test_a_run_made_without_a_budget_names_how_to_resume_it(tmp_path, tiny_space_file, tiny_dataset_file):
    result = _search(tmp_path, tiny_space_file, tiny_dataset_file, trials=2, latency_budget_ms=None)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["search"]["latency_budget_ms"] is None and "latency_budget" not in saved
    with pytest.raises(NasError, match="its budget: --latency-budget-ms none"):
        _search(tmp_path, tiny_space_file, tiny_dataset_file, trials=2)
    assert (
        _search(tmp_path, tiny_space_file, tiny_dataset_file, trials=3, latency_budget_ms=None).finished == 3
    )
