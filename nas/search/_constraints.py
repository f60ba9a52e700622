"""Constraint filters: the cheap objectives (size, memory, latency) reject a candidate before any training.

A fleet (`--budget PROFILE=MS` for another device than the search's profile) adds one `DeviceBudget` per
device, so the result runs within budget on every device: its latency is measured on the device's node
when --latency device finds one (`with_device_nodes`, `measure_fleet`), else predicted by that profile's
model (`latency_violation`), and recorded as `latency_ms@PROFILE`.

Each constraint reads one cheap objective (`needs`: "costs" for params, MACs, peak activation memory and
weight memory; "latency") from the candidate's attributes and says why the candidate violates it, or
None. The driver applies the costs constraints right after counting the costs and the latency
constraints right after the latency, so a rejected candidate costs nothing more.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Sequence

from nas.errors import NasError
from nas.latency import HardwareProfile, load_profile
from nas.records import Attr, fleet_key
from nas.search._config import AUTO_BUDGET
from nas.search._exits import budget_latency

Needs = Literal["costs", "latency"]


class Constraint(ABC):
    needs: ClassVar[Needs]

    @abstractmethod
    def violation(self, attrs: dict[str, Any]) -> str | None:
        """Why a candidate with these attributes is infeasible, or None."""


@dataclass(frozen=True)
class MaxParams(Constraint):
    limit: int
    needs: ClassVar[Needs] = "costs"

    def violation(self, attrs):
        return f"params {attrs['params']} > max {self.limit}" if attrs[Attr.PARAMS] > self.limit else None


@dataclass(frozen=True)
class MaxMacs(Constraint):
    limit: int
    needs: ClassVar[Needs] = "costs"

    def violation(self, attrs):
        return f"MACs {attrs['macs']} > max {self.limit}" if attrs[Attr.MACS] > self.limit else None


@dataclass(frozen=True)
class MaxPeakMemory(Constraint):
    """Peak activation memory (`nas.evaluate.graph_memory`), the SRAM a microcontroller must hold."""

    limit_kb: float
    needs: ClassVar[Needs] = "costs"

    def violation(self, attrs):
        peak = attrs[Attr.PEAK_MEMORY_KB]
        return f"peak memory {peak:g} KiB > max {self.limit_kb:g} KiB" if peak > self.limit_kb else None


@dataclass(frozen=True)
class MaxWeights(Constraint):
    """Weight memory (`nas.evaluate.graph_memory`), the flash a microcontroller must hold."""

    limit_kb: float
    needs: ClassVar[Needs] = "costs"

    def violation(self, attrs):
        weights = attrs[Attr.WEIGHTS_KB]
        return f"weights {weights:g} KiB > max {self.limit_kb:g} KiB" if weights > self.limit_kb else None


@dataclass(frozen=True)
class LatencyBudget(Constraint):
    budget_ms: float
    needs: ClassVar[Needs] = "latency"

    def violation(self, attrs):
        latency, what = budget_latency(attrs)  # early exits: the expected latency, or its bound
        return f"{what} {latency:.3f} ms > budget {self.budget_ms:g} ms" if latency > self.budget_ms else None


@dataclass(frozen=True)
class DeviceBudget(Constraint):
    """A budget on another device of the fleet: its latency measured on the device's node (`measurer`), else
    predicted by its profile's model (in hybrid mode, that model as refitted on the node's measurements so
    far: `calibration`)."""

    profile: HardwareProfile
    budget_ms: float
    measurer: Any = None  # a DeviceMeasurer when --latency device finds the device's node in the cluster
    calibration: Any = None  # hybrid, with a node: the device's OnlineCalibration (nas.search._hybrid)
    needs: ClassVar[Needs] = "latency"

    def latency_attrs(self, features: Any) -> dict[str, Any]:
        """latency_ms@PROFILE and its prediction interval (when the model gives one) for these graph features."""
        predictor = self.calibration if self.calibration is not None else self.profile
        prediction = predictor.predict(features)
        attrs = {
            fleet_key(Attr.LATENCY_MS, self.profile.name): prediction.latency_ms,
            fleet_key(Attr.LATENCY_SOURCE, self.profile.name): "predicted",
        }
        if prediction.low_ms is not None:
            attrs[fleet_key(Attr.LATENCY_LOW_MS, self.profile.name)] = prediction.low_ms
            attrs[fleet_key(Attr.LATENCY_HIGH_MS, self.profile.name)] = prediction.high_ms
        return attrs

    def measured_attrs(self, out: dict[str, Any]) -> dict[str, Any]:
        """latency_ms@PROFILE from a `measure_on_device` result on the device's node."""
        return {
            fleet_key(Attr.LATENCY_MS, self.profile.name): out["median_ms"],
            fleet_key(Attr.LATENCY_SOURCE, self.profile.name): "device",
        }

    def violation(self, attrs):
        # early exits: the expected latency, or its bound
        latency, what = budget_latency(attrs, self.profile.name)
        if latency <= self.budget_ms:
            return None
        source = attrs.get(fleet_key(Attr.LATENCY_SOURCE, self.profile.name), "predicted")
        return f"{what} on {self.profile.name} {latency:.3f} ms ({source}) > budget {self.budget_ms:g} ms"


@dataclass(frozen=True)
class EnergyCost(Constraint):
    """Energy per inference predicted by the profile's energy model (`nas.latency._energy`): recorded for
    every candidate of a profile that has one, a bound with `limit_mj` (--max-energy-mj)."""

    profile: HardwareProfile
    limit_mj: float | None = None
    needs: ClassVar[Needs] = "latency"

    def energy_attrs(self, features: Any) -> dict[str, Any]:
        prediction = self.profile.predict_energy(features)
        attrs = {
            Attr.ENERGY_MJ: prediction.energy_mj,
            Attr.ENERGY_EXTRAPOLATED: prediction.extrapolated_share,
        }
        if prediction.low_mj is not None:
            attrs.update({Attr.ENERGY_LOW_MJ: prediction.low_mj, Attr.ENERGY_HIGH_MJ: prediction.high_mj})
        return attrs

    def violation(self, attrs):
        energy = attrs.get(Attr.ENERGY_MJ)
        if self.limit_mj is None or energy is None or energy <= self.limit_mj:
            return None
        return f"energy {energy:.3f} mJ > max {self.limit_mj:g} mJ"


def energy_constraints(config, profile: HardwareProfile | None = None) -> tuple[Constraint, ...]:
    """An `EnergyCost` when the search's profile has an energy model; --max-energy-mj on a profile without
    one is a user error."""
    profile = profile if profile is not None else load_profile(config.profile)
    if profile.energy is None:
        if config.max_energy_mj is not None:
            raise NasError(
                f"max_energy_mj: profile {profile.name!r} has no energy model (only a profile fitted on energy "
                "measurements has one, such as jetson-tx2)"
            )
        return ()
    return (EnergyCost(profile, config.max_energy_mj),)


def check_energy(space, profile: HardwareProfile, config) -> None:
    """Refuse before anything runs: --max-energy-mj without an energy model, or a space producing kinds the
    energy data never measured (unless --allow-extrapolation and the energy prior prices them), with the
    latency coverage's one-line refusal."""
    from types import SimpleNamespace

    from nas.latency import check_space_coverage

    if energy_constraints(config, profile):
        energy = SimpleNamespace(predictor=profile.energy_predictor, name=f"{profile.name} (energy model)")
        check_space_coverage(space, energy, allow_extrapolation=config.allow_extrapolation)


def load_budget_profile(name: str) -> HardwareProfile:
    """The profile a --budget names; an unknown one is a user error naming the budget."""
    try:
        return load_profile(name)
    except NasError as exc:
        raise NasError(f"budgets: {name}: {exc}") from None


def fold_objective_budget(config, objective: str):
    """The config with a --budget on the search's own profile (`objective`, its name) moved to
    latency_budget_ms, which it is the same as; giving both is a user error."""
    budgets = config.budget_by_profile
    if objective not in budgets:
        return config
    if config.latency_budget_ms != AUTO_BUDGET:  # given (a number, or none): two budgets for one profile
        given = "none" if config.latency_budget_ms is None else f"{config.latency_budget_ms:g} ms"
        raise NasError(
            f"budgets: {objective} is the search's profile: its budget is latency_budget_ms "
            f"({given}); give one of --budget {objective}=MS and --latency-budget-ms"
        )
    budget_ms = budgets.pop(objective)
    return dataclasses.replace(config, latency_budget_ms=budget_ms, budgets=budgets)


def constraints_from(config) -> tuple[Constraint, ...]:
    """The constraints a `SearchConfig` sets, in the order they are checked."""
    if config.latency_budget_ms == AUTO_BUDGET:  # a number only once the search starts
        raise ValueError("latency_budget_ms 'auto': resolve it first (nas.search._default_budget)")
    found: list[Constraint] = []
    if config.max_params is not None:
        found.append(MaxParams(config.max_params))
    if config.max_macs is not None:
        found.append(MaxMacs(config.max_macs))
    if config.max_peak_memory_kb is not None:
        found.append(MaxPeakMemory(config.max_peak_memory_kb))
    if config.max_weights_kb is not None:
        found.append(MaxWeights(config.max_weights_kb))
    if config.latency_budget_ms is not None:
        found.append(LatencyBudget(config.latency_budget_ms))
    for name, budget_ms in config.budget_by_profile.items():  # the objective's own: fold_objective_budget
        found.append(DeviceBudget(load_budget_profile(name), budget_ms))
    found.extend(energy_constraints(config))
    return tuple(found)


def with_device_nodes(constraints: Sequence[Constraint], executor: Any, timeout_s: float) -> tuple:
    """The constraints, each fleet budget whose device has a node (`nas-device:PROFILE`) in the executor's
    Ray cluster measured there (--latency device); the others stay predicted."""
    from nas.search._device_nodes import DeviceMeasurer

    ray = getattr(executor, "ray", None)
    found = []
    for constraint in constraints:
        if isinstance(constraint, DeviceBudget) and ray is not None:
            profile = constraint.profile
            measurer = DeviceMeasurer(ray, profile.name, profile.measurement, timeout_s)
            if measurer.nodes():
                constraint = dataclasses.replace(constraint, measurer=measurer)
        found.append(constraint)
    return tuple(found)


def measure_fleet(constraints: Sequence[Constraint], batch: Sequence[Any], graphs: Sequence[bytes]) -> dict:
    """Each graph (of the `Candidate` of the same index) measured on the fleet's device nodes, recorded in the
    candidate's attributes; returns {index: why a device could not measure it} (that trial fails)."""
    failures: dict[int, str] = {}
    for budget in constraints:
        if isinstance(budget, DeviceBudget) and budget.measurer is not None:
            for index, out, reason in budget.measurer.measure_all(graphs):
                if out is None:
                    failures.setdefault(index, f"on {budget.profile.name}: {reason}")
                else:
                    batch[index].attrs.update(budget.measured_attrs(out))
    return failures


def latency_violation(constraints: Sequence[Constraint], cand: Any, featurizer: Any) -> str | None:
    """The fleet's latencies of `cand` (a `Candidate`) not measured on a device node predicted from its
    graph features (`featurizer`: an `ArchitectureFeaturizer`) into its attributes; then the first violated
    latency constraint."""
    fleet = [
        c
        for c in constraints
        if isinstance(c, DeviceBudget) and fleet_key(Attr.LATENCY_MS, c.profile.name) not in cand.attrs
    ]
    if fleet:
        features = featurizer.features(cand.arch)
        for budget in fleet:
            cand.attrs.update(budget.latency_attrs(features))
    for energy in (c for c in constraints if isinstance(c, EnergyCost) and Attr.ENERGY_MJ not in cand.attrs):
        cand.attrs.update(energy.energy_attrs(featurizer.features(cand.arch)))
    return first_violation(constraints, "latency", cand.attrs)


def first_violation(constraints: Sequence[Constraint], needs: Needs, attrs: dict[str, Any]) -> str | None:
    """The first violated constraint of those reading `needs`, or None."""
    for constraint in constraints:
        if constraint.needs == needs:
            reason = constraint.violation(attrs)
            if reason is not None:
                return reason
    return None
