"""`--latency hybrid`: predict every candidate, measure on the device those that train, refit as it goes.

A pool of candidates is screened by the profile's latency model (milliseconds each, no export). The
candidates chosen for training (so every member of the Pareto front, which is made of trained
candidates) are exported on the workers and measured on the device node (`DeviceMeasurer`), and on the
node of every other device of the fleet (`--budget`) that has one, whose budget then judges the
measurement instead of the prediction. Each measurement on a device refits that device's model
(`OnlineCalibration`; a fleet device's then screens the next pools for its budget): the profile's model
is the prior, every weight times a fitted multiplier and the overhead refitted
(`nas.latency.calibrate_model`), so a few measurements correct a model fitted on another machine, or a
wrong one, without forgetting what the prior knew of kinds the measurements hardly exercise. A trained
candidate's latency (its objective) is the measurement; its trial also records what the model predicted
before measuring it (`latency_predicted_ms`) and how many device measurements that model was refitted on
(`latency_calibrated_on`), which makes the prediction error as the search went on a prospective,
held-out error.

Faults: a device node that leaves falls back to the prediction after `--device-timeout`: the trial
trains with the predicted latency, marked `latency_source = fallback` (`latency_source@PROFILE` for a
fleet device). A graph the device cannot measure
while its node is alive fails its trial with the reason, as with `--latency device`.

A resumed run refits from the device measurements of its trials (`calibration_samples`), in trial
order, so it predicts as the interrupted driver would have (the prior model is in the run's fingerprints:
a resume with another one is refused); `profile_from_run` saves that calibration as a profile (`nas
profile fit --from-run RUN_DIR`), and `latencies_as_the_run` gives other networks (`nas baselines`)
their latency from the run's device.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

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
from nas.records import Attr, fleet_key
from nas.search._candidate import Candidate
from nas.search._constraints import DeviceBudget
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
        export: Callable[[Sequence[Candidate]], Iterable[tuple[Candidate, bytes]]],
        budget_ms: float | None,
        fleet: Sequence[Any] = (),
        trials: Iterable[Any] = (),
    ):
        """export: the candidates' untrained ONNX graphs, as the workers export them to measure
        (`export_untrained`); a candidate it cannot export is left out (its trial failed there). fleet: the
        search's constraints, of which the budgets whose device has a node (`DeviceBudget.measurer`) are
        measured there too. trials: the study's trials so far (a resumed run refits from their device
        measurements)."""
        self.measurer, self.featurizer, self.export = measurer, featurizer, export
        self.budget_ms = budget_ms
        self.fleet = [c for c in fleet if getattr(c, "measurer", None) is not None]
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

    @staticmethod
    def calibrated_fleet(constraints: Sequence[Any], trials: Iterable[Any], featurizer: Any) -> tuple:
        """The search's constraints with an `OnlineCalibration` on each fleet budget whose device has a node,
        refitted from the measurements a resumed run already has there: its pool candidates are then
        predicted by that device's model as its measurements correct it, as the search's own device is."""
        trials = list(trials)
        fleet = []
        for constraint in constraints:
            if isinstance(constraint, DeviceBudget) and constraint.measurer is not None:
                calibration = OnlineCalibration(constraint.profile)
                for features, measured_ms in calibration_samples(trials, featurizer, constraint.profile.name):
                    calibration.add(features, measured_ms)
                constraint = dataclasses.replace(constraint, calibration=calibration)
            fleet.append(constraint)
        return tuple(fleet)

    def measure(self, chosen: Sequence[Candidate]) -> list[tuple[Candidate, str | None]]:
        """Export the chosen candidates and measure them on the device (and on the fleet's device nodes),
        each measurement refitting the model; (candidate, why its trial fails or None) in their order,
        less those that could not be exported. A device gone for --device-timeout leaves each its
        prediction, marked `fallback`."""
        exported = list(self.export(chosen))
        order = {id(cand): i for i, cand in enumerate(chosen)}
        exported.sort(key=lambda item: order[id(item[0])])
        cands, graphs = [cand for cand, _ in exported], [graph for _, graph in exported]
        outcomes: dict[int, str | None] = {}
        for budget in self.fleet:  # the other devices first, as with --latency device
            for index, out, reason in budget.measurer.measure_all(graphs):
                failure = self._outcome(cands[index], out, reason, budget.measurer, budget.profile.name)
                if out is not None:
                    self._drop_prediction(cands[index], budget.profile.name)
                    cands[index].attrs.update(budget.measured_attrs(out))
                    if budget.calibration is not None:  # that device's model refitted, as the own one is
                        budget.calibration.add(self.featurizer.features(cands[index].arch), out["median_ms"])
                if failure is not None:
                    outcomes.setdefault(index, f"on {budget.profile.name}: {failure}")
        for index, out, reason in self.measurer.measure_all(graphs):
            failure = self._outcome(cands[index], out, reason, self.measurer, None)
            if out is not None:
                self._record(cands[index], out)
            outcomes.setdefault(index, failure)
        return [(cand, outcomes[i]) for i, cand in enumerate(cands)]

    @staticmethod
    def _outcome(cand: Candidate, out: Any, reason: str | None, measurer: DeviceMeasurer, fleet: str | None):
        """Why the candidate's trial fails (a graph the device refused while its node is there), or None: a
        measurement, or a device gone for --device-timeout whose prediction stands, marked `fallback`."""
        if out is not None:
            return None
        if measurer.nodes():
            return reason
        cand.attrs[fleet_key(Attr.LATENCY_SOURCE, fleet) if fleet else Attr.LATENCY_SOURCE] = FALLBACK
        where = f" on {fleet}" if fleet else ""
        log.warning(f"trial {cand.trial.number}: predicted latency{where} kept ({reason})")
        return None

    @staticmethod
    def _drop_prediction(cand: Candidate, profile_name: str) -> None:
        for key in (Attr.LATENCY_LOW_MS, Attr.LATENCY_HIGH_MS):
            cand.attrs.pop(fleet_key(key, profile_name), None)

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


def calibration_samples(
    trials: Iterable[Any], featurizer: Any, fleet: str | None = None
) -> list[tuple[Any, float]]:
    """(GraphFeatures, measured ms) of every trial measured on the device node (one per architecture: a
    duplicate repeats its original's), in trial order; `fleet`: on that fleet device's node instead.
    `trials`: Optuna FrozenTrials."""
    from nas.space import Architecture

    source_key = fleet_key(Attr.LATENCY_SOURCE, fleet) if fleet else Attr.LATENCY_SOURCE
    latency_key = fleet_key(Attr.LATENCY_MS, fleet) if fleet else Attr.LATENCY_MS
    samples = []
    for trial in sorted(trials, key=lambda t: t.number):
        attrs = trial.user_attrs
        if attrs.get(source_key) != DEVICE or attrs.get(Attr.DUPLICATE_OF) is not None:
            continue
        arch = Architecture.from_dict(attrs[Attr.ARCHITECTURE])
        samples.append((featurizer.features(arch), float(attrs[latency_key])))
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


def latencies_as_the_run(
    run_dir: str | Path, config: dict[str, Any], profile: HardwareProfile, executor: Any, archs: Sequence[Any]
) -> tuple[list[dict[str, Any]], str] | None:
    """The latencies of `archs` (untrained, exported as the search exports them) from the source of a run
    whose latency came from a device node (`--latency device` or `hybrid`; None for other runs): measured
    on a node that advertises the profile in the executor's cluster now; else, with the line that says so,
    predicted by the profile's model calibrated on the run's device measurements, or, for a profile with
    no model, measured here. Returns ([{latency_ms, latency_spread, latency_source, latency_host}], that
    line)."""
    from nas.latency import ArchitectureFeaturizer, device_resource, measure_latency
    from nas.search._device_nodes import device_present
    from nas.search._study import load_run_study
    from nas.search._tasks import export_untrained

    if config.get("latency_mode") not in (DEVICE, "hybrid"):
        return None
    classes = len(config["preprocessing"]["classes"])

    def graphs() -> list[bytes]:
        return [export_untrained(arch, classes, config["search"]["seed"]) for arch in archs]

    why = f"no Ray node advertises {device_resource(profile.name)!r} now"
    if device_present(executor, profile.name):
        timeout_s = config["search"]["device_timeout"]
        measurer = DeviceMeasurer(executor.ray, profile.name, profile.measurement, timeout_s)
        found = sorted(measurer.measure_all(graphs()), key=lambda item: item[0])
        failed = [reason for _, out, reason in found if out is None]
        if not failed:
            hosts = ", ".join(sorted({out["host"] for _, out, _ in found}))
            line = f"latency: measured on the device node {measurer.resource!r} (host {hosts}), as the run's"
            return [_entry(out["median_ms"], out["spread"], DEVICE, out["host"]) for _, out, _ in found], line
        why = f"the device node could not measure them: {failed[0]}"
    if profile.latency_model is None:
        line = f"latency: measured on this machine, not on the run's device ({why})"
        measured = [measure_latency(graph, profile.measurement) for graph in graphs()]
        return [_entry(m.median_ms, m.spread, "measured", None) for m in measured], line
    featurizer = ArchitectureFeaturizer(classes)
    calibration = OnlineCalibration(profile)
    for features, measured_ms in calibration_samples(load_run_study(Path(run_dir)).get_trials(), featurizer):
        calibration.add(features, measured_ms)
    line = (
        f"latency: predicted by {profile.name}'s model calibrated on the run's {len(calibration.samples)} "
        f"device measurements, not measured on the device ({why})"
    )
    predicted = [calibration.predict(featurizer.features(arch)).latency_ms for arch in archs]
    return [_entry(ms, None, "predicted", None) for ms in predicted], line


def _entry(latency_ms: float, spread: float | None, source: str, host: str | None) -> dict[str, Any]:
    return {
        "latency_ms": latency_ms,
        "latency_spread": spread,
        "latency_source": source,
        "latency_host": host,
    }
