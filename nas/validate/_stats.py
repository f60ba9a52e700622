"""Statistics of one slice: Wilson interval, expected calibration error, per-class accuracy, confusions."""

from __future__ import annotations

import math

import numpy as np

from nas.runtime import softmax

Z95 = 1.959963984540054  # two-sided 95% normal quantile
ECE_BINS = 15


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval contains p; rounding can put a bound on the wrong side of it (p = 1: 0.9999999999999999).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width confidence bins of (bin share) * |accuracy - mean confidence|.

    Bins are (k/B, (k+1)/B]; a confidence of exactly 0 goes to the first bin.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def slice_statistics(
    logits: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], top_confusions: int = 3
) -> dict:
    """Accuracy (Wilson 95% CI), ECE, per-class accuracy and the most frequent confusions of one slice."""
    labels = np.asarray(labels, dtype=np.int64)
    n = int(len(labels))
    probs = softmax(logits.astype(np.float64))
    predicted = probs.argmax(axis=1)
    hit = predicted == labels
    correct = int(hit.sum())
    low, high = wilson_interval(correct, n)
    per_class = {}
    for k, name in enumerate(classes):
        mask = labels == k
        if mask.any():
            per_class[name] = {"n": int(mask.sum()), "accuracy": float(hit[mask].mean())}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    pairs = []
    for flat in np.argsort(-off, axis=None, kind="stable")[:top_confusions]:
        t, p = np.unravel_index(flat, off.shape)
        if off[t, p] == 0:
            break
        pairs.append(
            {
                "true": classes[t],
                "predicted": classes[p],
                "count": int(off[t, p]),
                "fraction_of_true": float(off[t, p] / confusion[t].sum()),
            }
        )
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else float("nan"),
        "ci95": [low, high],
        "ece": expected_calibration_error(probs.max(axis=1), hit),
        "per_class": per_class,
        "confusions": pairs,
    }


def mcnemar_exact(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value on paired outcomes: the discordant pairs (first right and second
    wrong, and the reverse) are Binomial(first_only + second_only, 1/2) when both are equally accurate."""
    n = first_only + second_only
    if n == 0:
        return 1.0
    k = min(first_only, second_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
