"""Which candidates get training: pre-screening by expected hypervolume improvement (EHVI), and
Pareto-aware stopping at multi-fidelity rungs (`rung_dominators`).

Latency is known before training, accuracy is not. A small Bayesian linear model, fitted on the candidates
trained so far (log latency, log parameters, log MACs and, in the search, the training-free NASWOT score),
gives each screened candidate a predicted accuracy with an uncertainty; its EHVI is the expected area it
would add to the accuracy x latency front below a reference latency. That is the search objective itself,
so a fast candidate with an ordinary predicted accuracy and a slower one that might beat the front both get
their due, and nothing is trained whose latency already has a better-than-likely competitor. The batch is
chosen greedily: each pick joins the front at its predicted accuracy before the next one is scored, so one
batch does not pile up at one latency.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from nas.search._results import dominates

MIN_TRAINED = 4  # below this, no model: the caller spreads the batch over latency bands instead


def cost_features(latency_ms: float, params: int, macs: int) -> list[float]:
    """What the search knows of every candidate before training: its log costs."""
    return [math.log(latency_ms), math.log(max(params, 1)), math.log(max(macs, 1))]


def screening_features(latency_ms: float, params: int, macs: int, naswot: float) -> list[float]:
    """What the search's EHVI pre-screening knows: the log costs and the training-free NASWOT score (in the
    offline replay of benchmarks/efficiency_headroom.py, adding NASWOT to the costs made the 12 chosen
    trainings reach 24 random ones' front more often). `naswot` must be finite."""
    return cost_features(latency_ms, params, macs) + [naswot]


def finite_last_score(pool: Sequence[tuple], trained: Sequence[tuple]) -> tuple[list[tuple], list[tuple]]:
    """`pool` and `trained` with a non-finite last entry (NASWOT -inf: a singular activation kernel, two images
    that look alike to the untrained network) replaced by the lowest finite one among them, so one degenerate
    candidate counts as the worst seen instead of stretching the model's scale."""
    finite = [x[-1] for x in [*pool, *trained] if math.isfinite(x[-1])]
    floor = min(finite, default=0.0)
    fix = lambda x: (*x[:-1], x[-1] if math.isfinite(x[-1]) else floor)  # noqa: E731
    return [fix(c) for c in pool], [fix(t) for t in trained]


class AccuracySurrogate:
    """Bayesian ridge regression of accuracy on features of a candidate (by default its log costs):
    mean and predictive standard deviation."""

    def __init__(
        self,
        trained: Sequence[tuple],
        ridge: float = 1.0,
        features: Callable[..., list[float]] = cost_features,
    ):
        """trained: (accuracy, *candidate) of trained candidates, where `features(*candidate)` describes one
        (by default candidate = latency_ms, params, macs)."""
        self.features = features
        x = np.array([features(*candidate) for _, *candidate in trained])
        y = np.array([acc for acc, *_ in trained], dtype=float)
        self.center, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        self.y_mean = y.mean()
        z = (x - self.center) / self.scale
        self.precision = z.T @ z + ridge * np.eye(z.shape[1])
        self.weights = np.linalg.solve(self.precision, z.T @ (y - self.y_mean))
        residual = y - self.y_mean - z @ self.weights
        dof = max(len(y) - z.shape[1] - 1, 1)
        # At least 0.005 so two identical accuracies early on do not make the model certain.
        self.noise = max(math.sqrt(float(residual @ residual) / dof), 0.005)

    def predict(self, *candidate) -> tuple[float, float]:
        z = (np.array(self.features(*candidate)) - self.center) / self.scale
        mean = self.y_mean + float(z @ self.weights)
        spread = float(z @ np.linalg.solve(self.precision, z))
        return mean, self.noise * math.sqrt(1.0 + spread)


def expected_improvement_area(
    mean: float, sd: float, latency: float, front: Sequence[tuple[float, float]], reference: float
) -> float:
    """E[area added to the front] by a candidate at `latency` whose accuracy is N(mean, sd): over each
    latency interval from its own to `reference`, E[max(0, A - best accuracy of the front at that latency)].
    front: (accuracy, latency) points (any, dominated ones are harmless)."""
    if latency >= reference:
        return 0.0
    edges = sorted({latency, reference, *(lat for _, lat in front if latency < lat < reference)})
    total = 0.0
    for lo, hi in zip(edges, edges[1:]):
        best = max((acc for acc, lat in front if lat <= lo), default=0.0)
        z = (mean - best) / sd
        expected = sd * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + (mean - best) * 0.5 * (
            1 + math.erf(z / math.sqrt(2))
        )
        total += (hi - lo) * expected
    return total


def select_by_ehvi(
    pool: Sequence[tuple],
    trained: Sequence[tuple],
    keep: int,
    reference: float,
    features: Callable[..., list[float]] = cost_features,
) -> list[tuple[int, float]]:
    """Indices into `pool` ((latency_ms, params, macs) per candidate, or whatever else `features` takes,
    latency first) of the `keep` to train, in order of choice, each with its EHVI when chosen. trained:
    (accuracy, *candidate). Needs at least MIN_TRAINED trained candidates."""
    if len(trained) < MIN_TRAINED:
        raise ValueError(f"EHVI needs at least {MIN_TRAINED} trained candidates, got {len(trained)}")
    model = AccuracySurrogate(trained, features=features)
    predicted = [model.predict(*c) for c in pool]
    front = [(acc, lat) for acc, lat, *_ in trained]
    left, chosen = set(range(len(pool))), []
    for _ in range(min(keep, len(pool))):
        gains = {i: expected_improvement_area(*predicted[i], pool[i][0], front, reference) for i in left}
        best = max(sorted(gains), key=lambda i: gains[i])  # ties: the earlier proposal
        chosen.append((best, gains[best]))
        left.discard(best)
        front.append((predicted[best][0], pool[best][0]))  # believe the prediction for the rest of the batch
    return chosen


def rung_dominators(
    accuracy: float,
    latency: float,
    points: list[tuple[float, float]],
    val_size: int,
    margin: float | None = None,
) -> int:
    """How many (accuracy, latency) points dominate a candidate at a rung: at most its latency and more
    accurate by more than `margin`. margin None: two standard errors of the difference of two accuracies
    measured on `val_size` images, so validation noise (and a rung where everyone is still at chance, all
    tied) stops nobody. margin 0: plain Pareto dominance (no worse in both, better in one)."""
    if margin == 0:
        return sum(dominates(p, (accuracy, latency)) for p in points)

    def needed(a: float) -> float:
        if margin is not None:
            return margin
        return 2 * math.sqrt((accuracy * (1 - accuracy) + a * (1 - a)) / max(1, val_size))

    return sum(lat <= latency and a - accuracy > needed(a) for a, lat in points)
