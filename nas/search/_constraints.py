"""Constraint filters: the cheap objectives (size, memory, latency) reject a candidate before any training.

Each constraint reads one cheap objective (`needs`: "costs" for params, MACs, peak activation memory and
weight memory; "latency") from the candidate's attributes and says why the candidate violates it, or
None. The driver applies the costs constraints right after counting the costs and the latency
constraints right after the latency, so a rejected candidate costs nothing more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Sequence

from nas.records import Attr

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
        latency = attrs[Attr.LATENCY_MS]
        return (
            f"latency {latency:.3f} ms > budget {self.budget_ms:g} ms" if latency > self.budget_ms else None
        )


def constraints_from(config) -> tuple[Constraint, ...]:
    """The constraints a `SearchConfig` sets, in the order they are checked."""
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
    return tuple(found)


def first_violation(constraints: Sequence[Constraint], needs: Needs, attrs: dict[str, Any]) -> str | None:
    """The first violated constraint of those reading `needs`, or None."""
    for constraint in constraints:
        if constraint.needs == needs:
            reason = constraint.violation(attrs)
            if reason is not None:
                return reason
    return None
