"""Finding hardware profiles: the built-in and user profile folders, listing them and loading by name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from nas._resources import builtin_dir
from nas.errors import NasError
from nas.latency._hardware_profile import HardwareProfile
from nas.latency._profiles import read_profile
from nas.latency._signature import user_profile_dir

_SUFFIXES = (".yaml", ".yml")
CORPUS = "corpus"  # subfolder of the built-in profiles fitted on the latency corpus


def _builtin_paths() -> dict[str, Path]:
    """The shipped profiles: `hardware_profiles/*.yaml`, and the latency corpus's devices in `corpus/`."""
    folder = builtin_dir("hardware_profiles")
    paths = {}
    for sub in (folder / CORPUS, folder):
        if sub.is_dir():
            paths.update({p.stem: p for p in sorted(sub.iterdir()) if p.suffix in _SUFFIXES and p.is_file()})
    return paths


def corpus_profiles() -> list[HardwareProfile]:
    """The devices of the latency corpus (whole networks measured end to end): the prior of a few-shot fit
    and references of a profile's prior. Read once per process while the files stay as they are (a fit
    asks for them up to three times, about 0.4 s each)."""
    folder = builtin_dir("hardware_profiles") / CORPUS
    paths = sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES) if folder.is_dir() else []
    return list(_read_profiles(tuple((path, path.stat().st_mtime_ns) for path in paths)))


@lru_cache(maxsize=4)
def _read_profiles(files: tuple[tuple[Path, int], ...]) -> tuple[HardwareProfile, ...]:
    """Profiles (immutable) of (path, modification time) pairs: a changed file is read again."""
    return tuple(read_profile(path) for path, _ in files)


def builtin_profile_names() -> list[str]:
    return list(_builtin_paths())


def _named_paths() -> dict[str, Path]:
    """Every profile known by name: the user's (see `nas.latency._signature.user_profile_dir`), then the
    built-in ones, which a user file of the same name does not shadow."""
    folder = user_profile_dir()
    users = (
        {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in _SUFFIXES and p.is_file()}
        if folder.is_dir()
        else {}
    )
    return {**users, **_builtin_paths()}


def list_profiles() -> list[HardwareProfile]:
    """The built-in hardware profiles and the user's own, sorted by name."""
    profiles = [read_profile(path) for path in _named_paths().values()]
    return sorted(profiles, key=lambda profile: profile.name)


def _looks_like_path(value: str | Path) -> bool:
    if isinstance(value, Path):
        return True
    return "/" in value or "\\" in value or value.endswith(_SUFFIXES)


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A profile by name (built-in, e.g. "x86-cpu", or in the user's profile folder), or a file by path."""
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"expected a profile name or path, got {type(name_or_path).__name__}")
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise NasError(f"hardware profile file not found: {path}")
        return read_profile(path)
    named = _named_paths()
    if name_or_path not in named:
        available = ", ".join(named) or "none"
        raise NasError(
            f"unknown hardware profile {name_or_path!r} (available: {available}; or give a path to a .yaml file)"
        )
    return read_profile(named[name_or_path])
