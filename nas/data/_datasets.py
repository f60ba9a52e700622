"""`ImageDataset` and `load_dataset`: one in-memory image set, whatever the source.

Everything downstream (training, search, export) sees the same thing: uint8 NHWC arrays with a
train/validation split and the normalisation statistics of the training part.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from nas._resources import builtin_dataset_path
from nas.data._decoded_cache import decoded
from nas.data._sources import RawImages, read_builtin_zip, read_folder, read_npz, resize_batch
from nas.errors import NasError

BUILTIN = "builtin"

# Decoded builtin arrays keyed by zip path, within a process; across processes, `_decoded_cache`.
_BUILTIN_CACHE: dict[str, tuple] = {}
_BUILTIN_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images as uint8 NHWC arrays with a train/validation split, plus the normalisation that goes with them."""

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resized_from: tuple[tuple[int, int], ...] | None = None  # original (H, W) sizes when resized on load

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> dict:
        """A JSON-able summary for run records and the CLI (no arrays)."""
        out = {
            "name": self.name,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "num_train": int(len(self.y_train)),
            "num_val": int(len(self.y_val)),
            "image_size": self.image_size,
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
        }
        if self.resized_from is not None:
            out["resized_from"] = [f"{h}x{w}" for h, w in self.resized_from]
        return out


def channel_stats(x: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and (population) std of `x / 255`, accumulated in float64 in chunks (std 1 for a
    constant channel)."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(x), 1024):
        chunk = x[start : start + 1024].reshape(-1, 3).astype(np.float64)
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
    n = len(x) * x.shape[1] * x.shape[2]
    mean = total / n
    var = np.maximum(total_sq / n - mean**2, 0.0)
    m, s = mean / 255.0, np.sqrt(var) / 255.0
    # A channel that never varies normalizes to 0 whatever it is divided by; 1 avoids dividing by zero.
    s = np.where(s < 1e-6, 1.0, s)
    return (float(m[0]), float(m[1]), float(m[2])), (float(s[0]), float(s[1]), float(s[2]))


def stratified_split(
    y: np.ndarray, classes: tuple[str, ...], val_fraction: float, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: per class, shuffle with one default_rng(seed) and hold out
    round(val_fraction * n_c) (at least 1). Indices come back in original order."""
    counts = np.bincount(y, minlength=len(classes))
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label, name in enumerate(classes):
        if counts[label] < 2:
            raise NasError(
                f"dataset {where}: class '{name}' has {counts[label]} sample(s), "
                "needs at least 2 to split into train and validation"
            )
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, int(round(val_fraction * len(idx))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _check_options(val_fraction, seed, image_size) -> None:
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, Real)
        or not (math.isfinite(val_fraction) and 0 < val_fraction <= 0.5)
    ):
        raise NasError(f"val_fraction must be in (0, 0.5], got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise NasError(f"seed must be a non-negative integer, got {seed!r}")
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, Integral) or image_size < 1
    ):
        raise NasError(f"image_size must be a positive integer, got {image_size!r}")


def _load_builtin(image_size: int | None) -> ImageDataset:
    path = builtin_dataset_path()
    key = str(path)
    with _BUILTIN_LOCK:
        if key not in _BUILTIN_CACHE:
            _BUILTIN_CACHE[key] = decoded(path, _decode_builtin)
        classes, x_tr, y_tr, x_va, y_va, stats = _BUILTIN_CACHE[key]
    # Copies: callers may normalise in place, and must not corrupt the cache for the next load.
    resized_from = None
    if image_size is not None and image_size != x_tr.shape[1]:
        x_tr, resized_from = resize_batch(x_tr, image_size)
        x_va, _ = resize_batch(x_va, image_size)
        stats = channel_stats(x_tr)
    return ImageDataset(
        BUILTIN, classes, x_tr.copy(), y_tr.copy(), x_va.copy(), y_va.copy(), *stats, resized_from
    )


def _decode_builtin(path: Path) -> tuple:
    classes, x_tr, y_tr, x_va, y_va = read_builtin_zip(path)
    return classes, x_tr, y_tr, x_va, y_va, channel_stats(x_tr)


def load_dataset(
    source: str | os.PathLike = BUILTIN,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    image_size: int | None = None,
) -> ImageDataset:
    """Load `"builtin"` (fixed split), an ImageFolder directory or a `.npz` file (stratified split).

    `val_fraction` and `seed` only affect folder and npz sources, but are validated for all.
    """
    _check_options(val_fraction, seed, image_size)
    if isinstance(source, str) and source == BUILTIN:
        return _load_builtin(image_size)
    try:
        name = os.fsdecode(source)
    except TypeError:
        raise NasError(f"dataset source must be 'builtin' or a path, got {source!r}") from None
    path = Path(name)
    if not path.exists():
        raise NasError(f"dataset not found: {name}")
    if path.is_dir():
        raw = read_folder(path, image_size)
    elif path.is_file() and path.suffix.lower() == ".npz":
        raw = read_npz(path, image_size)
    else:
        raise NasError(
            f"unsupported dataset source: {name} (expected 'builtin', an ImageFolder directory or a .npz file)"
        )
    return _split(name, raw, val_fraction, int(seed))


def _split(name: str, raw: RawImages, val_fraction: float, seed: int) -> ImageDataset:
    if len(raw.classes) < 2:
        raise NasError(f"dataset {name}: needs at least 2 classes, found {len(raw.classes)}")
    train, val = stratified_split(raw.y, raw.classes, val_fraction, seed, name)
    x_train = raw.x[train]
    mean, std = channel_stats(x_train)
    return ImageDataset(
        name, raw.classes, x_train, raw.y[train], raw.x[val], raw.y[val], mean, std, raw.resized_from
    )
