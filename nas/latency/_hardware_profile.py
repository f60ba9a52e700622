"""The `HardwareProfile` record a profile file loads into: one device, and what predicts its latency.

The file format and its checks: `nas.latency._profiles`; finding profiles by name:
`nas.latency._profile_lookup`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.latency._coverage import Coverage
from nas.latency._measure import MeasurementSettings
from nas.latency._model import LatencyModel
from nas.latency._prediction import Interval, LatencyPrediction, Predictor, Prior


@dataclass(frozen=True)
class HardwareProfile:
    """One device: how its latency is obtained (measured here, or predicted) and with which settings."""

    name: str
    description: str
    latency: str  # "measured" | "predicted"
    path: Path
    runtime: dict
    measurement: MeasurementSettings
    provenance: str
    raw: dict  # the whole parsed YAML
    latency_model: LatencyModel | None = None  # predicted profiles: the fitted model
    validation: dict | None = None  # predicted profiles: its cross-validated error, if recorded
    measurements: dict | None = None  # predicted profiles: the data it was fitted on (path made absolute)
    coverage: Coverage | None = None  # what the model's data contained (None: not recorded)
    interval: Interval | None = None  # held-out measured/predicted ratio bounds
    prior: Prior | None = None  # prices for kinds the device never measured
    machine: dict | None = None  # signature of the machine that measured it (nas.latency._signature)
    energy: Any = None  # an `EnergySection` where its measurements include energy (nas.latency._energy)

    @cached_property
    def predictor(self) -> Predictor:
        """The model with its coverage, interval and prior (`nas.latency._prediction`)."""
        if self.latency_model is None:
            raise NasError(
                f"profile {self.name!r} has no latency model: fit one with `nas profile fit` or "
                "`nas profile import`"
            )
        return Predictor(self.name, self.latency_model, self.coverage, self.interval, self.prior)

    def predict(self, model_or_features: Any) -> LatencyPrediction:
        """Predicted latency of one network (ONNX bytes, path, or `GraphFeatures`), with its interval."""
        return self.predictor.predict(model_or_features)

    @cached_property
    def energy_predictor(self) -> Predictor:
        """The energy model with its coverage, interval and prior (`nas.latency._energy`)."""
        from nas.latency._energy import energy_predictor

        if self.energy is None:
            raise NasError(
                f"profile {self.name!r} has no energy model: only a profile fitted on energy measurements "
                "(an energy column in its block table, such as jetson-tx2's) predicts energy"
            )
        predictor = self.predictor
        return energy_predictor(
            self.name, self.energy, predictor.model, predictor.coverage, self.interval, self.prior
        )

    def predict_energy(self, model_or_features: Any):
        """Predicted energy per inference (mJ) of one network, with its interval: an `EnergyPrediction`."""
        from nas.latency._energy import EnergyPrediction

        return EnergyPrediction.of(self.energy_predictor.predict(model_or_features))

    def describe(self) -> dict:
        """A JSON-friendly summary (for `nas profiles`, run metadata, reports)."""
        described = {
            "name": self.name,
            "description": self.description,
            "latency": self.latency,
            "path": str(self.path),
            "runtime": dict(self.runtime),
            "measurement": asdict(self.measurement),
            "provenance": self.provenance,
        }
        if self.latency_model is not None:
            described["model"] = {
                "overhead_ms": self.latency_model.overhead_ms,
                "weights": len(self.latency_model.weights),
            }
        if self.validation is not None:
            described["validation"] = dict(self.validation)
            described["validation_error"] = (
                f"MAPE {self.validation['mape']:.1f}%, {self.validation['within_10pct'] * 100:.0f}% within +-10%, "
                f"Kendall tau {self.validation['kendall_tau']:.2f} ({self.validation['n']} held-out samples)"
            )
        if self.measurements is not None:
            described["measurements"] = dict(self.measurements)
        if self.latency_model is not None:
            coverage = self.predictor.coverage
            described["coverage"] = {
                "summary": coverage.summary(),
                "source": coverage.source,
                "kinds": {k: dict(v) for k, v in coverage.kinds.items()},
            }
        if self.interval is not None:
            described["interval"] = self.interval.to_dict()
        if self.machine is not None:
            described["machine"] = dict(self.machine)
        if self.energy is not None:
            described["energy"] = {
                k: v for k, v in self.energy.to_dict().items() if k not in ("model", "coverage")
            }
        if self.prior is not None:
            described["prior"] = {
                "reference": self.prior.reference,
                "scale": self.prior.scale,
                "interval": self.prior.interval.to_dict(),
                "kinds": sorted(self.prior.kinds()),
            }
        return described
