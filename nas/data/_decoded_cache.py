"""A decoded copy of the shipped dataset in the user's cache folder.

Decoding its 6,000 JPEGs and computing the channel statistics takes about 1.1 s, paid by every process
that loads `"builtin"`: each `nas search`, `nas train` and `nas validate`, and each test process. The
decoded arrays (18 MB) load in about 0.02 s. The copy's name holds the SHA-256 of the zip it was decoded
from, so a changed zip is decoded again rather than read stale. The folder: `$NAS_CACHE_DIR` (empty: keep no copy), else
`$XDG_CACHE_HOME/nas`, else `~/.cache/nas` (as the profile folder, `nas.latency.user_profile_dir`). A copy
that cannot be read is decoded again and replaced; one that cannot be written only costs the decoding
next time (logged).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from nas._io import write_atomic
from nas.errors import first_line

CACHE_ENV = "NAS_CACHE_DIR"
FORMAT = 1  # the layout of the copy: bump it when the arrays stored change
_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "mean", "std")
log = logging.getLogger(__name__)

# (classes, x_train, y_train, x_val, y_val, (mean, std))
Decoded = tuple


def cache_dir() -> Path | None:
    """Where decoded copies live; None when `NAS_CACHE_DIR` is set empty (keep none)."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nas"


def decoded(zip_path: Path, decode: Callable[[Path], Decoded]) -> Decoded:
    """`decode(zip_path)`, read from the cache folder when a copy of this very zip is there, else decoded and
    kept there."""
    folder = cache_dir()
    try:
        digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:32]
    except OSError:  # missing or unreadable: `decode` says so in its own words
        folder = None
    if folder is None:
        return decode(zip_path)
    copy = folder / f"builtin-{digest}-v{FORMAT}.npz"
    if copy.is_file():
        try:
            return _read(copy)
        except Exception as exc:  # truncated or foreign: decode again and replace it
            log.info(f"{copy}: cannot read the decoded copy ({first_line(exc)}); decoding {zip_path} again")
    result = decode(zip_path)
    try:
        write_atomic(copy, _serialise(result))
    except OSError as exc:
        log.info(f"cannot keep a decoded copy of {zip_path} in {folder}: {first_line(exc)}")
    return result


def _serialise(result: Decoded) -> bytes:
    classes, x_tr, y_tr, x_va, y_va, (mean, std) = result
    buffer = io.BytesIO()
    np.savez(
        buffer,
        classes=np.array(classes, dtype=str),
        **dict(zip(_ARRAYS, (x_tr, y_tr, x_va, y_va, np.asarray(mean), np.asarray(std)))),
    )
    return buffer.getvalue()


def _read(copy: Path) -> Decoded:
    with np.load(copy, allow_pickle=False) as stored:
        classes = tuple(str(c) for c in stored["classes"])
        x_tr, y_tr, x_va, y_va, mean, std = (stored[name] for name in _ARRAYS)
    images_ok = x_tr.dtype == x_va.dtype == np.uint8 and x_tr.ndim == x_va.ndim == 4
    if not (
        images_ok and len(x_tr) == len(y_tr) and len(x_va) == len(y_va) and mean.shape == std.shape == (3,)
    ):
        raise ValueError("arrays of unexpected shapes")
    return classes, x_tr, y_tr, x_va, y_va, (tuple(map(float, mean)), tuple(map(float, std)))
