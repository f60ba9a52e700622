"""Confidence thresholds of the early exits, calibrated on the validation split.

The bound is on the cascade: its accuracy may be at most `max_drop` points below the final exit's alone.
Exits are calibrated earliest first, each taking the lowest threshold that keeps the bound with the later
exits still closed (an early exit saves the most, so it gets the allowance first); the next exit then
spends what is left. For one exit the images reaching it are fixed, so every candidate threshold (each
distinct confidence) is scored at once with cumulative sums: O(N log N) per exit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.errors import NasError
from nas.runtime import NEVER, route

DEFAULT_MAX_DROP = 0.5  # points of accuracy (percent)


def check_max_drop(value, where: str = "--exit-max-drop") -> float:
    """A drop bound in points: a finite number in [0, 100]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise NasError(f"{where}: must be a number of accuracy points in [0, 100], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Calibration:
    """Thresholds and what they do on the images they were calibrated on."""

    thresholds: tuple[float, ...]  # one per early exit; NEVER: the exit lets every image through
    shares: tuple[float, ...]  # share of images leaving at each exit, the final one included
    exit_accuracy: tuple[float, ...]  # each exit alone on every image
    cascade_accuracy: float
    final_accuracy: float  # the last exit alone
    max_drop: float  # the bound, in points
    n: int

    @property
    def drop_points(self) -> float:
        return 100 * (self.final_accuracy - self.cascade_accuracy)

    def to_dict(self) -> dict:
        return {
            "thresholds": list(self.thresholds),
            "shares": list(self.shares),
            "exit_accuracy": list(self.exit_accuracy),
            "cascade_accuracy": self.cascade_accuracy,
            "final_accuracy": self.final_accuracy,
            "drop_points": self.drop_points,
            "max_drop_points": self.max_drop,
            "n": self.n,
        }


def calibrate_thresholds(
    probabilities: list[np.ndarray], labels: np.ndarray, max_drop: float = DEFAULT_MAX_DROP
) -> Calibration:
    """Thresholds for the early exits of `probabilities` (N x classes per exit, the final exit last) so the
    cascade loses at most `max_drop` points of accuracy against the final exit on these images."""
    max_drop = check_max_drop(max_drop, "max_drop")
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0 or any(len(p) != n for p in probabilities):
        raise NasError(f"calibration needs the same, non-zero number of images per exit, got {n}")
    correct = [p.argmax(1) == labels for p in probabilities]
    allowed = int(correct[-1].sum()) - int(np.floor(max_drop / 100 * n + 1e-9))  # correct images needed
    undecided = np.ones(n, dtype=bool)
    settled = 0  # correct images among those already gone
    thresholds = []
    for k in range(len(probabilities) - 1):
        idx = np.flatnonzero(undecided)
        conf = probabilities[k][idx].max(1)
        order = np.argsort(-conf, kind="stable")
        conf_sorted = conf[order]
        here = np.concatenate([[0], np.cumsum(correct[k][idx][order])])  # correct if the first m leave here
        later = int(correct[-1][idx].sum()) - np.concatenate([[0], np.cumsum(correct[-1][idx][order])])
        total = settled + here + later  # for m = 0..len(idx) images leaving
        cut = np.ones(len(idx) + 1, dtype=bool)  # m is a threshold only between distinct confidences
        cut[1:-1] = conf_sorted[:-1] > conf_sorted[1:]
        feasible = np.flatnonzero(cut & (total >= allowed))
        m = int(feasible.max()) if len(feasible) else 0
        threshold = float(conf_sorted[m - 1]) if m > 0 else NEVER
        thresholds.append(threshold)
        leaving = idx[conf >= threshold] if m > 0 else idx[:0]
        settled += int(correct[k][leaving].sum())
        undecided[leaving] = False
    prediction, exit_taken = route(probabilities, thresholds)
    return Calibration(
        thresholds=tuple(thresholds),
        shares=tuple(float(np.mean(exit_taken == k)) for k in range(len(probabilities))),
        exit_accuracy=tuple(float(c.mean()) for c in correct),
        cascade_accuracy=float(np.mean(prediction == labels)),
        final_accuracy=float(correct[-1].mean()),
        max_drop=max_drop,
        n=n,
    )


def exit_shares(exit_taken: np.ndarray, exits: int) -> list[float]:
    """Share of images leaving at each exit."""
    return [float(np.mean(exit_taken == k)) if len(exit_taken) else 0.0 for k in range(exits)]
