"""Experiment trackers a search reports to: `--track mlflow[:TRACKING_URI]` (`SearchConfig.track`).

A tracker is an Optuna callback `(study, frozen_trial)`, the same kind `nas.search(callbacks=[...])` takes,
so Optuna's own integrations (`optuna_integration.MLflowCallback`, `WeightsAndBiasesCallback`, ...) plug
in unchanged. The built-in ones are made here, once, before the search starts: a missing package or a
tracking server that cannot be reached is an error then, not after hours of search.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from nas.errors import NasError, NasRuntimeError, first_line

TRACKERS = ("mlflow",)
INSTALL = "pip install 'hwnas[track]'"  # the extra with mlflow-skinny and optuna-integration

TrialCallback = Callable[[Any, Any], None]  # (optuna.Study, optuna.trial.FrozenTrial) -> None


def parse_tracker(spec: str) -> tuple[str, str | None]:
    """`mlflow` or `mlflow:TRACKING_URI` -> (name, URI or None); an unknown tracker is a NasError."""
    if not isinstance(spec, str) or not spec.strip():
        raise NasError(f"track: each is a tracker name such as mlflow[:TRACKING_URI], got {spec!r}")
    name, _, uri = spec.strip().partition(":")
    if name not in TRACKERS:
        raise NasError(f"track: unknown tracker {name!r} (known: {', '.join(TRACKERS)}), in {spec!r}")
    return name, uri or None


def tracker_callbacks(specs: Sequence[str], run_dir: Path) -> list[TrialCallback]:
    """One callback per `--track` entry, ready to report this run's trials."""
    return [_mlflow(uri, run_dir) for name, uri in map(parse_tracker, specs) if name == "mlflow"]


def _mlflow(uri: str | None, run_dir: Path) -> TrialCallback:
    """Optuna's MLflowCallback, into the experiment named after the run directory (created when missing):
    one MLflow run per trial, with the metrics `accuracy` and `latency_ms`, the sampled parameters and the
    trial's attributes as tags. No URI: MLflow's own default ($MLFLOW_TRACKING_URI, else its local store)."""
    try:
        from mlflow.tracking import MlflowClient
        from optuna.exceptions import ExperimentalWarning
        from optuna_integration import MLflowCallback
    except ImportError as exc:
        raise NasError(
            f"--track mlflow: {first_line(exc)}; install the tracker packages: {INSTALL}"
        ) from None
    name = Path(run_dir).resolve().name
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    except Exception as exc:  # a server that is not there, a store that cannot be written
        where = uri or "MLflow's default tracking URI"
        raise NasRuntimeError(f"--track mlflow: cannot use {where}: {first_line(exc, 600)}") from None
    with warnings.catch_warnings():  # experimental in some versions, deprecated (removal in 6.0) in others
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return MLflowCallback(
            tracking_uri=uri,
            metric_name=list(_metric_names()),
            create_experiment=False,
            mlflow_kwargs={"experiment_id": experiment_id},
        )


def _metric_names() -> tuple[str, ...]:
    """The study's objective names (from the study module, which loads Optuna: only when tracking)."""
    from nas.search._study import METRIC_NAMES

    return METRIC_NAMES
