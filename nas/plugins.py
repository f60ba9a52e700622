"""Plugins: user modules that register primitives (or anything else registrable) on import.

A plugin is an ordinary Python module, given by name (`my_package.primitives`) or by a path to a
`.py` file, or an installed package that names its module in the entry-point group `nas.plugins`:

    [project.entry-points."nas.plugins"]
    my_primitives = "my_package.primitives"

Importing a module runs its declarations, so loading a plugin is importing it once per process.
Every process that builds models must load the same plugins: the search loads them in its Ray
workers too (`loaded_plugins()` lists what to forward).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from nas.errors import NasError, first_line

ENTRY_POINT_GROUP = "nas.plugins"

_loaded: dict[str, str] = {}  # plugin as given (a path resolved) -> module name, in load order
_installed: list[str] = []  # entry points already loaded (their names)
_installed_done = {"done": False}


def load_plugins(modules: Sequence[str] = (), installed: bool = True) -> list[str]:
    """Import each plugin module once per process; with `installed`, also every entry point of the group
    `nas.plugins`. Returns the module names of the plugins given (in order). A plugin that cannot be
    imported is one `NasError` line naming it."""
    if isinstance(modules, str):
        modules = [modules]
    if installed:
        _load_installed()
    return [_load_one(spec) for spec in modules]


def loaded_plugins() -> list[str]:
    """The plugins loaded in this process (module names, or absolute paths of files), in load order:
    what another process (a Ray worker) passes to `load_plugins` to see the same registrations."""
    return list(_loaded)


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _load_one(spec: str) -> str:
    spec = str(spec).strip()
    if not spec:
        raise NasError("plugin: empty module name (give a module name or a path to a .py file)")
    key = str(Path(spec).expanduser().resolve()) if _is_path(spec) else spec
    if key in _loaded:
        return _loaded[key]
    name = _import_file(spec, Path(key)) if _is_path(spec) else _import_module(spec)
    _loaded[key] = name
    return name


def _import_module(name: str) -> str:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise NasError(
                f"plugin {name}: no module named {exc.name!r} (give an importable module name, "
                "or a path to a .py file)"
            ) from None
        raise _import_error(name, exc) from None
    except NasError as exc:
        raise NasError(f"plugin {name}: {exc}") from None
    except Exception as exc:
        raise _import_error(name, exc) from None
    return name


def _import_file(spec: str, path: Path) -> str:
    """Import a .py file as a top-level module named after its stem, so that pickled objects defined in it
    (a model's class) resolve in every process that loaded the same plugin."""
    if not path.is_file():
        raise NasError(f"plugin {spec}: file not found")
    if path.suffix != ".py":
        raise NasError(f"plugin {spec}: not a .py file")
    name = path.stem
    if not name.isidentifier():
        raise NasError(f"plugin {spec}: {name!r} is not a valid module name; rename the file")
    existing = sys.modules.get(name)
    if existing is not None:
        existing_file = getattr(existing, "__file__", None)
        if existing_file and Path(existing_file).resolve() == path:
            return name
        raise NasError(
            f"plugin {spec}: a different module named {name!r} is already imported; rename the file"
        )
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, NasError):
            raise NasError(f"plugin {spec}: {exc}") from None
        if not isinstance(exc, Exception):
            raise
        raise _import_error(spec, exc) from None
    return name


def _import_error(spec: str, exc: Exception) -> NasError:
    """One line: the plugin, where in its code the import failed, and the exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename and not f.filename.startswith("<")]
    where = f"{Path(own[-1].filename).name}:{own[-1].lineno}: " if own else ""
    return NasError(f"plugin {spec}: import failed: {where}{type(exc).__name__}: {first_line(exc)}")


def _load_installed() -> None:
    if _installed_done["done"]:
        return
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in _installed:
            continue
        try:
            loaded = entry.load()
        except NasError as exc:
            raise NasError(f"plugin {entry.name} ({entry.value}): {exc}") from None
        except Exception as exc:
            raise _import_error(f"{entry.name} ({entry.value})", exc) from None
        if entry.attr and callable(loaded):
            loaded()
        _installed.append(entry.name)
    _installed_done["done"] = True


def installed_plugins() -> list[str]:
    """Names of the entry points of `nas.plugins` loaded in this process."""
    return list(_installed)
