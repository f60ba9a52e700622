"""Readers that turn each kind of dataset source into raw uint8 NHWC arrays plus labels.

They only decode and validate; splitting and normalisation statistics live in `_datasets.py`, so
every source gets exactly the same split and the same checks on it.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nas.errors import NasError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})

# The builtin zip's split is fixed by file number so results are comparable across runs and machines.
BUILTIN_VAL_START = 500


@dataclass
class RawImages:
    """Decoded images of one source before splitting: every image already square and the same size."""

    classes: tuple[str, ...]
    x: np.ndarray  # uint8 (N, S, S, 3)
    y: np.ndarray  # int64 (N,)
    resized_from: tuple[tuple[int, int], ...] | None = None  # distinct original (H, W) sizes, if resized


def decode_image(data: bytes | Path, where: str) -> np.ndarray:
    """Decode one image to an (H, W, 3) uint8 array; a file Pillow cannot read is the user's mistake."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... for bad files
        raise NasError(f"cannot decode image {where}: {exc}") from None


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of one (H, W, 3) uint8 image to (size, size, 3)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def stack_images(images: list[np.ndarray], image_size: int | None) -> tuple[np.ndarray, tuple | None]:
    """Stack images of possibly different sizes into one square batch.

    The target side is `image_size` if given, else the height of the most common size (the
    shorter side if that size is not square), so a few odd images do not rescale the whole set.
    Returns the batch and the distinct original sizes when anything had to be resized.
    """
    counts = Counter(img.shape[:2] for img in images)
    if image_size is None:
        (h, w), _ = counts.most_common(1)[0]
        size = min(h, w)
    else:
        size = image_size
    if set(counts) == {(size, size)}:
        return np.stack(images), None
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = resize_square(img, size)
    return out, tuple(sorted(counts, key=lambda s: (-counts[s], s)))


def resize_batch(x: np.ndarray, image_size: int | None) -> tuple[np.ndarray, tuple | None]:
    """Make a same-sized (N, H, W, 3) batch square and `image_size` wide (non-square: shorter side)."""
    h, w = x.shape[1:3]
    size = image_size if image_size is not None else min(h, w)
    if (h, w) == (size, size):
        return x, None
    out = np.empty((len(x), size, size, 3), dtype=np.uint8)
    for i in range(len(x)):
        out[i] = resize_square(x[i], size)
    return out, ((int(h), int(w)),)


# ---------------------------------------------------------------- builtin


def read_builtin_zip(path: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode the shipped CIFAR-10 subset into (classes, x_train, y_train, x_val, y_val).

    Files numbered below BUILTIN_VAL_START are training images, the rest validation. Decoding is
    serial: for 32x32 JPEGs a thread pool measured no faster (per-image overhead dominates).
    """
    if not path.is_file():
        raise NasError(f"built-in dataset missing: {path} (broken installation?)")
    try:
        with zipfile.ZipFile(path) as zf:
            members = [(info.filename, zf.read(info)) for info in zf.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise NasError(f"cannot read built-in dataset {path}: {exc}") from None

    entries = []  # (class, number, name, bytes)
    for name, data in members:
        parts = name.split("/")
        if len(parts) != 2 or Path(parts[1]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            number = int(Path(parts[1]).stem)
        except ValueError:
            raise NasError(f"unexpected file in built-in dataset {path}: {name}") from None
        entries.append((parts[0], number, name, data))
    classes = tuple(sorted({e[0] for e in entries}))
    if len(classes) < 2:
        raise NasError(f"built-in dataset {path} has fewer than 2 classes")
    label = {c: i for i, c in enumerate(classes)}
    entries.sort(key=lambda e: (label[e[0]], e[1]))

    x = np.empty((len(entries), *decode_image(entries[0][3], f"{path}:{entries[0][2]}").shape), np.uint8)
    for i, (_, _, name, data) in enumerate(entries):
        img = decode_image(data, f"{path}:{name}")
        if img.shape != x.shape[1:]:
            raise NasError(f"built-in image {path}:{name} has shape {img.shape}, expected {x.shape[1:]}")
        x[i] = img
    y = np.array([label[e[0]] for e in entries], dtype=np.int64)
    is_val = np.array([e[1] >= BUILTIN_VAL_START for e in entries])
    return classes, x[~is_val], y[~is_val], x[is_val], y[is_val]


# ---------------------------------------------------------------- ImageFolder


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def read_folder(root: Path, image_size: int | None) -> RawImages:
    """Read an ImageFolder tree `root/<class>/*.jpg|*.jpeg|*.png`, classes sorted by name."""
    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)
    if len(class_dirs) < 2:
        found = ", ".join(p.name for p in class_dirs) or "none"
        raise NasError(
            f"dataset folder {root} needs at least 2 class folders, found {len(class_dirs)}: {found}"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise NasError(f"class folder {class_dir} has no images (.jpg, .jpeg or .png)")
        for f in files:
            images.append(decode_image(f, str(f)))
        labels.extend([label] * len(files))
    x, resized_from = stack_images(images, image_size)
    return RawImages(tuple(p.name for p in class_dirs), x, np.array(labels, np.int64), resized_from)


# ---------------------------------------------------------------- npz


def _npz_error(path: Path, problem: str) -> NasError:
    return NasError(f"dataset {path}: {problem}")


def read_npz(path: Path, image_size: int | None) -> RawImages:
    """Read arrays `x` (uint8 NHWC, NHW1 or NHW) and `y` (labels 0..K-1), optional `classes`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k in ("x", "y", "classes")}
    except Exception as exc:  # not a zip, truncated, pickled objects, ...
        # numpy's own message would suggest loading the file unsafely (allow_pickle): never the advice here
        import zipfile

        why = (
            "not a zip archive of arrays"
            if not zipfile.is_zipfile(path)
            else "it holds pickled objects, which are never loaded"
            if "pickle" in str(exc).lower()
            else f"{type(exc).__name__}"
        )
        raise _npz_error(
            path,
            f"cannot read .npz file: not a valid .npz with arrays 'x' (uint8 images) and 'y' "
            f"(integer labels) ({why})",
        ) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise _npz_error(path, f"missing array '{key}' (need 'x' images and 'y' labels)")
    x, y = arrays["x"], arrays["y"]

    if x.dtype != np.uint8:
        raise _npz_error(path, f"'x' must be uint8, got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise _npz_error(path, f"'x' must have shape N x H x W x 3 (or x 1, or N x H x W), got {x.shape}")
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise _npz_error(path, f"'x' is empty: shape {x.shape}")
    if y.ndim != 1:
        raise _npz_error(path, f"'y' must be 1-D, got shape {y.shape}")
    if len(x) != len(y):
        raise _npz_error(path, f"len(x) = {len(x)} but len(y) = {len(y)}")
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise _npz_error(path, f"'y' labels must be integers, got {y.dtype}")
    if (y < 0).any():
        raise _npz_error(path, f"'y' has negative label {int(y.min())}")
    y = y.astype(np.int64)
    num_classes = int(y.max()) + 1

    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise _npz_error(path, f"'classes' must be a 1-D array of str, got {names.dtype} {names.shape}")
        classes = tuple(str(n.decode() if isinstance(n, bytes) else n) for n in names)
        if len(classes) < num_classes:
            raise _npz_error(path, f"'y' has label {num_classes - 1} but 'classes' names only {len(classes)}")
        if len(set(classes)) != len(classes):
            raise _npz_error(path, "'classes' has duplicate names")
    else:
        classes = tuple(str(i) for i in range(num_classes))
    x, resized_from = resize_batch(x, image_size)
    return RawImages(classes, np.ascontiguousarray(x), y, resized_from)
