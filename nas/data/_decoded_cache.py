"""A decoded copy of the shipped dataset in the user's cache folder.

Decoding its 6,000 JPEGs and computing the channel statistics takes about 1.1 s, paid by every process
that loads `"builtin"`: each `nas search`, `nas train` and `nas validate`, and each test process. The
decoded arrays (18 MB) load in about 0.02 s. The copy's name holds the SHA-256 of the zip it was decoded
from and of the Pillow version that decoded it, so a changed zip or decoder is decoded again rather than
read stale. The folder: `$NAS_CACHE_DIR` (empty: keep no copy), else `$XDG_CACHE_HOME/nas`, else
`~/.cache/nas` (`nas._resources.user_folder`, as for the profile folder). A copy that cannot be read is
decoded again and replaced; a folder that cannot be written costs the decoding in every command (a
warning says so).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import PIL

from nas._io import write_atomic
from nas._resources import user_folder
from nas.errors import first_line

CACHE_ENV = "NAS_CACHE_DIR"
# Bump FORMAT when what is stored changes: the arrays, how the zip is decoded or split
# (`nas.data._sources.read_builtin_zip`, BUILTIN_VAL_START), or the statistics (`channel_stats`).
FORMAT = 1
_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "mean", "std")
log = logging.getLogger(__name__)

# (classes, x_train, y_train, x_val, y_val, (mean, std))
Decoded = tuple


def cache_dir() -> Path | None:
    """Where decoded copies live; None when `NAS_CACHE_DIR` is set empty (keep none)."""
    if os.environ.get(CACHE_ENV) == "":
        return None
    return user_folder(CACHE_ENV, "XDG_CACHE_HOME", ".cache")


def decoded(zip_path: Path, decode: Callable[[Path], Decoded]) -> Decoded:
    """`decode(zip_path)`, read from the cache folder when a copy of this very zip is there, else decoded and
    kept there."""
    folder = cache_dir()
    try:
        # the decoder's version too: another libjpeg may decode some pixels differently
        source = zip_path.read_bytes() + f"pillow {PIL.__version__}".encode()
        digest = hashlib.sha256(source).hexdigest()[:32]
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
    except OSError as exc:  # every later command decodes again: said, not hidden
        log.warning(
            f"cannot keep a decoded copy of the built-in dataset in {folder} ({first_line(exc)}); "
            f"each command decodes it again (about 1 s); set {CACHE_ENV} to a writable folder"
        )
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
