"""From a device's measurements to a profile: read `measurements.csv`, fit, validate, predict.

`measurements.csv` (written by `nas profile measure`, or by hand) has columns `model,latency_ms`
(extra columns are ignored); `model` is an ONNX file's path relative to the CSV. Any ONNX graphs
work: whole networks, single blocks, or both (the latency model is fitted on graph features, so the
fixed per-inference overhead is learnt once, not once per block). Every problem names the CSV row.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from nas._io import read_json
from nas.errors import NasError
from nas.latency._graph import graph_features
from nas.latency._model import cross_validate, error_metrics, fit_latency_model
from nas.latency._profiles import HardwareProfile

REQUIRED = ("model", "latency_ms")


def read_measurements(csv_path: str | Path) -> list[tuple[Path, float]]:
    """(ONNX path, latency ms) per row, every row checked: columns, numbers, files."""
    path = Path(csv_path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise NasError(f"{path}:1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
            rows = list(reader)
    except FileNotFoundError:
        raise NasError(f"measurements file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NasError(f"{path}: unreadable CSV ({exc})") from None
    if not rows:
        raise NasError(f"{path}: no measurements")
    out = []
    for line, row in enumerate(rows, start=2):
        text = (row.get("latency_ms") or "").strip()
        try:
            latency = float(text)
        except ValueError:
            raise NasError(f"{path}:{line}: latency_ms: not a number: {text!r}") from None
        if not math.isfinite(latency) or latency <= 0:
            raise NasError(f"{path}:{line}: latency_ms: must be a positive finite number of milliseconds, got {text}")
        model = (row.get("model") or "").strip()
        onnx_path = path.parent / model
        if not model or not onnx_path.is_file():
            raise NasError(f"{path}:{line}: model: ONNX file not found: {onnx_path}")
        out.append((onnx_path, latency))
    return out


def measurement_samples(csv_path: str | Path) -> list[tuple[Any, float]]:
    """(GraphFeatures, latency) per row; a graph the model cannot featurize names its row."""
    samples = []
    for line, (onnx_path, latency) in enumerate(read_measurements(csv_path), start=2):
        try:
            samples.append((graph_features(onnx_path), latency))
        except NasError as exc:
            raise NasError(f"{csv_path}:{line}: {exc}") from None
    return samples


def fit_profile(csv_path: str | Path, name: str, *, description: str | None = None, latency: str = "predicted",
                folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """A profile dict (see `write_profile`) fitted on every row, with k-fold cross-validated error."""
    csv_path = Path(csv_path)
    samples = measurement_samples(csv_path)
    if len(samples) < 2 * folds:
        raise NasError(f"{csv_path}: {len(samples)} measurements are too few to fit and cross-validate ({2 * folds} at least)")
    meta_path = csv_path.with_name("measurements.meta.json")
    meta = read_json(meta_path, "measurement metadata") if meta_path.is_file() else {}
    settings = meta.get("settings", {})
    runtime = {
        "engine": "onnxruntime",
        "execution_provider": settings.get("execution_provider", "CPUExecutionProvider"),
        "intra_op_threads": settings.get("intra_op_threads", 1),
        "graph_optimization": settings.get("graph_optimization", "all"),
    }
    provenance = (
        f"Fitted by `nas profile fit` on {len(samples)} ONNX graphs measured with ONNX Runtime "
        f"{meta.get('onnxruntime', '(version not recorded)')} on {meta.get('cpu', 'an unrecorded CPU')} "
        f"({meta.get('machine', '?')}, host {meta.get('host', '?')}) at {meta.get('measured', 'an unrecorded date')}; "
        f"bundle of space {meta.get('bundle', {}).get('space', '?')} seed {meta.get('bundle', {}).get('seed', '?')}."
    )
    profile = {
        "name": name,
        "description": description or f"latency predicted from {len(samples)} graphs measured on {meta.get('cpu', 'the device')}",
        "latency": latency,
        "runtime": runtime,
        "provenance": provenance,
        "model": fit_latency_model(samples).to_dict(),
        "validation": {**cross_validate(samples, folds=folds, seed=seed),
                       "data": f"{folds}-fold cross-validation over the {len(samples)} measured graphs"},
        "measurements": {"path": str(csv_path.resolve()), "format": "onnx_measurements", "rows": len(samples)},
    }
    measurement = {k: settings[k] for k in ("warmup_runs", "rounds", "round_ms", "max_spread", "max_attempts", "batch_size")
                   if k in settings}
    if measurement:
        profile["measurement"] = measurement
    return profile


def predict_models(profile: HardwareProfile, models: list[str | Path]) -> list[dict[str, Any]]:
    model = _require_model(profile)
    out = []
    for path in models:
        if not Path(path).is_file():
            raise NasError(f"ONNX model not found: {path}")
        out.append({"model": str(path), "profile": profile.name, "latency_ms": model.predict(path)})
    return out


def validate_on_measurements(profile: HardwareProfile, csv_path: str | Path) -> dict[str, Any]:
    """Held-out error of the profile's model on measurements it was not fitted on."""
    model = _require_model(profile)
    samples = measurement_samples(csv_path)
    predicted = [model.predict(features) for features, _ in samples]
    return {**error_metrics(predicted, [latency for _, latency in samples]), "data": str(csv_path)}


def _require_model(profile: HardwareProfile):
    if profile.latency_model is None:
        raise NasError(f"profile {profile.name!r} has no latency model: fit one with `nas profile fit` or `nas profile import`")
    return profile.latency_model
