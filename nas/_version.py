"""The distribution's name and version, read from the installed package's metadata (one source: pyproject)."""

from __future__ import annotations

DISTRIBUTION = "hwnas"  # the name on the package index; the import name and the command are `nas`


def installed_version() -> str:
    """The installed distribution's version; a source tree used without installing has none to read."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"  # PEP 440 local version: not installed, so no version can be known


__version__ = installed_version()
