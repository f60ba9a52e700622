"""A search over a space with early exits: each trained candidate's latency objective is its expected
latency (the calibrated shares times the latency up to each exit), recorded for nas export."""

from __future__ import annotations

import csv

import pytest

from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.exits import expected_latency
from nas.search import search
from tests._serial_executor import SerialExecutor
from tests.exits.cascade_fixture import EXITS_SPACE


def test_the_latency_objective_of_a_candidate_with_exits_is_its_expected_latency(
    tmp_path, tiny_dataset_file, x86_model_profile
):
    """Predicted latency (measured segments: tests/exits/test_segments.py), so the test takes seconds."""
    space = tmp_path / "space.yaml"
    space.write_text(EXITS_SPACE)
    result = search(
        executor=SerialExecutor(),
        trainer=ProxyTrainer(TrainingRecipe(epochs=1, train_subset=64, batch_size=32), exit_max_drop=2.0),
        space=str(space),
        dataset=str(tiny_dataset_file),
        trials=2,
        population=2,
        epochs=1,
        train_subset=64,
        latency="predicted",
        profile=str(x86_model_profile),
        latency_budget_ms=None,
        exit_max_drop=2.0,
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=1,
        prescreen_score="naswot",
    )
    assert result.pareto, "no trained candidate"
    for entry in result.pareto:
        exits = entry["exits"]
        assert exits["max_drop_points"] == 2.0 and exits["drop_points"] <= 2.0 + 1e-9
        segments, interval = _segments(result.run_dir, entry["trial"])
        want = expected_latency(exits["shares"], segments, *zip(*interval))
        assert entry["latency_ms"] == pytest.approx(want.expected_ms)
        assert exits["expected_latency"]["expected_ms"] == pytest.approx(want.expected_ms)
        assert entry["latency_interval_ms"] == pytest.approx([want.low_ms, want.high_ms])  # summed alike
        assert entry["accuracy"] == pytest.approx(exits["cascade_accuracy"])
        assert entry["latency_whole_ms"] > 0  # every image to the final exit (the exit heads not counted)
    with open(result.run_dir / "trials.csv") as f:
        table = {int(r["number"]): r for r in csv.DictReader(f)}
    for entry in result.pareto:
        assert float(table[entry["trial"]]["latency_whole_ms"]) == pytest.approx(entry["latency_whole_ms"])


@pytest.mark.parametrize("latency", ["device", "hybrid"])
def test_a_search_that_cannot_measure_segments_is_refused_before_it_starts(
    tmp_path, x86_model_profile, latency
):
    from nas.errors import NasError

    space = tmp_path / "space.yaml"
    space.write_text(EXITS_SPACE)
    with pytest.raises(NasError, match=f"--latency {latency}: space tiny-exits has early exits"):
        search(
            executor=SerialExecutor(),
            space=str(space),
            profile=str(x86_model_profile),
            latency=latency,
            out=str(tmp_path / "run"),
        )
    assert not (tmp_path / "run").exists()


def _segments(run_dir, trial: int) -> tuple[list[float], list[list[float]]]:
    """Each segment's predicted latency and interval, as the trial recorded them before training."""
    import optuna

    attrs = (
        optuna.load_study(study_name=None, storage=f"sqlite:///{run_dir / 'study.db'}")
        .trials[trial]
        .user_attrs
    )
    return attrs["exit_segment_ms"], attrs["exit_segment_interval_ms"]
