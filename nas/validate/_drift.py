"""Drift: accuracy over time with a trend test, and a label-free alarm calibrated on in-distribution data.

The alarm looks at a window of images without labels and compares it with a reference set (images
known to be in-distribution) by three statistics:

- `confidence_psi`: population stability index of the top-1 confidence histogram (10 bins at the
  reference's deciles);
- `class_psi`: population stability index of the predicted-class rates;
- `image_shift`: the largest |z| of the window's mean of twelve per-image statistics (brightness, contrast,
  gradient, JPEG blockiness, noise level, sharpness, JPEG re-encoding error, flat patches: see
  `image_features`) against the reference;
- `image_outliers`: the fraction of the window's images with a statistic outside the reference's central
  99% (a corruption that hits a share of the images strongly moves few means but many images).

Calibration: the in-distribution images are split (seeded) into a reference (two thirds) and a held-out
part (one third). The null distribution of the statistics is a two-sample bootstrap: a reference of the
reference's size and a window of the window size, both resampled from the reference, so that it holds
the chance deviation of the reference itself as well as the window's. Each statistic of a window becomes
its rank among the bootstrap values; a window's score is its largest rank. The bootstrap treats the
reference as the population, which under-states the false-alarm rate on fresh data: with a threshold at
the 95th percentile, 16 random reference splits of CIFAR-10 (2,000 reference images, windows of 100)
measured 6.6% on average. The threshold is therefore the (1 - alpha / 2) quantile of the bootstrap scores
for a stated false-alarm rate of at most alpha (those splits: 3.5% on average at alpha = 5%). The rate
is then measured on windows drawn from the held-out part, which set neither the reference nor the
threshold.

The trend test is the Cochran-Armitage test for a trend in accuracy over the ordered windows (two-sided,
normal approximation): it uses every image, not only the window means.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nas.errors import NasError
from nas.runtime import softmax
from nas.validate._stats import wilson_interval

STATISTICS = ("confidence_psi", "class_psi", "image_shift", "image_outliers")
OUTLIER_QUANTILES = (0.005, 0.995)
CONFIDENCE_BINS = 10
DEFAULT_BOOTSTRAP = 500
CALIBRATION_MARGIN = 2  # threshold at the 1 - alpha / 2 quantile (see the module docstring)
DEFAULT_HELD_OUT_WINDOWS = 200


@dataclass
class Observations:
    """What the alarm sees of each image: the model's confidence and prediction, and image statistics."""

    confidence: np.ndarray
    predicted: np.ndarray
    features: np.ndarray  # N x 12 (see image_features)

    def take(self, index) -> Observations:
        return Observations(self.confidence[index], self.predicted[index], self.features[index])

    def __len__(self) -> int:
        return len(self.confidence)


def _filter(grey: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A 'valid' 3x3 correlation of a 2-D image (no padding), in numpy."""
    h, w = grey.shape
    return sum(kernel[i, j] * grey[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)  # blind to planes and edges
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


GHOST_QUALITY = 60  # re-encoding quality of the JPEG statistic
FLAT_PATCH = 4  # side of the uniform squares counted by the flat-patch statistic
FEATURES = 12


def jpeg_ghost(img: np.ndarray, quality: int = GHOST_QUALITY) -> float:
    """Mean absolute change of an image re-encoded as JPEG: an image already compressed at a similar or
    lower quality changes little (its detail is already quantised away), a camera image changes more."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        again = np.asarray(im.convert("RGB"), np.float32)
    return float(np.abs(again - img.astype(np.float32)).mean())


def flat_patches(img: np.ndarray, side: int = FLAT_PATCH) -> float:
    """Share of `side` x `side` squares with one colour exactly: an occluder (a sticker, a finger, dead
    pixels) is flat; a camera image, with its noise and texture, almost never is."""
    if min(img.shape[:2]) < side:
        return 0.0
    squares = sliding_window_view(img, (side, side), axis=(0, 1))
    return float((squares.max(axis=(-1, -2)) == squares.min(axis=(-1, -2))).all(-1).mean())


def image_features(images) -> np.ndarray:
    """Per image (0-255 scale): mean and standard deviation of each channel; mean absolute gradient; JPEG
    blockiness (gradient across 8-pixel block edges over the gradient elsewhere); noise level (Immerkaer's
    estimate of the standard deviation of Gaussian noise); sharpness (mean |Laplacian| over mean gradient);
    JPEG re-encoding error (`jpeg_ghost`); share of flat squares (`flat_patches`)."""
    out = np.empty((len(images), FEATURES), np.float64)
    for i, img in enumerate(images):
        pixels = np.asarray(img, np.uint8)
        x = pixels.astype(np.float32)
        grey = x.mean(axis=2)
        across = np.abs(np.diff(grey, axis=1))
        edges = np.zeros(across.shape[1], bool)
        edges[7::8] = True
        gradient = (np.abs(np.diff(grey, axis=0)).mean() + across.mean()) / 2
        out[i, :3] = x.mean(axis=(0, 1))
        out[i, 3:6] = x.std(axis=(0, 1))
        out[i, 6] = gradient
        out[i, 7] = across[:, edges].mean() / (across[:, ~edges].mean() + 1.0) if edges.any() else 1.0
        if min(grey.shape) >= 3:
            out[i, 8] = math.sqrt(math.pi / 2) / 6 * np.abs(_filter(grey, _NOISE_KERNEL)).mean()
            out[i, 9] = np.abs(_filter(grey, _LAPLACIAN)).mean() / (gradient + 1.0)
        else:
            out[i, 8:10] = 0.0
        out[i, 10] = jpeg_ghost(pixels)
        out[i, 11] = flat_patches(pixels)
    return out


def observe(model, images) -> Observations:
    """Run `model` (an OnnxClassifier) on `images` once: everything the alarm needs of them."""
    probs = softmax(model.logits(images).astype(np.float64))
    return Observations(probs.max(axis=1), probs.argmax(axis=1), image_features(images))


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two histograms (counts); half a count added to each bin."""
    p = (reference + 0.5) / (reference.sum() + 0.5 * len(reference))
    q = (current + 0.5) / (current.sum() + 0.5 * len(current))
    return float(np.sum((q - p) * np.log(q / p)))


class DriftMonitor:
    """The calibrated label-free alarm (see the module docstring); `check` scores one window."""

    def __init__(self, reference: Observations, num_classes: int):
        self.num_classes = num_classes
        self.edges = np.quantile(reference.confidence, np.linspace(0, 1, CONFIDENCE_BINS + 1)[1:-1])
        self.confidence_hist = self._confidence_hist(reference)
        self.class_hist = np.bincount(reference.predicted, minlength=num_classes).astype(np.float64)
        self.feature_mean = reference.features.mean(axis=0)
        self.feature_sd = reference.features.std(axis=0) + 1e-9
        self.feature_range = np.quantile(reference.features, OUTLIER_QUANTILES, axis=0)
        self.bootstrap: np.ndarray | None = None  # bootstrap windows x statistics
        self.threshold = math.inf
        self.alpha = 0.05

    def _confidence_hist(self, obs: Observations) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, obs.confidence), minlength=CONFIDENCE_BINS).astype(
            float
        )

    def statistics(self, window: Observations) -> np.ndarray:
        z = (window.features.mean(axis=0) - self.feature_mean) / (self.feature_sd / math.sqrt(len(window)))
        return np.array(
            [
                psi(self.confidence_hist, self._confidence_hist(window)),
                psi(self.class_hist, np.bincount(window.predicted, minlength=self.num_classes).astype(float)),
                float(np.abs(z).max()),
                float(
                    np.mean(
                        (
                            (window.features < self.feature_range[0])
                            | (window.features > self.feature_range[1])
                        ).any(1)
                    )
                ),
            ]
        )

    def _score(self, stats: np.ndarray) -> tuple[float, int]:
        ranks = [
            np.searchsorted(self.bootstrap[:, k], stats[k], side="left") / len(self.bootstrap)
            for k in range(len(STATISTICS))
        ]
        return float(max(ranks)), int(np.argmax(ranks))

    @classmethod
    def calibrate(
        cls,
        reference: Observations,
        num_classes: int,
        window: int,
        *,
        alpha: float = 0.05,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        seed: int = 0,
    ) -> DriftMonitor:
        """The monitor of `reference`, its threshold from `bootstrap` two-sample resamples of it."""
        if not 0 < alpha < 1:
            raise NasError(f"alpha must be between 0 and 1, got {alpha!r}")
        rng = np.random.default_rng(seed)
        n = len(reference)
        stats = np.array(
            [
                cls(reference.take(rng.integers(0, n, n)), num_classes).statistics(
                    reference.take(rng.integers(0, n, window))
                )
                for _ in range(bootstrap)
            ]
        )
        monitor = cls(reference, num_classes)
        monitor.bootstrap = np.sort(stats, axis=0)
        scores = [monitor._score(s)[0] for s in stats]
        monitor.threshold = float(np.quantile(scores, 1 - alpha / CALIBRATION_MARGIN))
        monitor.alpha = alpha
        return monitor

    def thresholds(self) -> dict[str, float]:
        """Each statistic's own bootstrap quantile at the alarm's level, for reading a window's numbers."""
        level = 1 - self.alpha / CALIBRATION_MARGIN
        return {name: float(np.quantile(self.bootstrap[:, k], level)) for k, name in enumerate(STATISTICS)}

    def check(self, window: Observations) -> dict:
        stats = self.statistics(window)
        score, which = self._score(stats)
        return {
            **dict(zip(STATISTICS, map(float, stats))),
            "score": score,
            "alarm": score > self.threshold,
            "strongest": STATISTICS[which],
        }

    def false_alarm_rate(
        self, held_out: Observations, window: int, windows: int = DEFAULT_HELD_OUT_WINDOWS, seed: int = 1
    ) -> float:
        """The fraction of `windows` windows drawn from in-distribution `held_out` data that alarm (each window
        without replacement when there are enough images, so it is a real sample of distinct images)."""
        rng = np.random.default_rng(seed)
        replace = len(held_out) < window
        return float(
            np.mean(
                [
                    self.check(held_out.take(rng.choice(len(held_out), window, replace=replace)))["alarm"]
                    for _ in range(windows)
                ]
            )
        )


def split_reference(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices 0..n-1 shuffled (seeded) into the reference (two thirds) and the held-out part (one third)."""
    order = np.random.default_rng(seed).permutation(n)
    return order[: 2 * n // 3], order[2 * n // 3 :]


def accuracy_trend(correct_per_window, n_per_window) -> dict:
    """Cochran-Armitage test for a linear trend in accuracy over ordered windows (two-sided)."""
    x = np.asarray(correct_per_window, np.float64)
    n = np.asarray(n_per_window, np.float64)
    w = np.arange(len(n), dtype=np.float64)
    total = n.sum()
    p = x.sum() / total
    statistic = float(np.sum(w * (x - n * p)))
    variance = p * (1 - p) * (np.sum(n * w * w) - np.sum(n * w) ** 2 / total)
    if len(n) < 2 or variance <= 0:
        return {"test": "Cochran-Armitage", "z": 0.0, "p_value": 1.0, "direction": "none"}
    z = statistic / math.sqrt(variance)
    return {
        "test": "Cochran-Armitage",
        "z": z,
        "p_value": math.erfc(abs(z) / math.sqrt(2)),
        "direction": "falling" if z < 0 else "rising",
    }


def window_accuracy(correct: np.ndarray) -> dict:
    k, n = int(correct.sum()), int(len(correct))
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else float("nan"),
        "ci95": list(wilson_interval(k, n)),
    }
