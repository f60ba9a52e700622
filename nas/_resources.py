"""Where the built-in search spaces, hardware profiles and dataset live, and the user's own folders.

In a checkout they sit at the top of the repository (`search_spaces/`, `hardware_profiles/`); in an
installed wheel the same files are packaged as `nas/search_spaces` and `nas/hardware_profiles`
(see `[tool.setuptools] package-dir` in pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_dir(kind: str) -> Path:
    """The folder of built-in `search_spaces` or `hardware_profiles`."""
    if kind not in ("search_spaces", "hardware_profiles"):
        raise ValueError(f"unknown built-in resource kind {kind!r}")
    installed = _PACKAGE_DIR / kind
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / kind


def builtin_dataset_path() -> Path:
    """The shipped subset of real CIFAR-10 training images (docs/design.md, 'Datasets')."""
    return _PACKAGE_DIR / "datasets" / "cifar10_subset.zip"


def user_folder(override_env: str, xdg_env: str, xdg_default: str, *parts: str) -> Path:
    """A folder of the user's: `$override_env` when set and not empty, else `$xdg_env/nas/...`, else
    `~/xdg_default/nas/...` (profiles: XDG_CONFIG_HOME, ~/.config; the dataset's decoded copy:
    XDG_CACHE_HOME, ~/.cache)."""
    if os.environ.get(override_env):
        return Path(os.environ[override_env]).expanduser()
    base = os.environ.get(xdg_env) or str(Path.home() / xdg_default)
    return Path(base, "nas", *parts)
