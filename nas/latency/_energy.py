"""Energy per inference, predicted like latency: a profile's optional ``energy`` section.

A device whose block table also measured energy (HW-NAS-Bench's Jetson TX2 table: ``energy_mJ``, the
board's power rail times the time, per image at batch 1) gets an energy model fitted exactly as its
latency model is: the same graph features and operator kinds, one per-inference overhead (in mJ,
counted once per network) plus non-negative weights, fitted by relative-error NNLS on one sample per
block configuration (`nas.latency._block_samples`), with its own ``validation`` (k-fold), ``coverage``
and 90% conformal ``interval`` from the held-out predictions::

    energy:
      model: {overhead_mj: 2.1, weights: {conv_depthwise_k3_l.count: 0.16, ...}}
      validation: {mape: ..., within_10pct: ..., kendall_tau: ..., n: 212, folds: 5, ...}
      coverage: {...}            # as the latency coverage
      interval: {level: 0.9, low: ..., high: ..., n: 212, data: ...}
      power_w: {median: 6.0, low: 5.4, high: 8.9, level: 0.9, n: 212, data: ...}
      measurements: {column: energy_mJ, rows: 404, units: ..., provenance: ...}

**Coverage rules are latency's.** A kind the energy data never contains is priced by the profile's
latency (its own model where the latency data covers the kind, else the latency prior) times the
device's median power (``power_w``: measured energy over measured latency of the same blocks), and
marked extrapolated; its interval is the latency interval (or the prior's) times the spread of that
power (``power_w.low/high`` over the median). A kind neither prices is an error naming it. The search
refuses a space whose kinds the energy data lacks unless ``--allow-extrapolation``, as for latency.

Fitting the section from a table: `nas.latency._energy_fit`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from nas.errors import NasError
from nas.latency._coverage import Coverage
from nas.latency._model import LatencyModel
from nas.latency._prediction import Interval, LatencyPrediction, Predictor, Prior

ENERGY_COLUMN = "energy_mJ"  # the block-table column (HW-NAS-Bench's per-device files)
UNIQUE_BLOCKS_ENERGY = {"edgegpu": "edgegpu_energy_mJ"}  # measured energy columns of the unique-blocks file
SECTION_KEYS = ("model", "validation", "coverage", "interval", "power_w", "measurements")


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@dataclass(frozen=True)
class Power:
    """The device's power while it runs blocks: measured energy / measured latency, in watts (mJ/ms)."""

    median: float
    low: float
    high: float
    level: float
    n: int
    data: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "Power":
        if not isinstance(data, dict):
            raise NasError(f"must be a mapping with median, low, high, level, n; got {data!r}")
        for key in ("median", "low", "high", "level", "n"):
            if key not in data:
                raise NasError(f"{key}: missing required field")
        for key in ("median", "low", "high"):
            if not _positive(data[key]):
                raise NasError(f"{key}: must be a positive number of watts, got {data[key]!r}")
        if not data["low"] <= data["median"] <= data["high"]:
            raise NasError(f"median: must lie in [low, high], got {data['median']!r}")
        if not (_positive(data["level"]) and data["level"] < 1):
            raise NasError(f"level: must be a fraction in (0, 1), got {data['level']!r}")
        if not isinstance(data["n"], int) or isinstance(data["n"], bool) or data["n"] < 1:
            raise NasError(f"n: must be a positive integer, got {data['n']!r}")
        return cls(
            median=float(data["median"]),
            low=float(data["low"]),
            high=float(data["high"]),
            level=float(data["level"]),
            n=data["n"],
            data=str(data.get("data", "")),
        )


@dataclass(frozen=True)
class EnergySection:
    """A profile's ``energy`` section (module docstring): the model in mJ and what makes it honest."""

    model: LatencyModel  # its overhead and weights are in mJ (the latency model's arithmetic)
    coverage: Coverage
    interval: Interval | None
    power: Power
    validation: dict | None = None
    measurements: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": {
                "overhead_mj": self.model.overhead_ms,
                "weights": dict(sorted(self.model.weights.items())),
            }
        }
        if self.validation is not None:
            out["validation"] = dict(self.validation)
        out["coverage"] = self.coverage.to_dict()
        if self.interval is not None:
            out["interval"] = self.interval.to_dict()
        out["power_w"] = self.power.to_dict()
        if self.measurements is not None:
            out["measurements"] = dict(self.measurements)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "EnergySection":
        """The inverse of `to_dict`; errors are `NasError`s naming the field (``model.overhead_mj``)."""
        if not isinstance(data, dict):
            raise NasError(f"must be a mapping with {', '.join(SECTION_KEYS)}; got {data!r}")
        for key in data:
            if key not in SECTION_KEYS:
                raise NasError(f"{key}: unknown key; expected one of: {', '.join(SECTION_KEYS)}")
        for key in ("model", "coverage", "power_w"):
            if key not in data:
                raise NasError(f"{key}: missing required field")
        model = data["model"]
        if not isinstance(model, dict) or set(model) != {"overhead_mj", "weights"}:
            raise NasError(f"model: must be a mapping with overhead_mj and weights, got {model!r}")
        if not isinstance(model["weights"], dict):
            raise NasError("model.weights: must be a mapping of kind.feature to a number")
        try:
            energy_model = LatencyModel(overhead_ms=model["overhead_mj"], weights=dict(model["weights"]))
        except NasError as error:
            raise NasError(f"model.{str(error).replace('overhead_ms', 'overhead_mj')}") from None
        parsed = {}
        for key, parse in (("coverage", Coverage.from_dict), ("interval", Interval.from_dict)):
            if data.get(key) is not None:
                try:
                    parsed[key] = parse(data[key])
                except NasError as error:
                    raise NasError(f"{key}.{error}") from None
        try:
            power = Power.from_dict(data["power_w"])
        except NasError as error:
            raise NasError(f"power_w.{error}") from None
        validation = data.get("validation")
        if validation is not None and not (isinstance(validation, dict) and _positive(validation.get("n"))):
            raise NasError(
                f"validation: must be a mapping with the cross-validated error and n, got {validation!r}"
            )
        measurements = data.get("measurements")
        if measurements is not None and not isinstance(measurements, dict):
            raise NasError(f"measurements: must be a mapping, got {measurements!r}")
        return cls(
            model=energy_model,
            coverage=parsed["coverage"],
            interval=parsed.get("interval"),
            power=power,
            validation=validation,
            measurements=measurements,
        )


@dataclass(frozen=True)
class EnergyPrediction:
    """One predicted energy per inference (mJ), with its interval and the share extrapolated."""

    energy_mj: float
    low_mj: float | None
    high_mj: float | None
    level: float | None
    extrapolated_mj: float
    uncovered: tuple[str, ...]
    out_of_range: tuple[str, ...]

    @classmethod
    def of(cls, prediction: LatencyPrediction) -> "EnergyPrediction":
        """The `Predictor`'s answer, whose arithmetic is the latency one's, in mJ."""
        return cls(
            energy_mj=prediction.latency_ms,
            low_mj=prediction.low_ms,
            high_mj=prediction.high_ms,
            level=prediction.level,
            extrapolated_mj=prediction.extrapolated_ms,
            uncovered=prediction.uncovered,
            out_of_range=prediction.out_of_range,
        )

    @property
    def extrapolated_share(self) -> float:
        return self.extrapolated_mj / self.energy_mj if self.energy_mj > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "energy_mj": self.energy_mj,
            "low_mj": self.low_mj,
            "high_mj": self.high_mj,
            "level": self.level,
            "extrapolated_share": self.extrapolated_share,
            "uncovered_kinds": list(self.uncovered),
            "out_of_range": list(self.out_of_range),
        }


def energy_predictor(
    name: str,
    energy: EnergySection,
    latency_model: LatencyModel,
    latency_coverage: Coverage,
    latency_interval: Interval | None,
    latency_prior: Prior | None,
) -> Predictor:
    """The energy model with its coverage and interval, and a prior for the kinds its data lacks: the
    profile's latency price of those kinds (its model's, else its prior's) times the median power."""
    power = energy.power
    spread = (power.low / power.median, power.high / power.median)
    weights: dict[str, float] = {}
    bounds: list[tuple[float, float]] = []
    levels = [power.level]
    own = {c: w for c, w in latency_model.weights.items() if not energy.coverage.covers(c.partition(".")[0])}
    own = {c: w for c, w in own.items() if latency_coverage.covers(c.partition(".")[0])}
    if own and latency_interval is not None:
        weights.update(own)
        bounds.append((latency_interval.low, latency_interval.high))
        levels.append(latency_interval.level)
    if latency_prior is not None:
        borrowed = {c: w for c, w in latency_prior.weights.items() if c not in weights}
        borrowed = {c: w for c, w in borrowed.items() if not energy.coverage.covers(c.partition(".")[0])}
        if borrowed:
            weights.update(borrowed)
            bounds.append((latency_prior.interval.low, latency_prior.interval.high))
            levels.append(latency_prior.interval.level)
    prior = None
    if weights:
        low = min(b[0] for b in bounds) * spread[0]
        high = max(b[1] for b in bounds) * spread[1]
        interval = Interval(
            level=min(levels),
            low=low,
            high=high,
            n=power.n,
            data="the latency price's interval times the spread of the device's power",
        )
        prior = Prior(
            reference="latency x median power",
            scale=power.median,
            interval=interval,
            weights={c: w * power.median for c, w in weights.items()},
        )
    return Predictor(f"{name} (energy)", energy.model, energy.coverage, energy.interval, prior)
