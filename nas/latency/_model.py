"""The latency model: per-kind non-negative linear costs plus one per-inference overhead.

::

    latency_ms = overhead_ms + sum over (kind, feature) of weights["kind.feature"] * F[kind][feature]
                 + conv_log_ms * log(1 + convolution nodes)

where ``F`` are the `GraphFeatures` of the network (node count, MACs, activation bytes and parameters
per operator kind; see `nas.latency._op_kinds`). Every weight and the overhead are non-negative, so adding
a node never makes a network faster.

**The whole-graph term.** On some runtimes a network's time is not additive in its nodes: each added
convolution costs less than the one before (measured on the latency corpus's PyTorch CPUs, where a
per-node fit of Xeon Silver 4210R stays at 1.7x its noise floor: docs/latency-corpus.md section 2).
``conv_log_ms * log(1 + n)``, n the graph's convolution nodes (the sum of every conv kind's ``count``),
is that concave cost. It belongs to no node: `breakdown` gives it its own part (`CONV_LOG`), and it is
computed from summed features, so a network composed from cached block features is priced right. It is
0 unless a fit asks for it (`graph_term=True`), and `nas profile fit` keeps it only where it
cross-validates better (`nas.latency._calibrate`).

**Fit.** `fit_latency_model` solves a non-negative least-squares problem (Lawson-Hanson, implemented
here in numpy: `nnls`) that minimizes the *relative* error: each sample's row (``[1, features]``) and
target (its latency) are divided by the measured latency, so a 0.1 ms block counts as much as a 10 ms
one. Columns are scaled to unit maximum before solving (MACs are ~1e8, counts ~1) and the weights
scaled back. Only columns that are non-zero somewhere in the training data get a weight; the others are
left out of the model (weight 0). Samples must have a positive latency.

**The overhead is counted once.** A block-by-block lookup table measures every block on its own, so
every entry contains the fixed cost of one inference call (launching the engine, synchronising, copying
the input and output: about 0.45-0.55 ms per block on the Jetson TX2 table). Fitting the table, that
fixed cost is learnt once, as the intercept ``overhead_ms``, and the per-kind weights explain only what
the block itself adds. Predicting a whole network adds ``overhead_ms`` ONCE, not once per block, which
is why the prediction for a network is smaller than the sum of its blocks' table entries: that sum
contains N per-measurement overheads for N blocks where a real run of the whole network pays one.

`cross_validate` gives the held-out error (k-fold) and `error_metrics` the metrics: MAPE (in percent),
the fraction of predictions within +-10% of the measurement, and Kendall's tau-b (rank agreement,
which is what a search needs most).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._features import COLUMNS, FEATURES, GraphFeatures
from nas.latency._graph import graph_features
from nas.latency._op_kinds import KINDS

OVERHEAD = "overhead"
CONV_LOG = "log_conv_nodes"  # the whole-graph term's part in `LatencyModel.breakdown`


def conv_nodes(features: GraphFeatures) -> float:
    """The graph's convolution nodes: the sum of every conv kind's ``count``."""
    count = FEATURES.index("count")
    return float(sum(v[count] for kind, v in features.kinds.items() if kind.startswith("conv_")))


def conv_node_counts(x: np.ndarray, columns: Sequence[str] = COLUMNS) -> np.ndarray:
    """`conv_nodes` of each row of a feature matrix over `columns`."""
    index = [i for i, c in enumerate(columns) if c.startswith("conv_") and c.endswith(".count")]
    return np.asarray(x, dtype=np.float64)[:, index].sum(axis=1)


def conv_log_column(x: np.ndarray, columns: Sequence[str] = COLUMNS) -> np.ndarray:
    """log(1 + convolution nodes) of each row of a feature matrix over `columns`."""
    return np.log1p(conv_node_counts(x, columns))


# ------------------------------------------------------------------------------------------- NNLS


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None, tol: float | None = None) -> np.ndarray:
    """min ||a x - b||_2 subject to x >= 0 (Lawson & Hanson, 1974, algorithm NNLS).

    Active-set method: variables start at zero (active set); the one with the largest positive gradient
    enters the passive set, the unconstrained least-squares problem on the passive set is solved, and if
    a passive variable would go negative, the step is shortened to keep feasibility and the variables
    that hit zero go back to the active set.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 1 or a.shape[0] != b.shape[0]:
        raise ValueError(f"nnls: shapes do not match: a {a.shape}, b {b.shape}")
    m, n = a.shape
    if tol is None:
        tol = 10 * max(m, n) * np.finfo(np.float64).eps * max(1.0, float(np.abs(a).max(initial=0.0)))
    if max_iter is None:
        max_iter = 3 * n + 10
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    gradient = a.T @ (b - a @ x)
    iterations = 0
    while (~passive).any() and gradient[~passive].max(initial=-np.inf) > tol:
        candidates = np.where(~passive, gradient, -np.inf)
        passive[int(np.argmax(candidates))] = True
        while True:
            iterations += 1
            if iterations > max_iter * 10:
                raise RuntimeError("nnls: did not converge")
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            # Step from x towards z as far as feasibility allows; drop the variables that reach zero.
            blocking = passive & (z <= 0)
            alpha = np.min(x[blocking] / (x[blocking] - z[blocking]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        gradient = a.T @ (b - a @ x)
    return x


# ------------------------------------------------------------------------------------------- model


def _features(model_or_features: Any) -> GraphFeatures:
    if isinstance(model_or_features, GraphFeatures):
        return model_or_features
    return graph_features(model_or_features)


def _finite_non_negative(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


@dataclass(frozen=True)
class LatencyModel:
    """``latency_ms = overhead_ms + sum(weights[kind.feature] * features)`` (see the module docstring).

    `overhead_ms` is the fixed cost of one inference call, added once per predicted network.
    `weights` maps "kind.feature" columns to milliseconds per unit (per node, per MAC, per byte, per
    parameter); a column that is not a key has weight 0. `conv_log_ms`: milliseconds per unit of
    log(1 + convolution nodes), the whole-graph term (0: none).
    """

    overhead_ms: float
    weights: dict[str, float]
    conv_log_ms: float = 0.0
    _matrix: dict[str, np.ndarray] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not _finite_non_negative(self.overhead_ms):
            raise NasError(
                f"overhead_ms: must be a non-negative number of milliseconds, got {self.overhead_ms!r}"
            )
        for column, weight in self.weights.items():
            if column not in COLUMNS:
                raise NasError(
                    f"weights.{column}: unknown feature column (a model fitted by an older nas, whose "
                    "operator kinds differ, must be refitted with `nas profile fit`); expected kind.feature "
                    f"with kind one of {', '.join(KINDS)} and feature one of {', '.join(FEATURES)}"
                )
            if not _finite_non_negative(weight):
                raise NasError(f"weights.{column}: must be a non-negative number, got {weight!r}")
        if not _finite_non_negative(self.conv_log_ms):
            raise NasError(f"conv_log_ms: must be a non-negative number, got {self.conv_log_ms!r}")
        object.__setattr__(self, "overhead_ms", float(self.overhead_ms))
        object.__setattr__(self, "conv_log_ms", float(self.conv_log_ms))
        object.__setattr__(self, "weights", {c: float(w) for c, w in self.weights.items()})
        matrix = {kind: np.zeros(len(FEATURES)) for kind in KINDS}
        for column, weight in self.weights.items():
            kind, _, feature = column.partition(".")
            matrix[kind][FEATURES.index(feature)] = weight
        object.__setattr__(self, "_matrix", {k: v for k, v in matrix.items() if v.any()})

    def predict(self, model_or_features: bytes | str | Path | Any) -> float:
        """Predicted latency (ms) of one inference of a network: ONNX bytes / path / ModelProto, or its
        `GraphFeatures` (e.g. a sum of cached block features). The overhead is added once."""
        features = _features(model_or_features)
        total = self.overhead_ms + self._conv_log(features)
        for kind, vector in features.kinds.items():
            weights = self._matrix.get(kind)
            if weights is not None:
                total += float(weights @ vector)
        return total

    def _conv_log(self, features: GraphFeatures) -> float:
        return self.conv_log_ms * math.log1p(conv_nodes(features)) if self.conv_log_ms else 0.0

    def predict_rows(self, x: np.ndarray, columns: Sequence[str] = COLUMNS) -> np.ndarray:
        """`predict` of each row of a feature matrix over `columns` (thousands of networks at once)."""
        x = np.asarray(x, dtype=np.float64)
        out = self.overhead_ms + x @ np.array([self.weights.get(c, 0.0) for c in columns])
        return out + self.conv_log_ms * conv_log_column(x, columns) if self.conv_log_ms else out

    def breakdown(self, model_or_features: Any) -> dict[str, float]:
        """Predicted milliseconds per kind, plus "overhead" (and `CONV_LOG`, the whole-graph term, when the
        model has one); the values sum to `predict`."""
        features = _features(model_or_features)
        parts = {OVERHEAD: self.overhead_ms}
        if self.conv_log_ms:
            parts[CONV_LOG] = self._conv_log(features)
        for kind, vector in features.kinds.items():
            weights = self._matrix.get(kind)
            parts[kind] = float(weights @ vector) if weights is not None else 0.0
        return parts

    def node_breakdown(self, model_or_features: Any) -> list[tuple[str, str, float]]:
        """(node name, kind, predicted ms) for every computing node; the overhead and the whole-graph term
        are not included."""
        features = _features(model_or_features)
        rows = []
        for node in features.nodes:
            weights = self._matrix.get(node.kind)
            rows.append(
                (node.name, node.kind, float(weights @ node.features) if weights is not None else 0.0)
            )
        return rows

    def to_dict(self) -> dict:
        out = {"overhead_ms": self.overhead_ms, "weights": dict(sorted(self.weights.items()))}
        if self.conv_log_ms:
            out["conv_log_ms"] = self.conv_log_ms
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "LatencyModel":
        """The inverse of `to_dict`. Errors are `NasError`s naming the field (e.g. ``weights.x.macs``)."""
        if not isinstance(data, dict):
            raise NasError(f"must be a mapping with overhead_ms and weights, got {data!r}")
        for key in data:
            if key not in ("overhead_ms", "weights", "conv_log_ms"):
                raise NasError(f"{key}: unknown key; expected overhead_ms, weights, conv_log_ms")
        for key in ("overhead_ms", "weights"):
            if key not in data:
                raise NasError(f"{key}: missing required field")
        if not isinstance(data["weights"], dict):
            raise NasError(f"weights: must be a mapping of kind.feature to a number, got {data['weights']!r}")
        return cls(
            overhead_ms=data["overhead_ms"],
            weights=dict(data["weights"]),
            conv_log_ms=data.get("conv_log_ms", 0.0),
        )


# ------------------------------------------------------------------------------------------- fitting


def _check_samples(samples: Sequence[tuple[GraphFeatures, float]]) -> tuple[list[GraphFeatures], np.ndarray]:
    if len(samples) == 0:
        raise NasError("cannot fit a latency model: no samples")
    features, latencies = [], []
    for index, sample in enumerate(samples):
        if not (isinstance(sample, tuple) and len(sample) == 2 and isinstance(sample[0], GraphFeatures)):
            raise TypeError(f"sample {index}: expected a (GraphFeatures, latency_ms) tuple, got {sample!r}")
        latency = sample[1]
        if not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency > 0):
            raise NasError(
                f"sample {index}: latency must be a positive number of milliseconds, got {latency!r}"
            )
        features.append(sample[0])
        latencies.append(float(latency))
    return features, np.asarray(latencies)


def fit_latency_model(
    samples: Sequence[tuple[GraphFeatures, float]], graph_term: bool = False
) -> LatencyModel:
    """Fit overhead and weights to (features, measured latency in ms) samples by relative-error NNLS;
    with `graph_term`, the whole-graph term's `conv_log_ms` too.

    Block-table samples each contain one per-measurement overhead; it is learnt once as `overhead_ms`
    (see the module docstring), so a network predicted from summed block features pays it once.
    """
    return fit_matrix(*sample_matrix(samples), graph_term=graph_term)


def sample_matrix(samples: Sequence[tuple[GraphFeatures, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Checked (features, latency ms) samples as a feature matrix (rows over `COLUMNS`) and latencies."""
    features, y = _check_samples(samples)
    return np.stack([f.vector(COLUMNS) for f in features]), y


def fit_matrix(
    x: np.ndarray, y: np.ndarray, columns: Sequence[str] = COLUMNS, graph_term: bool = False
) -> LatencyModel:
    """`fit_latency_model` on a feature matrix (rows: graphs, over `columns`) and latencies (ms): for
    fitting thousands of networks without building `GraphFeatures`."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[1] != len(columns):
        raise ValueError(f"fit_matrix: shapes do not match: x {x.shape}, y {y.shape}, {len(columns)} columns")
    if not (np.isfinite(y).all() and (y > 0).all()):
        raise NasError("cannot fit a latency model: latencies must be positive numbers of milliseconds")
    used = np.flatnonzero(np.abs(x).max(axis=0) > 0)
    extra = [conv_log_column(x, columns)[:, None]] if graph_term else []
    design = np.hstack([np.ones((len(y), 1)), x[:, used], *extra])
    relative = design / y[:, None]  # minimize sum ((prediction - y) / y)^2
    scale = np.abs(relative).max(axis=0)
    scale[scale == 0] = 1.0
    solution = nnls(relative / scale, np.ones(len(y))) / scale
    return LatencyModel(
        overhead_ms=float(solution[0]),
        weights={columns[c]: float(w) for c, w in zip(used, solution[1 : 1 + len(used)])},
        conv_log_ms=float(solution[-1]) if graph_term else 0.0,
    )


# ------------------------------------------------------------------------------------------- metrics


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either sequence accounted for); nan when either sequence is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau: sequences of different shapes {x.shape} and {y.shape}")
    n = len(x)
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    dx = np.sign(x[i] - x[j])
    dy = np.sign(y[i] - y[j])
    concordant_minus_discordant = float(np.sum(dx * dy))
    n0 = len(i)
    ties_x = float(np.sum(dx == 0))
    ties_y = float(np.sum(dy == 0))
    denominator = math.sqrt((n0 - ties_x) * (n0 - ties_y))
    if denominator == 0:
        return float("nan")
    return concordant_minus_discordant / denominator


def error_metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """``{"mape": percent, "within_10pct": fraction, "kendall_tau": tau-b, "n": count}``.

    MAPE = mean(|predicted - measured| / measured) * 100; within_10pct = fraction of predictions with
    |predicted - measured| <= 0.1 * measured. Every measured value must be positive.
    """
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if p.shape != m.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(
            f"error_metrics: need two equally long non-empty sequences, got {p.shape} and {m.shape}"
        )
    if not (m > 0).all():
        raise ValueError("error_metrics: measured latencies must be positive")
    relative = np.abs(p - m) / m
    return {
        "mape": float(relative.mean() * 100),
        "within_10pct": float(np.mean(relative <= 0.1 + 1e-12)),
        "kendall_tau": kendall_tau(p, m),
        "n": int(len(p)),
    }


def fold_splits(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """The k folds of `n` samples (seeded shuffle) that every held-out estimate in the package uses, so
    two models' held-out errors compare on the same splits."""
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise NasError(f"folds must be an integer >= 2, got {folds!r}")
    if folds > n:
        raise NasError(f"cannot make {folds} folds out of {n} samples")
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def held_out_matrix(
    x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, graph_term: bool = False
) -> np.ndarray:
    """`held_out_predictions` on a feature matrix (rows over `COLUMNS`) and latencies (ms)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    predicted = np.empty(len(y))
    for held_out in fold_splits(len(y), folds, seed):
        mask = np.ones(len(y), dtype=bool)
        mask[held_out] = False
        predicted[held_out] = fit_matrix(x[mask], y[mask], graph_term=graph_term).predict_rows(x[held_out])
    return predicted


def held_out_predictions(
    samples: Sequence[tuple[GraphFeatures, float]], folds: int = 5, seed: int = 0, graph_term: bool = False
) -> np.ndarray:
    """Each sample's prediction by the model fitted on the other folds (k-fold, seeded shuffle)."""
    return held_out_matrix(*sample_matrix(samples), folds, seed, graph_term)


def cross_validate(
    samples: Sequence[tuple[GraphFeatures, float]],
    folds: int = 5,
    seed: int = 0,
    predicted: np.ndarray | None = None,
) -> dict:
    """k-fold cross-validation: fit on k-1 folds, predict the held-out fold; `error_metrics` over every
    held-out prediction (``mape`` percent, ``within_10pct``, ``kendall_tau``, ``n``), plus ``folds``,
    ``seed`` and ``fold_mape`` (each fold's own MAPE, percent). `predicted`: the held-out predictions
    when the caller already made them (`held_out_predictions` with the same folds and seed)."""
    if predicted is None:
        predicted = held_out_predictions(samples, folds, seed)
    y = np.asarray([float(s[1]) for s in samples])
    fold_mape = [
        float(np.mean(np.abs(predicted[f] - y[f]) / y[f]) * 100) for f in fold_splits(len(y), folds, seed)
    ]
    metrics = error_metrics(predicted, y)
    metrics.update({"folds": folds, "seed": seed, "fold_mape": fold_mape})
    return metrics
