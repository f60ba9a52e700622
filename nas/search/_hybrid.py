"""`--latency hybrid`: predict every candidate, measure on the device those that train, refit as it goes.

A pool of candidates is screened by the profile's latency model (milliseconds each, no export). The
candidates chosen for training (so every member of the Pareto front, which is made of trained
candidates) are exported and measured on the device node (`DeviceMeasurer`), and each measurement
refits the model (`OnlineCalibration`): the profile's model is the prior, every weight times a fitted
multiplier and the overhead refitted (`nas.latency.calibrate_model`), so a few measurements correct a
model fitted on another machine, or a wrong one, without forgetting what the prior knew of kinds the
measurements hardly exercise. A trained candidate's latency (its objective) is the measurement; its
trial also records what the model predicted before measuring it (`latency_predicted_ms`) and how many
device measurements that model was refitted on (`latency_calibrated_on`), which makes the prediction
error as the search went on a prospective, held-out error.

Faults: a device node that leaves falls back to the prediction after `--device-timeout`: the trial
trains with the predicted latency, marked `latency_source = fallback`. A graph the device cannot measure
while its node is alive fails its trial with the reason, as with `--latency device`.

A resumed run refits from the device measurements of its trials (`calibration_samples`), in trial
order, so it predicts as the interrupted driver would have; `profile_from_run` saves that calibration
as a profile (`nas profile fit --from-run RUN_DIR`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

from nas._io import read_json
from nas.errors import NasError
from nas.latency import (
    HardwareProfile,
    LatencyPrediction,
    Predictor,
    calibrate_model,
    calibrated_profile,
    conformal_interval,
)
from nas.records import Attr
from nas.search._candidate import Candidate
from nas.search._device_nodes import DeviceMeasurer, device_attrs

log = logging.getLogger(__name__)

DEVICE = "device"  # latency_source of a latency measured on the device node
FALLBACK = "fallback"  # latency_source of a prediction that stands in for a device that left
INTERVAL_FROM = 5  # device measurements from which the interval is the calibration's own
INTERVAL_WINDOW = 20  # ... conformal on the held-out ratios of the last INTERVAL_WINDOW measurements
# What a measurement replaces: the prediction's interval and what of it was extrapolated.
_PREDICTION_ONLY = (
    Attr.LATENCY_LOW_MS,
    Attr.LATENCY_HIGH_MS,
    Attr.LATENCY_EXTRAPOLATED,
    Attr.LATENCY_STRADDLES_BUDGET,
)


class OnlineCalibration:
    """A profile's latency model refitted on the device's measurements as they arrive."""

    def __init__(self, profile: HardwareProfile):
        self.profile = profile
        self.prior = profile.predictor  # its coverage and prior price what the device never measured
        self.samples: list[tuple[Any, float]] = []  # (GraphFeatures, measured ms), in arrival order
        self.ratios: list[float] = []  # measured / predicted just before each measurement (held out)
        self.predictor = self.prior

    @property
    def model(self):
        return self.predictor.model

    def predict(self, features: Any) -> LatencyPrediction:
        return self.predictor.predict(features)

    def add(self, features: Any, measured_ms: float) -> None:
        """One more device measurement: refit the model (from the prior, on every measurement so far). The
        interval becomes conformal on the measured/predicted ratios of the last measurements, each
        predicted before it was measured (held out, and free: no refit to leave one out)."""
        self.ratios.append(float(measured_ms) / max(self.predict(features).latency_ms, 1e-9))
        self.samples.append((features, float(measured_ms)))
        model = calibrate_model(self.prior.model, self.samples)
        interval = self.prior.interval
        if len(self.samples) >= INTERVAL_FROM:
            recent = self.ratios[-INTERVAL_WINDOW:]
            interval = conformal_interval(
                recent,
                data=f"the last {len(recent)} device measurements of this search, each predicted first",
            )
        self.predictor = Predictor(self.profile.name, model, self.prior.coverage, interval, self.prior.prior)


class HybridLatency:
    """Predicts candidates with the online calibration and measures the chosen ones on the device."""

    def __init__(
        self,
        profile: HardwareProfile,
        measurer: DeviceMeasurer,
        featurizer: Any,
        *,
        num_classes: int,
        seed: int,
        budget_ms: float | None,
        trials: Iterable[Any] = (),
    ):
        """trials: the study's trials so far (a resumed run refits from their device measurements)."""
        self.measurer, self.featurizer = measurer, featurizer
        self.num_classes, self.seed, self.budget_ms = num_classes, seed, budget_ms
        self.calibration = OnlineCalibration(profile)
        for features, measured_ms in calibration_samples(trials, featurizer):
            self.calibration.add(features, measured_ms)

    def predicted_attrs(self, cand: Candidate) -> dict[str, Any]:
        """The latency facts of a prediction by the model as calibrated now."""
        prediction = self.calibration.predict(self.featurizer.features(cand.arch))
        attrs = prediction_attrs(prediction, self.budget_ms)
        attrs[Attr.LATENCY_PREDICTED_MS] = prediction.latency_ms
        attrs[Attr.LATENCY_CALIBRATED_ON] = len(self.calibration.samples)
        return attrs

    def measure(self, chosen: Sequence[Candidate]) -> list[tuple[Candidate, str | None]]:
        """Export the chosen candidates and measure them on the device, each measurement refitting the
        model; (candidate, why its trial fails or None) in their order. A device gone for --device-timeout
        leaves each its prediction, marked `fallback`."""
        outcomes: dict[int, str | None] = {}
        graphs: dict[int, bytes] = {}
        for index, cand in enumerate(chosen):
            try:
                graphs[index] = _export(cand.arch, self.num_classes, self.seed)
            except Exception as exc:  # noqa: BLE001 - the candidate's failure, reported with its trial
                outcomes[index] = f"export: {type(exc).__name__}: {exc}"
        order = sorted(graphs)
        for position, out, reason in self.measurer.measure_all([graphs[i] for i in order]):
            index = order[position]
            cand = chosen[index]
            if out is not None:
                self._record(cand, out)
                outcomes[index] = None
            elif self.measurer.nodes():  # the device is there and could not measure this graph
                outcomes[index] = reason
            else:
                cand.attrs[Attr.LATENCY_SOURCE] = FALLBACK
                log.warning(f"trial {cand.trial.number}: predicted latency kept ({reason})")
                outcomes[index] = None
        return [(cand, outcomes[i]) for i, cand in enumerate(chosen)]

    def _record(self, cand: Candidate, out: dict[str, Any]) -> None:
        for key in _PREDICTION_ONLY:
            cand.attrs.pop(key, None)
        cand.attrs.update(device_attrs(out))
        self.calibration.add(self.featurizer.features(cand.arch), out["median_ms"])


def prediction_attrs(prediction: LatencyPrediction, budget_ms: float | None) -> dict[str, Any]:
    """A trial's latency facts from a prediction: the latency, its interval, the extrapolated share, and
    whether the interval holds the budget (a candidate to verify on the device)."""
    attrs = {
        Attr.LATENCY_MS: prediction.latency_ms,
        Attr.LATENCY_SOURCE: "predicted",
        Attr.LATENCY_LOW_MS: prediction.low_ms,
        Attr.LATENCY_HIGH_MS: prediction.high_ms,
        Attr.LATENCY_EXTRAPOLATED: round(prediction.extrapolated_share, 4),
    }
    if budget_ms is not None and prediction.straddles(budget_ms):
        attrs[Attr.LATENCY_STRADDLES_BUDGET] = True
    return attrs


def calibration_samples(trials: Iterable[Any], featurizer: Any) -> list[tuple[Any, float]]:
    """(GraphFeatures, measured ms) of every trial measured on the device node (one per architecture: a
    duplicate repeats its original's), in trial order. `trials`: Optuna FrozenTrials."""
    from nas.space import Architecture

    samples = []
    for trial in sorted(trials, key=lambda t: t.number):
        attrs = trial.user_attrs
        if attrs.get(Attr.LATENCY_SOURCE) != DEVICE or attrs.get(Attr.DUPLICATE_OF) is not None:
            continue
        arch = Architecture.from_dict(attrs[Attr.ARCHITECTURE])
        samples.append((featurizer.features(arch), float(attrs[Attr.LATENCY_MS])))
    return samples


def profile_from_run(run_dir: str | Path, name: str) -> dict[str, Any]:
    """The run's profile calibrated on the device measurements of its search (hybrid, or device): in a
    hybrid search, the model its driver ended with, with its leave-one-out error
    (`nas.latency.calibrated_profile`). A profile dict for `nas.latency.write_profile`; a run with too
    few device measurements is a one-line `NasError`."""
    from nas.latency import ArchitectureFeaturizer, load_profile
    from nas.search._study import load_run_study

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "study.db").is_file():
        raise NasError(f"--from-run {run_dir}: not a nas run directory (no config.json and study.db)")
    config = read_json(run_dir / "config.json", "run configuration")
    try:
        profile_ref = config["search"]["profile"]
        classes = len(config["preprocessing"]["classes"])
    except (KeyError, TypeError):
        raise NasError(f"{run_dir / 'config.json'}: not the configuration of a nas search") from None
    prior = load_profile(profile_ref)
    trials = load_run_study(run_dir).get_trials(deepcopy=False)
    samples = calibration_samples(trials, ArchitectureFeaturizer(classes))
    hosts = sorted({str(t.user_attrs.get(Attr.LATENCY_HOST)) for t in trials if _measured(t)})
    data = f"the {len(samples)} device measurements of the search {run_dir.name}"
    if not samples:
        raise NasError(
            f"--from-run {run_dir}: no latency of this run was measured on a device node (a search with "
            "--latency hybrid or device measures them)"
        )
    return calibrated_profile(
        prior,
        samples,
        name=name,
        data=data,
        provenance=f"Calibrated by `nas profile fit --from-run` on the measurements of host(s) "
        f"{', '.join(hosts)} in the search {run_dir.name}.",
    )


def _measured(trial: Any) -> bool:
    return trial.user_attrs.get(Attr.LATENCY_SOURCE) == DEVICE


def _export(arch: Any, num_classes: int, seed: int) -> bytes:
    """The untrained network's ONNX graph, as the workers export it to measure (fast exporter)."""
    from nas.builder import build_model
    from nas.onnx_io import export_onnx

    return export_onnx(build_model(arch, num_classes, seed=seed), arch.resolution, fast=True)
