"""The pruning benchmark's scoring: a held-out test set no arm saw, and a paired comparison on it.

The built-in subset (`nas/datasets/cifar10_subset.zip`) is files 0000-0599 of each class of the shared
CIFAR-10 training folder (the same pixels: `held_out_set` counts them). The test set is files 4000-4999 of
each class there (10,000 images), each checked to differ in pixels from every built-in image, so the
searches, the cut's calibration and the fine-tuning (all on the built-in subset) never saw it.
Arms are compared on the same images: a paired bootstrap of the accuracy difference, and exact McNemar.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

FIRST, LAST = 4000, 4999  # file numbers of the test images in each class folder
BUILTIN_FILES = 600  # the built-in subset: files 0000-0599 of each class
BOOTSTRAP = 10000
MARGIN_POINTS = 1.0  # the target: the pruned network within 1 point of the searched one, or better


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def held_out_set(
    folder: Path, builtin_images: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(images uint8 NHWC, labels, provenance) of the held-out test set in `folder` (ImageFolder layout);
    `builtin_images`: every image of the built-in subset, as the package decodes it. Raises SystemExit when a
    file is missing or a test image is also a built-in image (same pixels)."""

    def read(name: str, number: int) -> np.ndarray:
        path = folder / name / f"{number:04d}.jpg"
        if not path.is_file():
            raise SystemExit(f"{path}: missing (the test set is files {FIRST}-{LAST} of each class)")
        return _pixels(path.read_bytes())

    builtin = {hashlib.sha256(image.tobytes()).digest() for image in builtin_images}
    source_of_builtin = sum(
        hashlib.sha256(read(name, number).tobytes()).digest() in builtin
        for name in classes
        for number in range(BUILTIN_FILES)
    )
    x = np.stack([read(name, number) for name in classes for number in range(FIRST, LAST + 1)])
    y = np.repeat(np.arange(len(classes), dtype=np.int64), LAST + 1 - FIRST)
    overlap = sum(hashlib.sha256(image.tobytes()).digest() in builtin for image in x)
    if overlap:
        raise SystemExit(f"{folder}: {overlap} test images are also in the built-in subset")
    provenance = {
        "images": len(x),
        "files": f"{FIRST:04d}-{LAST:04d}.jpg of each class folder",
        "builtin_subset_is": f"files 0000-{BUILTIN_FILES - 1:04d} of each class folder of the same source "
        f"({source_of_builtin} of {len(classes) * BUILTIN_FILES} of them have the pixels of a built-in image; "
        f"{len(builtin_images)} built-in images)",
        "overlap_with_builtin_by_pixel_hash": overlap,
    }
    return x, y, provenance


def correct(model_onnx: Path, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image, whether the exported model (ONNX Runtime, its own preprocessing metadata) is right."""
    from nas.validate import OnnxClassifier

    return OnnxClassifier(model_onnx, threads=1).logits(images).argmax(1) == labels


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Accuracy of `a` minus that of `b` on the same images, in points, with its 95% paired bootstrap
    interval; `a`, `b`: (seeds, images) booleans, averaged over the seeds per image first, so the interval
    is over the image sample (the seeds' spread is reported beside it, not inside it). The bootstrap draws
    the count of each per-image difference value from a multinomial: the same distribution as resampling
    the images, without a (resamples x images) index array."""
    from nas.validate import mcnemar_exact

    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    per_image = a.mean(0) - b.mean(0)
    values, counts = np.unique(per_image, return_counts=True)
    n = len(per_image)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=BOOTSTRAP)
    means = draws @ values / n
    low, high = np.percentile(means, [2.5, 97.5])
    per_seed = 100 * (a.mean(1) - b.mean(1))
    return {
        "points": round(100 * float(per_image.mean()), 2),
        "ci95_points": [round(100 * float(low), 2), round(100 * float(high), 2)],
        "interval": f"paired bootstrap over the {n} images ({BOOTSTRAP} resamples), seeds averaged per image",
        "per_seed_points": [round(float(g), 2) for g in per_seed],
        "mcnemar_p_per_seed": [
            round(mcnemar_exact(int((x & ~y).sum()), int((~x & y).sum())), 4)
            for x, y in zip(a.astype(bool), b.astype(bool))
        ],
    }


def verdict(difference: dict, margin_points: float = MARGIN_POINTS) -> str:
    """met: the whole interval is above -margin; missed: the whole interval is below it; else undecided."""
    low, high = difference["ci95_points"]
    if low >= -margin_points:
        return "met"
    if high < -margin_points:
        return "missed"
    return "undecided"
