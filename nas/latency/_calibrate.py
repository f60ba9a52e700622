"""From a device's measurements to a profile: read `measurements.csv`, fit, validate, predict.

`measurements.csv` (written by `nas profile measure`, or by hand) has columns `model,latency_ms`
(extra columns are ignored, but for `reference_ms`: a paired measurement, whose latencies are read
relative to the reference's, `measurement_samples`); `model` is an ONNX file's path relative to the CSV. Any ONNX graphs
work: whole networks, single blocks, or both (the latency model is fitted on graph features, so the
fixed per-inference overhead is learnt once, not once per block). Every problem names the CSV row.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from nas._io import read_json
from nas.errors import NasError
from nas.latency._coverage import Coverage
from nas.latency._graph import graph_features
from nas.latency._hardware_profile import HardwareProfile
from nas.latency._measure import paired_latencies
from nas.latency._model import (
    LatencyModel,
    cross_validate,
    error_metrics,
    fit_matrix,
    held_out_matrix,
    held_out_predictions,
    sample_matrix,
)
from nas.latency._op_kinds import KINDS
from nas.latency._prediction import conformal_interval
from nas.latency._prior import fit_prior
from nas.latency._profile_lookup import load_profile

REQUIRED = ("model", "latency_ms")
PAIRED = "reference_ms"  # the column of a paired measurement (`nas.latency._bundle.measure_bundle`)


def read_measurements(csv_path: str | Path) -> list[tuple[Path, float]]:
    """(ONNX path, latency ms) per row, every row checked: columns, numbers, files."""
    return [(onnx_path, latency) for onnx_path, latency, _ in _read_rows(csv_path)]


def reference_latencies(csv_path: str | Path) -> list[float] | None:
    """The `reference_ms` column of a paired measurement (`measure_bundle` with a reference), None when
    the CSV has none."""
    rows = _read_rows(csv_path)
    return None if rows[0][2] is None else [reference for _, _, reference in rows]


def _read_rows(csv_path: str | Path) -> list[tuple[Path, float, float | None]]:
    """(ONNX path, latency ms, reference ms or None) per row; a `reference_ms` column must be filled in
    every row."""
    path = Path(csv_path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise NasError(
                    f"{path}:1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})"
                )
            paired = PAIRED in (reader.fieldnames or [])
            rows = list(reader)
    except FileNotFoundError:
        raise NasError(f"measurements file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NasError(f"{path}: unreadable CSV ({exc})") from None
    if not rows:
        raise NasError(f"{path}: no measurements")
    out = []
    for line, row in enumerate(rows, start=2):
        latency = _milliseconds(row, "latency_ms", f"{path}:{line}")
        reference = _milliseconds(row, PAIRED, f"{path}:{line}") if paired else None
        model = (row.get("model") or "").strip()
        onnx_path = path.parent / model
        if not model or not onnx_path.is_file():
            raise NasError(f"{path}:{line}: model: ONNX file not found: {onnx_path}")
        out.append((onnx_path, latency, reference))
    return out


def _milliseconds(row: dict, column: str, where: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise NasError(f"{where}: {column}: not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise NasError(f"{where}: {column}: must be a positive finite number of milliseconds, got {text}")
    return value


def measurement_samples(
    csv_path: str | Path, *, paired: bool = True, scale: float | None = None
) -> list[tuple[Any, float]]:
    """(GraphFeatures, latency) per row; a graph the model cannot featurize names its row. A paired
    measurement (a `reference_ms` column) gives each latency over its adjacent reference's, times `scale`
    (default: the reference's median over the CSV; `paired_latencies`), unless not `paired` (the raw
    medians)."""
    rows = _read_rows(csv_path)
    latencies = [latency for _, latency, _ in rows]
    if paired and rows[0][2] is not None:
        latencies = paired_latencies([(latency, reference) for _, latency, reference in rows], scale)
    samples = []
    for line, ((onnx_path, _, _), latency) in enumerate(zip(rows, latencies), start=2):
        try:
            samples.append((graph_features(onnx_path), float(latency)))
        except NasError as exc:
            raise NasError(f"{csv_path}:{line}: {exc}") from None
    return samples


def fit_sections(
    samples: list[tuple[Any, float]],
    model: LatencyModel,
    folds: int,
    seed: int,
    data: str,
    prior_reference: str | None = None,
    predicted: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """What a fitted profile records beside its model: the cross-validated error (``validation``), and
    the sections that make a prediction honest (`nas.latency._prediction`): ``coverage`` of the data,
    the conformal ``interval`` from the same held-out predictions, and, with `prior_reference` (a
    profile name or path), a ``prior`` for the kinds the data lacks. `predicted`: the held-out
    predictions when the caller made them (same folds and seed), else those of a per-node fit."""
    if predicted is None:
        predicted = held_out_predictions(samples, folds, seed)
    measured = np.asarray([latency for _, latency in samples])
    validation = {**cross_validate(samples, folds, seed, predicted), "data": data}
    graphs = [features for features, _ in samples]
    coverage = Coverage.of(graphs, source=f"the {len(graphs)} graphs the model was fitted on")
    ratios = measured / np.maximum(predicted, 1e-9)
    sections: dict[str, Any] = {
        "coverage": coverage.to_dict(),
        "interval": conformal_interval(
            ratios, data=f"held-out measured/predicted ratios of the {data}"
        ).to_dict(),
    }
    if prior_reference is not None:
        sections.update(prior_section(model, coverage, samples, prior_reference))
    return validation, sections, predicted


def prior_section(
    model: LatencyModel, coverage: Coverage, samples: list[tuple[Any, float]], prior_reference: str
) -> dict[str, Any]:
    """``{"prior": ...}`` from the reference profile, and the latency-corpus devices beside it, for the
    kinds `coverage` lacks (empty when none)."""
    from nas.latency._profile_lookup import corpus_profiles

    reference = load_profile(prior_reference)
    also = [
        (p.name, p.latency_model, p.predictor.coverage) for p in corpus_profiles() if p.name != reference.name
    ]
    prior = fit_prior(
        model,
        coverage,
        samples,
        reference.predictor.model,
        reference.predictor.coverage,
        reference.name,
        also=also,
    )
    return {"prior": prior.to_dict()} if prior is not None else {}


FEW_SHOT_BELOW = 30  # fewer measured graphs than this: a few-shot fit (the corpus devices as the prior)
FEW_SHOT_MIN = 5
# Up to this many measured graphs, the direct fit and the few-shot fit are both cross-validated on the same
# folds and the lower held-out MAPE wins: a device unlike every corpus device needs the direct fit, one like
# them gains from the prior. Above it the data speaks for itself (and a few-shot fit gains nothing).
FEW_SHOT_COMPARE_MAX = 300


def choose_graph_term(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[bool, np.ndarray, dict]:
    """Whether a direct fit on feature rows `x` (over `COLUMNS`) and latencies `y` keeps the whole-graph
    term (`LatencyModel.conv_log_ms`): both fits are cross-validated on the same folds and the lower
    held-out MAPE wins. Returns (keep it, the chosen fit's held-out predictions, the record of the choice)."""
    held = {term: held_out_matrix(x, y, folds, seed, graph_term=term) for term in (False, True)}
    mape = {term: error_metrics(p, y)["mape"] for term, p in held.items()}
    keep = bool(mape[True] < mape[False])
    return (
        keep,
        held[keep],
        {
            "per_node_mape": mape[False],
            "with_log_conv_nodes_mape": mape[True],
            "kept": keep,
            "data": f"{folds}-fold cross-validation of both direct fits on the same folds (seed {seed})",
        },
    )


def _corpus_kinds(corpus: list[HardwareProfile]) -> Coverage:
    return Coverage(kinds={k: {"nodes": 0} for p in corpus for k in p.predictor.coverage.kinds})


def _corpus_prior(samples: list[tuple[Any, float]], source: str) -> list[HardwareProfile]:
    """The latency-corpus profiles, the few-shot prior. Every kind of the measured graphs must be one the
    corpus devices measured: the combination has nothing else to learn from, and the prior would count
    such a kind twice."""
    from nas.latency._profile_lookup import corpus_profiles

    corpus = corpus_profiles()
    if not corpus:
        raise NasError(
            "a few-shot fit needs the latency-corpus profiles (hardware_profiles/corpus/), which this "
            "installation lacks"
        )
    known = _corpus_kinds(corpus)
    unknown = sorted({k for features, _ in samples for k in known.uncovered_kinds(features)})
    if unknown:
        raise NasError(
            f"{source}: the measured graphs hold node kinds no latency-corpus device measured "
            f"({', '.join(unknown)}), so a few-shot fit cannot learn them; measure at least "
            f"{FEW_SHOT_BELOW} graphs for a direct fit (nas profile bundle)"
        )
    return corpus


def compare_with_few_shot(
    samples: list[tuple[Any, float]], direct_held_out: np.ndarray, folds: int, seed: int, source: str
) -> dict[str, Any] | None:
    """Both fits' held-out MAPE on the same folds and the one chosen (the lower), or None when a few-shot
    fit is impossible (no corpus profiles, or kinds they never measured)."""
    from nas.latency._fewshot import held_out_few_shot, prior_matrix

    try:
        corpus = _corpus_prior(samples, source)
    except NasError:
        return None
    q = prior_matrix([p.latency_model for p in corpus], [features for features, _ in samples])
    measured = np.asarray([latency for _, latency in samples])
    few_shot = error_metrics(held_out_few_shot(q, measured, folds, seed), measured)["mape"]
    direct = error_metrics(direct_held_out, measured)["mape"]
    return {
        "direct_mape": direct,
        "few_shot_mape": few_shot,
        "chosen": "few-shot" if few_shot < direct else "direct",
        "data": f"{folds}-fold cross-validation of both fits on the same folds (seed {seed})",
    }


def few_shot_fit(
    samples: list[tuple[Any, float]], source: str
) -> tuple[LatencyModel, dict[str, Any], dict[str, Any]]:
    """(model, validation, sections) of a few-shot fit: the new device as a combination of the
    latency-corpus devices (`nas.latency._fewshot`), its error by (nested) leave-one-out. Every kind of
    the measured graphs must be one the corpus devices measured: the combination has nothing else to
    learn from, and the prior would count such a kind twice."""
    from nas.latency._fewshot import fit_few_shot

    corpus = _corpus_prior(samples, source)
    fit = fit_few_shot({p.name: p.latency_model for p in corpus}, samples)
    used = {name: a for name, a in fit.coefficients.items() if a > 0}
    data = (
        f"{'nested ' if fit.nested else ''}leave-one-out over the {len(samples)} measured graphs; few-shot: a "
        f"combination of the {len(corpus)} latency-corpus devices (ridge {fit.ridge:g})"
    )
    validation = {
        **error_metrics(fit.loo_predictions, fit.measured),
        "data": data,
        "few_shot": {"coefficients": used, "extra_overhead_ms": fit.extra_overhead_ms},
    }
    known = _corpus_kinds(corpus)
    coverage = Coverage(
        kinds={k: {"nodes": 0} for k in KINDS if known.covers(k)},
        source="the kinds the latency-corpus devices measured (few-shot prior)",
    )
    ratios = fit.measured / np.maximum(fit.loo_predictions, 1e-9)
    sections = {
        "coverage": coverage.to_dict(),
        "interval": conformal_interval(ratios, data=f"{data}: measured/predicted").to_dict(),
    }
    return fit.model, validation, sections


def fit_profile(
    csv_path: str | Path,
    name: str,
    *,
    description: str | None = None,
    latency: str = "predicted",
    folds: int = 5,
    seed: int = 0,
    prior_reference: str | None = "x86-cpu",
    few_shot: bool | None = None,
) -> dict[str, Any]:
    """A profile dict (see `write_profile`) fitted on every row, with k-fold cross-validated error,
    coverage, interval and (for a predicted profile) a prior from `prior_reference`. With fewer than
    `FEW_SHOT_BELOW` rows (or `few_shot`), a few-shot fit (`few_shot_fit`) instead; up to
    `FEW_SHOT_COMPARE_MAX` rows (`few_shot` None), whichever of the two cross-validates better
    (`compare_with_few_shot`, recorded as ``validation.selection``)."""
    csv_path = Path(csv_path)
    samples = measurement_samples(csv_path)
    automatic = few_shot is None
    few_shot = len(samples) < FEW_SHOT_BELOW if automatic else few_shot
    if few_shot and len(samples) < FEW_SHOT_MIN:
        raise NasError(
            f"{csv_path}: {len(samples)} measurements are too few even for a few-shot fit "
            f"({FEW_SHOT_MIN} at least)"
        )
    if not few_shot and len(samples) < 2 * folds:
        raise NasError(
            f"{csv_path}: {len(samples)} measurements are too few to fit and cross-validate ({2 * folds} at least)"
        )
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
        f"bundle of space {meta.get('bundle', {}).get('space', '?')} seed {meta.get('bundle', {}).get('seed', '?')}"
        + (f"; each graph paired with the reference {meta['reference']}." if meta.get("reference") else ".")
    )
    selection = None
    if not few_shot:
        x, y = sample_matrix(samples)
        graph_term, held_out, term_choice = choose_graph_term(x, y, folds, seed)
        model = fit_matrix(x, y, graph_term=graph_term)
        data = f"{folds}-fold cross-validation over the {len(samples)} measured graphs"
        validation, sections, held_out = fit_sections(
            samples,
            model,
            folds,
            seed,
            data,
            prior_reference=prior_reference if latency == "predicted" else None,
            predicted=held_out,
        )
        validation["whole_graph_term"] = term_choice
        if automatic and len(samples) <= FEW_SHOT_COMPARE_MAX:
            selection = compare_with_few_shot(samples, held_out, folds, seed, str(csv_path))
            few_shot = selection is not None and selection["chosen"] == "few-shot"
    if few_shot:
        model, validation, sections = few_shot_fit(samples, str(csv_path))
        if latency == "predicted" and prior_reference is not None:
            sections.update(
                prior_section(model, Coverage.from_dict(sections["coverage"]), samples, prior_reference)
            )
    if selection is not None:
        validation["selection"] = selection
    profile = {
        "name": name,
        "description": description
        or f"latency predicted from {len(samples)} graphs measured on {meta.get('cpu', 'the device')}",
        "latency": latency,
        "runtime": runtime,
        "provenance": provenance,
        "model": model.to_dict(),
        "validation": validation,
        "measurements": {
            "path": str(csv_path.resolve()),
            "format": "onnx_measurements",
            "rows": len(samples),
        },
        **sections,
    }
    if meta.get("cpu"):  # the machine it belongs to (nas.latency._machine)
        profile["machine"] = {
            "cpu": meta["cpu"],
            "isa": meta.get("isa"),
            "cores": meta.get("cores"),
            "onnxruntime": meta.get("onnxruntime"),
            "provider": runtime["execution_provider"],
            "machine": meta.get("machine"),
        }
    measurement = {
        k: settings[k]
        for k in ("warmup_runs", "rounds", "round_ms", "max_spread", "max_attempts", "batch_size")
        if k in settings
    }
    if measurement:
        profile["measurement"] = measurement
    return profile


def predict_models(profile: HardwareProfile, models: list[str | Path]) -> list[dict[str, Any]]:
    """One row per model: the prediction with its interval and what of it is extrapolated."""
    _require_model(profile)
    out = []
    for path in models:
        if not Path(path).is_file():
            raise NasError(f"ONNX model not found: {path}")
        out.append({"model": str(path), "profile": profile.name, **profile.predict(path).to_dict()})
    return out


def validate_on_measurements(profile: HardwareProfile, csv_path: str | Path) -> dict[str, Any]:
    """Held-out error of the profile's model on measurements it was not fitted on."""
    model = _require_model(profile)
    samples = measurement_samples(csv_path)
    predicted = [model.predict(features) for features, _ in samples]
    return {**error_metrics(predicted, [latency for _, latency in samples]), "data": str(csv_path)}


def _require_model(profile: HardwareProfile):
    if profile.latency_model is None:
        raise NasError(
            f"profile {profile.name!r} has no latency model: fit one with `nas profile fit` or `nas profile import`"
        )
    return profile.latency_model
