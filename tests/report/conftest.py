"""Run directories for the report tests: the session's real tiny search (`cli_run`) and variants of it.

The variants copy the real run and add what a tiny search cannot produce on demand (failed and interrupted
trials, a budget, baselines, another profile) through Optuna's own API, as the driver would have recorded them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_run(cli_run) -> Path:
    """A real search (6 trials, each sampled candidate trained: the counts in the tests are exact) on the tiny
    space, exported."""
    return cli_run.run_dir


def _study(run_dir: Path):
    from nas.search import load_run_study

    return load_run_study(run_dir)


def _add(study, state, **attrs):
    import optuna

    study.add_trial(optuna.trial.create_trial(state=state, user_attrs=attrs))


def _set_search(run_dir: Path, **settings) -> None:
    config = json.loads((run_dir / "config.json").read_text())
    config["search"].update(settings)
    (run_dir / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory, tiny_run) -> Path:
    """The real run plus infeasible, failed and interrupted trials, a latency budget and baselines."""
    from optuna.trial import TrialState

    run_dir = tmp_path_factory.mktemp("report") / "mixed-run"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("report", "export"))
    study = _study(run_dir)
    latencies = sorted(t.values[1] for t in study.trials if t.state == TrialState.COMPLETE)
    budget = latencies[-1] * 1.01
    _set_search(run_dir, latency_budget_ms=budget)
    _add(
        study,
        TrialState.PRUNED,
        status="infeasible",
        latency_ms=budget * 1.5,
        summary="slow",
        infeasible_reason=f"latency {budget * 1.5:.3f} ms > budget {budget:g} ms",
    )
    _add(
        study,
        TrialState.PRUNED,
        status="infeasible",
        summary="big",
        infeasible_reason="params 9999999 > max 100000",
    )
    _add(
        study,
        TrialState.FAIL,
        status="failed",
        summary="broken",
        failure_reason="prepare: RuntimeError: boom",
    )
    _add(
        study,
        TrialState.FAIL,
        status="failed",
        latency_ms=latencies[0],
        summary="crashed",
        failure_reason="train: worker died 3 times",
    )
    _add(
        study,
        TrialState.FAIL,
        status="interrupted",
        summary="killed",
        failure_reason="driver stopped before the trial finished; re-queued",
    )
    (run_dir / "baselines.json").write_text(
        json.dumps(
            [
                {"name": "hand-made-small", "accuracy": 0.5, "latency_ms": latencies[0]},
                {"name": "hand-made-large", "accuracy": 0.6, "latency_ms": latencies[-1]},
            ]
        )
    )
    return run_dir


@pytest.fixture(scope="session")
def other_profile_run(tmp_path_factory, tiny_run) -> Path:
    """The real run relabelled as if searched on another device (for the normalised comparison axis)."""
    run_dir = tmp_path_factory.mktemp("report") / "other-device-run"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("report", "export"))
    config = json.loads((run_dir / "config.json").read_text())
    config["profile"]["name"] = config["search"]["profile"] = "other-device"
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


@pytest.fixture(scope="session")
def no_trained_run(tmp_path_factory, tiny_run) -> Path:
    """A run whose every trial was rejected or failed: nothing to report."""
    import optuna
    from optuna.trial import TrialState

    from nas.search import storage_url

    run_dir = tmp_path_factory.mktemp("report") / "no-trained-run"
    run_dir.mkdir()
    shutil.copy(tiny_run / "config.json", run_dir / "config.json")
    study = optuna.create_study(
        study_name="nas", storage=storage_url(run_dir), directions=["maximize", "minimize"]
    )
    _add(
        study,
        TrialState.PRUNED,
        status="infeasible",
        latency_ms=1.0,
        infeasible_reason="latency 1 ms > budget 1e-06 ms",
    )
    _add(study, TrialState.FAIL, status="failed", failure_reason="prepare: RuntimeError: boom")
    return run_dir
