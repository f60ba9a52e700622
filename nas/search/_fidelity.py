"""The fidelity schedule: Pareto-aware multi-fidelity training.

Training pauses at each rung (after that many epochs of the full schedule) for a validation; a candidate
dominated there (`rung_dominators`) by `stop_dominated_by` others, of this batch or earlier ones, stops
and is never trained to the end. Survivors resume where they paused. Latency is known before training,
so dominance uses the real latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nas.search._acquisition import rung_dominators


@dataclass(frozen=True)
class FidelitySchedule:
    rungs: tuple[int, ...] = ()  # epochs of the early rungs, increasing, each below the full epochs
    stop_dominated_by: int = 2
    stop_margin: float | None = None  # None: two standard errors of the accuracy difference
    val_size: int = 1  # validation images: the standard error of an accuracy

    @classmethod
    def from_config(cls, config, val_size: int) -> "FidelitySchedule":
        return cls(tuple(config.rungs), config.stop_dominated_by, config.stop_margin, val_size)

    def stop_reason(
        self, epochs: int, accuracy: float, latency: float, points: Sequence[tuple[float, float]]
    ) -> str | None:
        """Why a candidate with `accuracy` at the `epochs` rung and `latency` stops there, given every
        (accuracy, latency) validated at that rung (its own included); None: it trains on."""
        better = rung_dominators(accuracy, latency, list(points), self.val_size, self.stop_margin)
        if better < self.stop_dominated_by:
            return None
        return (
            f"stopped at the {epochs}-epoch rung: accuracy {accuracy:.3f} dominated "
            f"by {better} candidates at {latency:.3f} ms or faster"
            + ("" if self.stop_margin == 0 else " by more than the margin")
        )
