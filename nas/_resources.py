"""Where the built-in search spaces, hardware profiles and dataset live.

In a checkout they sit at the top of the repository (`search_spaces/`, `hardware_profiles/`); in an
installed wheel the same files are packaged as `nas/search_spaces` and `nas/hardware_profiles`
(see `[tool.setuptools] package-dir` in pyproject.toml).
"""

from __future__ import annotations

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
