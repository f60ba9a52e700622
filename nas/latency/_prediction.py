"""A profile's prediction with what it knows and does not: intervals, coverage and a prior.

`Predictor.predict` gives a `LatencyPrediction`: the point estimate, a prediction interval, and the
share of it that is extrapolated. Three pieces of data from the profile make it up:

* the device's `LatencyModel` prices the node kinds the device measured (its `Coverage`);
* a `Prior` prices the kinds it never measured, from **reference devices** that did (the local x86
  CPU, whose bundle measures every kind a built-in space produces, and the latency-corpus devices):
  through a sibling kind the device measured (same convolution, other kernel size), a non-negative
  combination of the references' prices, or the main reference's price times one device-level
  ``scale`` (`nas.latency._prior` says which, and why). It also prices a kind measured in fewer than
  `MIN_NODES` nodes whose weights all came out zero (`unidentified_kinds`). The prior's intervals are
  measured by hiding families of kinds the device did measure (`hidden_family_ratios`). A kind no
  device measured is never priced: predicting a graph with it is an error naming the kind;
* an `Interval` (split conformal on ``log(measured / predicted)`` of held-out predictions from the
  profile's cross-validation) bounds the covered part; each extrapolated kind adds the interval of the
  prior's rule that priced it, so the interval grows with the share extrapolated.

The interval is calibrated on the kind of graphs the profile was fitted on (single blocks for a block
table, whole networks for a bundle); `LatencyPrediction.level` says which coverage it promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._coverage import INFERRED, Coverage
from nas.latency._features import FEATURES
from nas.latency._model import LatencyModel, _features

LEVEL = 0.9  # the nominal coverage of every interval the package reports
# A kind measured in fewer nodes than this whose weights all came out zero is not known to be free (its
# cost may have gone to a kind it always occurs with): the prior prices it, as if unmeasured.
MIN_NODES = 5


def unidentified_kinds(model: LatencyModel, coverage: Coverage) -> set[str]:
    """Kinds `coverage` holds with fewer than `MIN_NODES` nodes and no non-zero weight in `model`."""
    priced = {column.partition(".")[0] for column, weight in model.weights.items() if weight > 0}
    return {
        kind
        for kind, entry in coverage.kinds.items()
        if entry.get("nodes", 0) < MIN_NODES and kind not in priced and coverage.source != INFERRED
    }


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@dataclass(frozen=True)
class Interval:
    """``measured / predicted`` lies in ``[low, high]`` for a share ``level`` of graphs like the data."""

    level: float
    low: float
    high: float
    n: int
    data: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "low": self.low, "high": self.high, "n": self.n, "data": self.data}

    @classmethod
    def from_dict(cls, data: Any) -> "Interval":
        if not isinstance(data, dict):
            raise NasError(f"must be a mapping with level, low, high, n; got {data!r}")
        for key in ("level", "low", "high", "n"):
            if key not in data:
                raise NasError(f"{key}: missing required field")
        if not (_positive(data["level"]) and data["level"] < 1):
            raise NasError(f"level: must be a fraction in (0, 1), got {data['level']!r}")
        if not (_positive(data["low"]) and _positive(data["high"]) and data["low"] <= data["high"]):
            raise NasError(
                f"low, high: must be positive ratios with low <= high, got {data['low']!r}, {data['high']!r}"
            )
        if not isinstance(data["n"], int) or isinstance(data["n"], bool) or data["n"] < 1:
            raise NasError(f"n: must be a positive integer, got {data['n']!r}")
        return cls(
            level=float(data["level"]),
            low=float(data["low"]),
            high=float(data["high"]),
            n=data["n"],
            data=str(data.get("data", "")),
        )


def conformal_interval(ratios: Sequence[float], level: float = LEVEL, data: str = "") -> Interval:
    """Split-conformal bounds on ``measured / predicted`` from held-out ratios.

    The bounds are the order statistics of the log ratios at ranks ``floor((n + 1) a/2)`` and
    ``ceil((n + 1)(1 - a/2))`` (a = 1 - level), which cover a new graph with probability at least
    `level` when graphs are exchangeable. With too few ratios for `level` (fewer than 2/a - 1), the
    interval is the smallest and largest ratio and its level is what that range promises,
    ``(n - 1) / (n + 1)``: honest at small n rather than nominal.
    """
    logs = np.sort(np.log(np.asarray(ratios, dtype=np.float64)))
    n = len(logs)
    if n < 2 or not np.isfinite(logs).all():
        raise NasError(f"an interval needs at least 2 positive finite ratios, got {n}")
    alpha = 1 - level
    lo_rank, hi_rank = math.floor((n + 1) * alpha / 2), math.ceil((n + 1) * (1 - alpha / 2))
    if lo_rank < 1 or hi_rank > n:
        lo_rank, hi_rank, level = 1, n, (n - 1) / (n + 1)
    return Interval(
        level=float(level),
        low=float(np.exp(logs[lo_rank - 1])),
        high=float(np.exp(logs[hi_rank - 1])),
        n=n,
        data=data,
    )


@dataclass(frozen=True)
class Prior:
    """Prices for the kinds a device never measured, from reference devices (`nas.latency._prior`)."""

    reference: str
    scale: float
    interval: Interval
    weights: dict[str, float]  # "kind.feature" -> ms per unit, only kinds outside the device's coverage
    # kinds that several reference devices measured: (those kinds, {reference: coefficient}) each
    combinations: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = ()
    # kinds priced through a sibling family the device measured: (those kinds, the siblings, the ratio)
    siblings: tuple[tuple[tuple[str, ...], tuple[str, ...], float], ...] = ()
    sibling_interval: Interval | None = None  # for the kinds priced through a sibling (else `interval`)

    def interval_of(self, kind: str) -> Interval:
        """The interval of the rule that priced `kind`."""
        if self.sibling_interval is not None and any(kind in kinds for kinds, _, _ in self.siblings):
            return self.sibling_interval
        return self.interval

    def kinds(self) -> set[str]:
        return {column.partition(".")[0] for column in self.weights}

    def to_dict(self) -> dict[str, Any]:
        out = {
            "reference": self.reference,
            "scale": self.scale,
            "interval": self.interval.to_dict(),
            "weights": dict(sorted(self.weights.items())),
        }
        if self.combinations:
            out["combinations"] = [
                {"kinds": list(kinds), "coefficients": dict(coefficients)}
                for kinds, coefficients in self.combinations
            ]
        if self.sibling_interval is not None:
            out["sibling_interval"] = self.sibling_interval.to_dict()
        if self.siblings:
            out["siblings"] = [
                {"kinds": list(kinds), "measured_on": list(families), "ratio": ratio}
                for kinds, families, ratio in self.siblings
            ]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "Prior":
        if not isinstance(data, dict):
            raise NasError(f"must be a mapping with reference, scale, interval, weights; got {data!r}")
        for key in ("reference", "scale", "interval", "weights"):
            if key not in data:
                raise NasError(f"{key}: missing required field")
        if not _positive(data["scale"]):
            raise NasError(f"scale: must be a positive number, got {data['scale']!r}")
        try:
            interval = Interval.from_dict(data["interval"])
        except NasError as error:
            raise NasError(f"interval.{error}") from None
        try:
            weights = LatencyModel(overhead_ms=0.0, weights=dict(data["weights"] or {})).weights
        except (NasError, TypeError, ValueError) as error:
            raise NasError(f"weights: {error}") from None
        combinations = []
        for index, entry in enumerate(data.get("combinations") or []):
            coefficients = entry.get("coefficients") if isinstance(entry, dict) else None
            kinds = entry.get("kinds") if isinstance(entry, dict) else None
            if not (
                isinstance(kinds, list)
                and isinstance(coefficients, dict)
                and all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0
                    for c in coefficients.values()
                )
            ):
                raise NasError(
                    f"combinations[{index}]: must be a mapping with kinds (a list) and coefficients "
                    f"(reference -> non-negative number), got {entry!r}"
                )
            combinations.append(
                (tuple(str(k) for k in kinds), {str(n): float(c) for n, c in coefficients.items()})
            )
        sibling_interval = None
        if data.get("sibling_interval") is not None:
            try:
                sibling_interval = Interval.from_dict(data["sibling_interval"])
            except NasError as error:
                raise NasError(f"sibling_interval.{error}") from None
        siblings = []
        for index, entry in enumerate(data.get("siblings") or []):
            kinds = entry.get("kinds") if isinstance(entry, dict) else None
            families = entry.get("measured_on") if isinstance(entry, dict) else None
            ratio = entry.get("ratio") if isinstance(entry, dict) else None
            if not (isinstance(kinds, list) and isinstance(families, list) and _positive(ratio)):
                raise NasError(
                    f"siblings[{index}]: must be a mapping with kinds (a list), measured_on (a list) and "
                    f"ratio (a positive number), got {entry!r}"
                )
            siblings.append((tuple(map(str, kinds)), tuple(map(str, families)), float(ratio)))
        return cls(
            reference=str(data["reference"]),
            scale=float(data["scale"]),
            interval=interval,
            weights=weights,
            combinations=tuple(combinations),
            siblings=tuple(siblings),
            sibling_interval=sibling_interval,
        )


@dataclass(frozen=True)
class LatencyPrediction:
    """One predicted latency: point, interval (``low_ms``-``high_ms`` at ``level``; None when the profile
    records no interval), the extrapolated milliseconds and which kinds/nodes were outside coverage."""

    latency_ms: float
    low_ms: float | None
    high_ms: float | None
    level: float | None
    extrapolated_ms: float
    uncovered: tuple[str, ...]
    out_of_range: tuple[str, ...]

    @property
    def extrapolated_share(self) -> float:
        return self.extrapolated_ms / self.latency_ms if self.latency_ms > 0 else 0.0

    def straddles(self, budget_ms: float) -> bool:
        """The interval holds the budget: the prediction alone cannot say on which side the device is."""
        return self.low_ms is not None and self.low_ms <= budget_ms <= self.high_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "level": self.level,
            "extrapolated_ms": self.extrapolated_ms,
            "extrapolated_share": self.extrapolated_share,
            "uncovered_kinds": list(self.uncovered),
            "out_of_range": list(self.out_of_range),
        }


class Predictor:
    """A profile's model, coverage, interval and prior, put together (see the module docstring)."""

    def __init__(
        self,
        name: str,
        model: LatencyModel,
        coverage: Coverage | None = None,
        interval: Interval | None = None,
        prior: Prior | None = None,
    ):
        self.name = name
        self.model = model
        self.coverage = coverage if coverage is not None else Coverage.inferred(model.weights)
        self.interval = interval
        self.prior = prior
        prior_weights = prior.weights if prior is not None else {}
        self._prior_matrix = _matrix(prior_weights)
        # measured, but too thinly to know their cost: the prior prices them where it can
        self._unidentified = frozenset(unidentified_kinds(model, self.coverage) & set(self._prior_matrix))
        self._prior_intervals = {k: prior.interval_of(k) for k in self._prior_matrix} if prior else {}

    def _extrapolated_kinds(self, features) -> list[str]:
        uncovered = self.coverage.uncovered_kinds(features)
        if not self._unidentified:
            return uncovered
        return uncovered + [k for k in features.kinds if k in self._unidentified and k not in uncovered]

    def unpriced(self, kinds) -> list[str]:
        """Of `kinds`, those neither the device nor the prior's reference measured."""
        known = self.prior.kinds() if self.prior is not None else set()
        return [k for k in kinds if not self.coverage.covers(k) and k not in known]

    def predict(self, model_or_features: Any) -> LatencyPrediction:
        features = _features(model_or_features)
        uncovered = self.coverage.uncovered_kinds(features)
        missing = self.unpriced(uncovered)
        if missing:
            raise NasError(
                f"profile {self.name!r}: node kinds {', '.join(missing)} were never measured on this device "
                "nor on its prior's reference device; measure them (nas profile bundle/measure)"
            )
        covered = self.model.predict(features)
        priced = {
            k: float(self._prior_matrix[k] @ features.kinds[k])
            for k in self._extrapolated_kinds(features)
            if k in self._prior_matrix
        }
        extrapolated = sum(priced.values())
        low = high = level = None
        if self.interval is not None:
            low, high, level = covered * self.interval.low, covered * self.interval.high, self.interval.level
            for kind, ms in priced.items():
                interval = self._prior_intervals.get(kind, self.prior.interval)
                low, high = low + ms * interval.low, high + ms * interval.high
                level = min(level, interval.level)
        return LatencyPrediction(
            latency_ms=covered + extrapolated,
            low_ms=low,
            high_ms=high,
            level=level,
            extrapolated_ms=extrapolated,
            uncovered=tuple(uncovered),
            out_of_range=tuple(self.coverage.out_of_range(features)),
        )

    def breakdown(self, model_or_features: Any) -> dict[str, float]:
        """Predicted ms per kind plus "overhead" (kinds priced by the prior included); sums to `predict`."""
        features = _features(model_or_features)
        parts = self.model.breakdown(features)
        for kind in self._extrapolated_kinds(features):
            if kind in self._prior_matrix:
                parts[kind] = float(self._prior_matrix[kind] @ features.kinds[kind])
        return parts


def _matrix(weights: dict[str, float]) -> dict[str, np.ndarray]:
    matrix: dict[str, np.ndarray] = {}
    for column, weight in weights.items():
        kind, _, feature = column.partition(".")
        matrix.setdefault(kind, np.zeros(len(FEATURES)))[FEATURES.index(feature)] = weight
    return matrix
