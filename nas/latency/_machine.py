"""A local profile belongs to a machine: the check before predicting, and calibration.

A model fitted on one CPU predicts that CPU. ONNX Runtime picks different kernels by instruction set
(AVX-512, AVX2, NEON), so the same "AMD EPYC" name can hide a 2-5x difference. A profile records the
`machine_signature` of the machine that measured it (`nas.latency._signature`: CPU name, the ISA flags
that change kernels, ONNX Runtime version, execution provider). Predicting with a local profile
(``latency: measured``) on a machine whose signature differs uses a calibrated copy from the user's
profile folder when there is one; otherwise it refuses, or `calibrate_profile` measures a few random
networks and their blocks here and refits:

**Calibration** keeps the shipped model as the prior: every weight is multiplied by a fitted factor and
the overhead refitted (`calibrate_model`), by relative-error NNLS whose factors are pulled toward the
median measured/predicted ratio (a ridge row of weight `STRENGTH` each), so a weight the few networks
hardly exercise keeps the shipped relative cost. (One factor per kind family instead did worse on the
networks measured here: `benchmarks/latency_calibration.py`.) The blocks tell each operator's cost on
this machine, which a few whole networks cannot separate. Its error is over the measured networks, each
held out with the blocks it introduced (`calibrated_with_held_out`), and its interval is conformal on
those held-out ratios.

The measurements are **paired** by default (`nas.latency._measure.paired_measurements`): every graph is
measured between two measurements of a reference network (the bundle's network of median MACs) and read
relative to them, so that a phase in which the machine runs slower (a shared virtual machine drifts by tens
of percent within minutes) cancels instead of being learnt as the cost of whatever was measured in it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._bundle import bundle_groups, bundle_models, bundle_reference, measure_bundle, write_bundle
from nas.latency._model import LatencyModel, conv_nodes, error_metrics, fold_splits, nnls
from nas.latency._prediction import conformal_interval
from nas.latency._signature import (  # noqa: F401 (SIGNATURE_KEYS, user_profile_dir: re-exported)
    SIGNATURE_KEYS,
    machine_signature,
    signature_differences,
    signature_key,
    user_profile_dir,
)

STRENGTH = 0.03  # ridge weight per multiplier, in units of one network's squared relative error


def calibrated_path(profile, here: dict | None = None) -> Path:
    here = here or machine_signature(profile.measurement.execution_provider)
    return user_profile_dir() / f"{profile.name}.calibrated-{signature_key(here)}.yaml"


def local_profile(profile, *, calibrate: bool = False, progress: Callable[[int, int], None] | None = None):
    """The profile to predict this machine with: `profile` itself when it was measured here (or records
    no machine: a profile from before signatures, taken as it is), else its calibrated copy for this
    machine, made now when `calibrate`; otherwise a one-line `NasError` saying what differs."""
    from nas.latency._profile_lookup import load_profile

    if profile.latency != "measured" or profile.machine is None:
        return profile
    here = machine_signature(profile.measurement.execution_provider)
    differences = signature_differences(profile.machine, here)
    if not differences:
        return profile
    path = calibrated_path(profile, here)
    if path.is_file():
        return load_profile(path)
    if not calibrate:
        raise NasError(
            f"profile {profile.name!r} was measured on another machine ({'; '.join(differences)}): its "
            f"predictions are that machine's; run `nas profile calibrate --profile {profile.name}` (a few "
            "minutes) or use --latency measured"
        )
    return load_profile(calibrate_profile(profile, progress=progress))


def calibrate_model(
    prior: LatencyModel, samples: Sequence[tuple[Any, float]], strength: float = STRENGTH
) -> LatencyModel:
    """The prior's weights, each times a fitted multiplier, and a fitted overhead (see the module
    docstring). `samples`: (GraphFeatures, measured ms) of this machine."""
    from nas.latency._features import COLUMNS

    columns = [c for c in COLUMNS if prior.weights.get(c, 0.0) > 0]
    y = np.asarray([latency for _, latency in samples], dtype=np.float64)
    # each column: the milliseconds the prior gives that weight in each network (multiplier 1 = the prior);
    # the whole-graph term, when the prior has one, is the last column
    design = np.stack([features.vector(columns) for features, _ in samples]) * np.array(
        [prior.weights[c] for c in columns]
    )
    if prior.conv_log_ms:
        graph = [prior.conv_log_ms * math.log1p(conv_nodes(features)) for features, _ in samples]
        design = np.hstack([design, np.asarray(graph)[:, None]])
    scale = float(np.median(y / np.maximum(design.sum(axis=1) + prior.overhead_ms, 1e-12)))
    relative = np.hstack([np.ones((len(y), 1)), design]) / y[:, None]
    terms = design.shape[1]
    ridge = np.sqrt(strength) * np.hstack([np.zeros((terms, 1)), np.eye(terms)])
    solution = nnls(
        np.vstack([relative, ridge]),
        np.concatenate([np.ones(len(y)), np.full(terms, np.sqrt(strength) * scale)]),
    )
    return LatencyModel(
        overhead_ms=float(solution[0]),
        weights={c: prior.weights[c] * m for c, m in zip(columns, solution[1:]) if m > 0},
        conv_log_ms=prior.conv_log_ms * float(solution[-1]) if prior.conv_log_ms else 0.0,
    )


def leave_one_out(
    prior: LatencyModel, samples: Sequence[tuple[Any, float]], strength: float = STRENGTH
) -> np.ndarray:
    """Each sample's prediction by the calibration fitted on all the others."""
    return np.asarray(
        [
            calibrate_model(prior, [s for j, s in enumerate(samples) if j != i], strength).predict(
                samples[i][0]
            )
            for i in range(len(samples))
        ]
    )


HELD_OUT_FOLDS = 10  # above this many samples, held-out predictions come from 10 folds, not one per sample
LEAVE_ONE_OUT_MAX = 60


def calibrated_with_held_out(
    prior: LatencyModel,
    samples: Sequence[tuple[Any, float]],
    groups: Sequence[int] | None = None,
    strength: float = STRENGTH,
) -> tuple[LatencyModel, np.ndarray]:
    """The calibration on every sample, and each sample's prediction by a calibration that did not see
    its group (`groups[i]`: default, each sample its own). A network and the blocks it introduced form
    one group, so a held-out network is predicted without its own blocks' measurements, as a new
    network would be. Leave-one-group-out up to `LEAVE_ONE_OUT_MAX` groups, else `HELD_OUT_FOLDS` folds
    of groups (`fold_splits`), so hundreds of bundle graphs stay seconds."""
    model = calibrate_model(prior, samples, strength)
    group_of = np.asarray(range(len(samples)) if groups is None else groups)
    names = np.unique(group_of)
    folds = (
        [names[i : i + 1] for i in range(len(names))]
        if len(names) <= LEAVE_ONE_OUT_MAX
        else [names[f] for f in fold_splits(len(names), HELD_OUT_FOLDS, seed=0)]
    )
    predicted = np.empty(len(samples))
    for fold in folds:
        held_out = np.isin(group_of, fold)
        kept = [s for s, out in zip(samples, held_out) if not out]
        fold_model = calibrate_model(prior, kept, strength)
        predicted[held_out] = [fold_model.predict(samples[j][0]) for j in np.flatnonzero(held_out)]
    return model, predicted


def calibrate_profile(
    profile,
    *,
    space: str = "mobilenet",
    networks: int = 40,
    blocks: bool = True,
    seed: int = 1,
    paired: bool = True,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Measure `networks` random networks of `space` (and, with `blocks`, their blocks) here with the
    profile's protocol (`paired` with the bundle's reference network: twice the measurements), calibrate
    its model (`calibrate_model`) and write the calibrated profile (default: the user's profile folder,
    named for this machine). Its error and interval are the networks' held out with their blocks
    (`calibrated_with_held_out`). Returns its path."""
    # imported here: _profiles imports this module
    from nas.latency._calibrate import measurement_samples, reference_latencies
    from nas.latency._profiles import write_profile

    if profile.latency_model is None:
        raise NasError(f"profile {profile.name!r} has no model to calibrate")
    if networks < 5:
        raise NasError(f"networks: calibration needs at least 5 networks, got {networks}")
    here = machine_signature(profile.measurement.execution_provider)
    target = Path(out) if out is not None else calibrated_path(profile, here)
    with tempfile.TemporaryDirectory(prefix="nas-calibrate-") as folder:
        bundle = write_bundle(space, Path(folder) / "bundle", networks=networks, seed=seed, blocks=blocks)
        reference = bundle_reference(bundle) if paired else None
        csv_path = measure_bundle(
            bundle, profile.measurement, progress or (lambda d, t: None), reference=reference
        )
        samples = measurement_samples(csv_path)
        pairing = (
            {"reference": reference, "reference_ms": float(np.median(reference_latencies(csv_path)))}
            if paired
            else None
        )
        groups = bundle_groups(bundle)
        kinds = [entry["kind"] for entry in bundle_models(bundle)]
    model, held_out = calibrated_with_held_out(profile.latency_model, samples, groups)
    is_network = np.array([kind == "network" for kind in kinds])
    predicted = held_out[is_network]
    measured = np.asarray([latency for _, latency in samples])[is_network]
    shipped = error_metrics(
        [profile.latency_model.predict(f) for (f, _), net in zip(samples, is_network) if net], measured
    )
    how = "leave-one-out" if len(set(groups)) <= LEAVE_ONE_OUT_MAX else f"{HELD_OUT_FOLDS}-fold"
    also = (
        f", calibrated with their {len(samples) - networks} blocks (held out with their network)"
        if blocks
        else ""
    )
    how_measured = (
        "each paired with a reference network (read relative to the reference's measurements beside it)"
        if paired
        else "unpaired"
    )
    data = f"{how} over {networks} random {space} networks measured here, {how_measured}{also}"
    raw = {key: value for key, value in profile.raw.items() if key not in ("measurements", "prior")}
    raw.update(
        {
            "description": f"{profile.description} (calibrated here: {here['cpu']})",
            "provenance": f"{profile.provenance} Calibrated by `nas profile calibrate` on {here['cpu']} "
            f"from {networks} random {space} networks (seed {seed}){' and their blocks' if blocks else ''}, "
            f"{how_measured}; before calibration the model's MAPE on those networks was {shipped['mape']:.1f}%.",
            "machine": here,
            "model": model.to_dict(),
            "validation": {
                **error_metrics(predicted, measured),
                "data": data,
                **({"paired": pairing} if pairing else {}),
            },
            "interval": conformal_interval(
                measured / np.maximum(predicted, 1e-9), data=f"{data}: measured/predicted"
            ).to_dict(),
        }
    )
    return write_profile(raw, target)
