"""Small shared helpers: atomic file writes (a killed process never leaves a half file), output-path checks,
reading JSON, writing and reading trial checkpoints (safetensors), and the CPU name. A bottom layer: it
imports no other part of `nas` at module level, and torch and safetensors only for a checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write via a temp file in the same folder, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(
            fd, 0o666 & ~_umask()
        )  # mkstemp makes 0600: the result gets the mode a plain open() would give
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path


_TEMP_SUFFIX = ".tmp"


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Remove the temp files `write_atomic` left in `folder` when its process was killed mid-write (SIGKILL, a
    power cut: no clean-up ran). Only for a folder this process alone writes now (a run directory under its
    lock): another writer's temp file would be removed under it. Returns what was removed."""
    removed = []
    for path in Path(folder).glob(f".*{_TEMP_SUFFIX}"):
        name = path.name[1 : -len(_TEMP_SUFFIX)]  # ".NAME.RANDOM.tmp" -> "NAME.RANDOM"
        if "." in name and path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask can only set and return)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output_path(path: str | Path, flag: str, *, folder: bool = True) -> Path:
    """Refuse, before any work starts, an output that could not be written: a file where a folder must be
    (the path or one of its parents) or a folder where the file goes, or a place without write permission."""
    from nas.errors import NasError

    path = Path(path).expanduser()
    if path.exists():
        if folder and not path.is_dir():
            raise NasError(f"{flag} {path}: is a file, not a folder; choose another {flag}")
        if not folder and path.is_dir():
            raise NasError(f"{flag} {path}: is a folder, not a file; choose another {flag}")
    for ancestor in path.absolute().parents:  # nearest first; the first that exists is where creation starts
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise NasError(f"{flag} {path}: {ancestor} is a file, not a folder; choose another {flag}")
        writable = path if folder and path.is_dir() else ancestor
        if not os.access(writable, os.W_OK | os.X_OK):
            raise NasError(
                f"{flag} {path}: {writable} is not writable (permission denied); choose another {flag}"
            )
        break
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def cpu_model() -> str:
    """The CPU's marketing name (recorded with every measurement: latency is only comparable on one CPU)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line NasError naming it."""
    from nas.errors import NasError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NasError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NasError(f"{path}: not valid JSON{where}") from None


CHECKPOINT_SUFFIX = ".safetensors"  # tensors only: reading one runs no code (a pickle could)


def checkpoint_bytes(state_dict: dict[str, Any]) -> bytes:
    """A state dict as safetensors bytes: each tensor on the CPU and contiguous (channels_last weights are
    not), so the file loads anywhere with `load_checkpoint`."""
    from safetensors.torch import save

    return save({name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()})


def load_checkpoint(run_dir: str | Path, relative: str) -> dict[str, Any]:
    """A trial's weights (a torch state dict) from `run_dir / relative`: safetensors, or the torch pickle an
    older run wrote (read with `weights_only=True`, so it may hold tensors only). A missing or damaged
    checkpoint (truncated, overwritten) is a one-line NasError."""
    import io
    import pickle

    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from nas.errors import NasError

    path = Path(run_dir) / relative
    try:
        data = path.read_bytes()
        if path.suffix == CHECKPOINT_SUFFIX:
            return load(data)
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError(
            f"{path}: checkpoint missing; restore it, or re-run the search in a new --out"
        ) from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        pickle.UnpicklingError,
        SafetensorError,
    ):  # torch's words name its zip reader
        raise NasError(
            f"{path}: damaged checkpoint (truncated, or not the weights nas wrote); restore it from a "
            "backup, or re-run the search in a new --out to train that candidate again"
        ) from None
