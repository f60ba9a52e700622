"""Few-shot latency models: a new device from k whole-network measurements, other devices as the prior.

**What it does.** Given latency models already fitted on other devices (the *prior*: D `LatencyModel`s)
and k measured networks of a new device (``(GraphFeatures, latency_ms)``), `fit_few_shot` models the new
device as a non-negative combination of the prior devices' predictions plus a non-negative extra
overhead::

    latency_new(x) = c + sum_d a_d * predict_d(x),    a_d >= 0, c >= 0

Every prior model is linear in the graph features, so the combination is itself a `LatencyModel` over
the same columns: ``overhead_ms = c + sum_d a_d * overhead_d``, ``weights = sum_d a_d * weights_d`` and
the whole-graph term ``conv_log_ms = sum_d a_d * conv_log_ms_d`` (non-negative, as `LatencyModel`
requires). The rest of the package uses it like any fitted model.

**Why.** A device's per-kind costs are not arbitrary: devices of one family (GPUs with one framework,
CPUs, phones with TFLite) share which operators are expensive and differ mostly by scale, so the k
measurements only have to place the new device among devices seen before, D numbers instead of the
~50 per-kind weights a direct fit (`fit_latency_model`) needs; with k = 10 a direct fit is
underdetermined, a combination is not. This is the "combination of the corpus devices' model
predictions" variant of few-shot adaptation; HELP (Lee et al., NeurIPS 2021) meta-learns a device
embedding instead, which needs no more than this at prediction time but needs training.

**How.**

* Columns are normalized: each prior prediction is divided by its mean over the k networks, and the
  unknowns are expressed as fractions ``alpha_d`` of the mean measured latency, so that
  ``alpha_d = 1/D`` for every d is the *consensus* model (the average of the prior devices, each
  rescaled to the new device's mean latency).
* Fit: minimize the *relative* squared error (each row divided by its measured latency, as
  `fit_latency_model` does) plus ``ridge * (||alpha - 1/D||^2 + gamma^2)`` (shrinkage toward the
  consensus and toward no extra overhead), subject to ``alpha, gamma >= 0``: a non-negative
  least-squares problem on the augmented system, solved by `nas.latency._model.nnls`.
* ``ridge`` is chosen from a grid (`RIDGES`) by leave-one-out on the k measurements (mean squared
  relative error).
* **Error estimate** (`FewShotModel.loo_predictions`, `loo_mape`): leave-one-out. For k <=
  `NESTED_LOO_MAX_K` it is *nested*: for each left-out network the ridge is chosen again by
  leave-one-out on the other k - 1, so the held-out prediction never saw the network, not even through
  the choice of the ridge. Above that, the ridge chosen on all k is reused (choosing one of a handful of
  values on >30 points barely biases the estimate, and the nested version costs k times more).
* **90% prediction interval** (split-conformal on the leave-one-out residuals, "jackknife" intervals):
  ``r_i = |log(measured_i / loo_predicted_i)|``, ``q`` = the ``ceil((k + 1) * coverage)``-th smallest
  ``r_i`` (the largest when that exceeds k), and the interval for a new network is ``[p * exp(-q),
  p * exp(q)]`` around its prediction p. Multiplicative, because latency errors scale with latency.
  With k = 10 and coverage 0.9, q is the largest of the 10 residuals.

`fit_matrix` is `fit_latency_model` on a feature matrix (the same relative-error NNLS, for fitting
thousands of networks without building `GraphFeatures`); `combine` builds the `LatencyModel` of a
combination. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from nas.errors import NasError
from nas.latency._features import COLUMNS, GraphFeatures
from nas.latency._model import LatencyModel, _check_samples, fit_matrix, fold_splits, nnls  # noqa: F401 (fit_matrix: re-exported)

RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
NESTED_LOO_MAX_K = 30
DEFAULT_COVERAGE = 0.9


# ------------------------------------------------------------------------------------------- helpers


def model_arrays(
    models: Sequence[LatencyModel], columns: Sequence[str] = COLUMNS
) -> tuple[np.ndarray, np.ndarray]:
    """(overheads (D,), weights (D x columns)) of D models (their whole-graph terms are not in them:
    `LatencyModel.predict_rows` predicts with everything)."""
    overheads = np.array([m.overhead_ms for m in models], dtype=np.float64)
    weights = np.array([[m.weights.get(c, 0.0) for c in columns] for m in models], dtype=np.float64)
    return overheads, weights


def combine(
    models: Sequence[LatencyModel], coefficients: Sequence[float], extra_overhead_ms: float = 0.0
) -> LatencyModel:
    """The `LatencyModel` predicting ``extra_overhead_ms + sum_d coefficients[d] * models[d].predict``."""
    a = np.asarray(coefficients, dtype=np.float64)
    if a.shape != (len(models),) or (a < 0).any() or not np.isfinite(a).all():
        raise NasError(f"combine: need {len(models)} non-negative finite coefficients, got {coefficients!r}")
    overheads, weights = model_arrays(models)
    total = a @ weights
    return LatencyModel(
        overhead_ms=float(extra_overhead_ms + a @ overheads),
        weights={c: float(w) for c, w in zip(COLUMNS, total) if w > 0},
        conv_log_ms=float(a @ np.array([m.conv_log_ms for m in models], dtype=np.float64)),
    )


# ------------------------------------------------------------------------------------------- core


def _solve(q: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """Coefficients a (D,) and extra overhead c for prior predictions q (k x D) and latencies y (k,)."""
    k, d = q.shape
    y_mean = float(y.mean())
    q_mean = q.mean(axis=0)
    q_mean[q_mean <= 0] = 1.0
    # Unknowns [alpha (D), gamma]: prediction_i = y_mean * (sum_d alpha_d q_id / q_mean_d + gamma).
    design = np.hstack([q / q_mean, np.ones((k, 1))]) * (y_mean / y)[:, None]
    target = np.ones(k)
    root = math.sqrt(ridge)
    prior = np.append(np.full(d, 1.0 / d), 0.0)
    design = np.vstack([design, root * np.eye(d + 1)])
    target = np.concatenate([target, root * prior])
    solution = nnls(design, target)
    return y_mean * solution[:d] / q_mean, y_mean * float(solution[d])


def _predict(q: np.ndarray, a: np.ndarray, c: float) -> np.ndarray:
    return c + q @ a


def _loo(q: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    k = len(y)
    out = np.empty(k)
    for i in range(k):
        keep = np.arange(k) != i
        a, c = _solve(q[keep], y[keep], ridge)
        out[i] = _predict(q[i : i + 1], a, c)[0]
    return out


def _score(predicted: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(((predicted - y) / y) ** 2))


def _choose_ridge(q: np.ndarray, y: np.ndarray, ridges: Sequence[float]) -> float:
    scores = [_score(_loo(q, y, r), y) for r in ridges]
    return float(ridges[int(np.argmin(scores))])


def conformal_quantile(log_residuals: np.ndarray, coverage: float) -> float:
    """The ceil((k + 1) * coverage)-th smallest |log residual| (the largest when that exceeds k)."""
    r = np.sort(np.abs(np.asarray(log_residuals, dtype=np.float64)))
    rank = math.ceil((len(r) + 1) * coverage)
    return float(r[min(rank, len(r)) - 1])


def prior_matrix(models: Sequence[LatencyModel], features: Sequence[GraphFeatures]) -> np.ndarray:
    """The prior models' predictions (ms) of each graph: one row per graph, one column per model."""
    return np.array([[m.predict(f) for m in models] for f in features], dtype=np.float64).reshape(
        len(features), len(models)
    )


def design_few_shot(q: np.ndarray, k: int, seed: int = 0, iterations: int = 30) -> np.ndarray:
    """Indices of k rows of `q` (a pool of candidate networks x the prior models' predictions, ms; several
    columns per device when it may run several graphs) to measure for a few-shot fit.

    Random networks repeat what the first few said: the prior devices agree on most of them up to scale,
    and the combination's coefficients are only learnt where the devices disagree. Each candidate is
    described by its relative deviation from the consensus per column (``q_d / mean(q_d)`` over the
    pool, divided by the row's mean of those) and its log consensus latency (the scale), each
    standardized over the pool. k-means on those (k-means++ start, `seed`) splits the pool into k kinds
    of network, and the candidate nearest each centre is measured: every kind of disagreement is seen
    once, and no outlier is (a design for the extremes lets the few networks a device's model fits worst
    steer its fit). Candidates with a non-positive prediction are never chosen."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"few-shot design: predictions must be a pool x devices matrix, got shape {q.shape}")
    usable = np.flatnonzero(np.isfinite(q).all(axis=1) & (q > 0).all(axis=1))
    if not 1 <= k <= len(usable):
        raise NasError(f"few-shot design: need {k} candidates with positive predictions, got {len(usable)}")
    relative = q[usable] / q[usable].mean(axis=0)
    consensus = relative.mean(axis=1)
    log_scale = np.log(consensus)
    columns = np.hstack([relative / consensus[:, None] - 1.0, log_scale[:, None] - log_scale.mean()])
    spread = columns.std(axis=0)
    columns = columns / np.where(spread > 0, spread, 1.0)
    rng = np.random.default_rng(seed)
    centres = [columns[rng.integers(len(columns))]]
    distance = ((columns - centres[0]) ** 2).sum(axis=1)  # each candidate's to its nearest centre so far
    for _ in range(k - 1):  # k-means++: each next centre drawn in proportion to its squared distance
        total = distance.sum()
        centres.append(
            columns[rng.choice(len(columns), p=distance / total) if total > 0 else rng.integers(len(columns))]
        )
        distance = np.minimum(distance, ((columns - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    for _ in range(iterations):
        label = np.argmin(((columns[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        centres = np.array(
            [columns[label == j].mean(axis=0) if (label == j).any() else centres[j] for j in range(k)]
        )
    distance = ((columns[:, None, :] - centres[None]) ** 2).sum(axis=2)
    chosen: list[int] = []
    for j in range(k):
        chosen.append(next(int(i) for i in np.argsort(distance[:, j], kind="stable") if i not in chosen))
    return usable[chosen]


@dataclass(frozen=True)
class FewShotFit:
    """The matrix-level result of `fit_few_shot_predictions` (see `FewShotModel` for the fields)."""

    coefficients: np.ndarray
    extra_overhead_ms: float
    ridge: float
    loo_predictions: np.ndarray
    interval_log_halfwidth: float
    nested: bool

    def predict(self, q: np.ndarray) -> np.ndarray:
        return _predict(np.atleast_2d(q), self.coefficients, self.extra_overhead_ms)


def fit_few_shot_predictions(
    q: np.ndarray, y: np.ndarray, *, ridges: Sequence[float] = RIDGES, coverage: float = DEFAULT_COVERAGE
) -> FewShotFit:
    """The method on matrices: q (k x D) the prior models' predictions for the k measured networks, y (k,)
    their measured latencies (ms). See the module docstring."""
    q = np.asarray(q, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if q.ndim != 2 or y.shape != (q.shape[0],):
        raise ValueError(f"shapes do not match: predictions {q.shape}, latencies {y.shape}")
    k = len(y)
    if k < 3:
        raise NasError(f"few-shot fit: need at least 3 measured networks (leave-one-out), got {k}")
    if not (np.isfinite(y).all() and (y > 0).all()):
        raise NasError("few-shot fit: measured latencies must be positive numbers of milliseconds")
    if not 0 < coverage < 1:
        raise NasError(f"coverage must be in (0, 1), got {coverage!r}")
    ridges = tuple(float(r) for r in ridges)
    ridge = _choose_ridge(q, y, ridges)
    nested = k <= NESTED_LOO_MAX_K and len(ridges) > 1
    if nested:
        loo = np.empty(k)
        for i in range(k):
            keep = np.arange(k) != i
            inner = _choose_ridge(q[keep], y[keep], ridges)
            a, c = _solve(q[keep], y[keep], inner)
            loo[i] = _predict(q[i : i + 1], a, c)[0]
    else:
        loo = _loo(q, y, ridge)
    a, c = _solve(q, y, ridge)
    residuals = np.log(y / np.maximum(loo, 1e-9))
    return FewShotFit(
        coefficients=a,
        extra_overhead_ms=c,
        ridge=ridge,
        loo_predictions=loo,
        interval_log_halfwidth=conformal_quantile(residuals, coverage),
        nested=nested,
    )


def held_out_few_shot(q: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each network's few-shot prediction by the fit on the other folds (`fold_splits`: the folds of the
    direct fit's cross-validation), so the two fits' held-out errors compare on the same splits."""
    q = np.asarray(q, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    predicted = np.empty(len(y))
    for held_out in fold_splits(len(y), folds, seed):
        mask = np.ones(len(y), dtype=bool)
        mask[held_out] = False
        predicted[held_out] = fit_few_shot_predictions(q[mask], y[mask]).predict(q[held_out])
    return predicted


# ------------------------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class FewShotModel:
    """A few-shot device model.

    `model`: the `LatencyModel` (use it like any other). `coefficients`: each prior device's ``a_d``
    (name -> coefficient), `extra_overhead_ms`: ``c``. `ridge`: the shrinkage chosen by leave-one-out.
    `loo_predictions`: each measured network predicted without it (nested leave-one-out when `nested`);
    `loo_mape` (percent) and `loo_within_10pct` summarize them: the honest error estimate.
    `interval_log_halfwidth`: q of the interval ``[p * exp(-q), p * exp(q)]`` (`interval`), nominal
    coverage `coverage`.
    """

    model: LatencyModel
    coefficients: dict[str, float]
    extra_overhead_ms: float
    ridge: float
    loo_predictions: np.ndarray = field(repr=False)
    measured: np.ndarray = field(repr=False)
    loo_mape: float
    loo_within_10pct: float
    interval_log_halfwidth: float
    coverage: float
    nested: bool

    def predict(self, features) -> float:
        return self.model.predict(features)

    def interval(self, features) -> tuple[float, float]:
        """The prediction interval (ms) of one network at the nominal `coverage`."""
        p = self.model.predict(features)
        return p * math.exp(-self.interval_log_halfwidth), p * math.exp(self.interval_log_halfwidth)


def fit_few_shot(
    prior: Mapping[str, LatencyModel] | Sequence[LatencyModel],
    samples: Sequence[tuple[GraphFeatures, float]],
    *,
    ridges: Sequence[float] = RIDGES,
    coverage: float = DEFAULT_COVERAGE,
) -> FewShotModel:
    """Fit a new device from k (features, measured ms) samples with `prior` devices' models (a mapping
    name -> model, or a sequence, named "0", "1", ...). See the module docstring."""
    if not isinstance(prior, Mapping):
        prior = {str(i): m for i, m in enumerate(prior)}
    if not prior:
        raise NasError("few-shot fit: the prior has no device models")
    for name, model in prior.items():
        if not isinstance(model, LatencyModel):
            raise TypeError(f"prior {name!r}: expected a LatencyModel, got {type(model).__name__}")
    features, y = _check_samples(samples)
    names = list(prior)
    models = [prior[n] for n in names]
    q = prior_matrix(models, features)
    result = fit_few_shot_predictions(q, y, ridges=ridges, coverage=coverage)
    relative = np.abs(result.loo_predictions - y) / y
    return FewShotModel(
        model=combine(models, result.coefficients, result.extra_overhead_ms),
        coefficients={n: float(a) for n, a in zip(names, result.coefficients)},
        extra_overhead_ms=result.extra_overhead_ms,
        ridge=result.ridge,
        loo_predictions=result.loo_predictions,
        measured=y,
        loo_mape=float(relative.mean() * 100),
        loo_within_10pct=float(np.mean(relative <= 0.1 + 1e-12)),
        interval_log_halfwidth=result.interval_log_halfwidth,
        coverage=coverage,
        nested=result.nested,
    )
