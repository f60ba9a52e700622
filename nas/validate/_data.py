"""Evaluation images: the validation split of a dataset (or all of it), and user-defined slice folders.

Classes are matched to the model's classes by name, so a folder that holds only some classes, or
lists them in another order, is evaluated correctly; a class the model does not know is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data import IMAGE_SUFFIXES, ImageDataset, decode_image, load_dataset, read_folder, read_npz
from nas.errors import NasError

SPLITS = ("val", "all")


@dataclass
class EvalImages:
    """Images (uint8 N x H x W x 3, or a list of H x W x 3 of different sizes) with labels in model class order."""

    name: str
    images: np.ndarray | list
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _class_map(names, model_classes, where: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(model_classes)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise NasError(
            f"{where}: class {unknown[0]!r} is not a class of the model "
            f"(model classes: {', '.join(model_classes)})"
        )
    return np.array([index[n] for n in names], dtype=np.int64)


def subsample(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """All indices, or `max_images` of them drawn without replacement with `seed` (kept in order)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise NasError(f"max_images must be a positive integer, got {max_images!r}")
    return np.sort(np.random.default_rng(seed).choice(n, size=int(max_images), replace=False))


def evaluation_images(
    data: ImageDataset | str | os.PathLike,
    model_classes: tuple[str, ...],
    *,
    split: str = "val",
    val_fraction: float = 0.1,
    seed: int = 0,
    max_images: int | None = None,
) -> EvalImages:
    """The images to evaluate: an ImageDataset's validation split, or a source loaded with `nas.data`.

    `split="val"`: the validation split `load_dataset` makes (the same one as a search with the same
    seed and dataset, so the model never saw those images); `split="all"`: every image of the source
    (a held-out test folder).
    """
    if split not in SPLITS:
        raise NasError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(data, ImageDataset):
        if split == "all":
            x, y = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])
        else:
            x, y = data.x_val, data.y_val
        name, classes = data.name, data.classes
    elif split == "val" or (isinstance(data, str) and data == "builtin"):
        ds = load_dataset(data, val_fraction=val_fraction, seed=seed)
        return evaluation_images(ds, model_classes, split=split, seed=seed, max_images=max_images)
    else:
        path = Path(os.fspath(data))
        if not path.exists():
            raise NasError(f"dataset not found: {path}")
        if path.is_dir():
            raw = read_folder(path, None)
        elif path.suffix.lower() == ".npz":
            raw = read_npz(path, None)
        else:
            raise NasError(
                f"unsupported dataset source: {path} (expected an ImageFolder directory or a .npz file)"
            )
        x, y, name, classes = raw.x, raw.y, str(path), raw.classes
    labels = _class_map(classes, model_classes, f"dataset {name}")[np.asarray(y, dtype=np.int64)]
    keep = subsample(len(labels), max_images, seed)
    return EvalImages(name, x[keep], labels[keep])


def _visible_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )


def read_user_slices(root: str | os.PathLike, model_classes: tuple[str, ...]) -> list[EvalImages]:
    """`root/<condition>/<class>/*.jpg|png`: one slice per condition, classes matched by name."""
    root = Path(os.fspath(root))
    if not root.is_dir():
        raise NasError(f"slices folder not found: {root}")
    conditions = _visible_dirs(root)
    if not conditions:
        raise NasError(
            f"slices folder {root} has no condition sub-folders (expected {root}/<condition>/<class>/*.jpg)"
        )
    slices = []
    for condition in conditions:
        class_dirs = _visible_dirs(condition)
        if not class_dirs:
            raise NasError(
                f"slice folder {condition} has no class sub-folders (expected {condition}/<class>/*.jpg)"
            )
        images, labels = [], []
        for class_dir in class_dirs:
            label = int(_class_map([class_dir.name], model_classes, f"slice folder {class_dir}")[0])
            files = sorted(
                p
                for p in class_dir.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
            )
            for f in files:
                images.append(decode_image(f, str(f)))
            labels.extend([label] * len(files))
        if not images:
            raise NasError(f"slice folder {condition} has no images (.jpg, .jpeg or .png)")
        slices.append(EvalImages(condition.name, images, np.array(labels, np.int64)))
    return slices
