"""Corrupted accuracy in torch, cheap enough to run inside a search's training task.

`corrupted_accuracy` evaluates a trained `torch.nn.Module` on a seeded subset of the validation split
under a few corruptions (default: 4 families at severity 3, 500 images). The corrupted uint8 images
depend only on the dataset and the settings, not on the model, so they are computed once per process
and cached (each Ray worker computes them once for all the candidates it trains).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np

from nas.errors import NasError
from nas.validate._corruptions import check_family, check_severity, corrupt
from nas.validate._data import subsample

# Cheap and diverse: sensor noise, optics, lighting, compression. Severity 3 is mid-scale.
ROBUST_FAMILIES = ("gaussian_noise", "defocus_blur", "contrast", "jpeg")
ROBUST_SEVERITIES = (3,)
ROBUST_MAX_IMAGES = 500

_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def _fingerprint(x: np.ndarray) -> tuple:
    flat = x.reshape(-1)
    step = max(1, len(flat) // 4096)
    return (x.shape, str(x.dtype), hash(flat[::step].tobytes()))


def corrupted_slices(
    dataset, families, severities, max_images, seed
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(labels, {"family@severity": uint8 images}) on a seeded subset of the validation split; cached."""
    key = (
        _fingerprint(dataset.x_val),
        hash(np.asarray(dataset.y_val).tobytes()),
        tuple(families),
        tuple(severities),
        max_images,
        seed,
    )
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    keep = subsample(len(dataset.y_val), max_images, seed)
    x = np.ascontiguousarray(dataset.x_val[keep])
    labels = np.asarray(dataset.y_val, dtype=np.int64)[keep]
    slices = {f"{f}@{s}": corrupt(x, f, s, seed) for f in families for s in severities}
    entry = (labels, slices)
    with _LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return entry


def corrupted_accuracy(
    model,
    dataset,
    normalizer_fn,
    *,
    families=ROBUST_FAMILIES,
    severities=ROBUST_SEVERITIES,
    max_images: int | None = ROBUST_MAX_IMAGES,
    seed: int = 0,
    batch_size: int = 500,
) -> dict:
    """Accuracy of `model` under corruptions of (a seeded subset of) `dataset`'s validation split.

    `normalizer_fn`: any callable that turns a uint8 NHWC torch batch into the model's input (such as
    `nas.evaluate.Preprocessing`). Returns mean corrupted accuracy, the worst slice and its
    accuracy, each slice's accuracy, n and the seconds taken. The model is put in eval mode.
    """
    import torch

    families = tuple(check_family(f, "robust families") for f in families)
    severities = tuple(check_severity(s, "robust severities") for s in severities)
    if not families or not severities:
        raise NasError("robust evaluation needs at least one corruption family and one severity")
    start = time.perf_counter()
    labels, slices = corrupted_slices(dataset, families, severities, max_images, seed)
    prepared = time.perf_counter() - start
    y = torch.from_numpy(labels)
    model.eval()
    accuracy = {}
    with torch.no_grad():
        for name, images in slices.items():
            x = torch.from_numpy(images)
            correct = 0
            for i in range(0, len(y), batch_size):
                logits = model(normalizer_fn(x[i : i + batch_size]))
                correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
            accuracy[name] = correct / len(y)
    worst = min(accuracy, key=accuracy.get)
    return {
        "mean_corrupted_accuracy": float(np.mean(list(accuracy.values()))),
        "worst_slice": worst,
        "worst_slice_accuracy": accuracy[worst],
        "slices": accuracy,
        "n": int(len(y)),
        "seconds": time.perf_counter() - start,
        "corruption_seconds": prepared,
    }
