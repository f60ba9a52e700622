"""Hardware profiles: YAML data files that say which device a latency is for and how it is obtained.

A profile is ``hardware_profiles/<name>.yaml`` (built-in) or any ``.yaml`` file given by path::

    name: x86-cpu
    description: the local x86-64 CPU, measured with ONNX Runtime ...
    latency: measured        # measured | predicted
    runtime: {engine: onnxruntime, execution_provider: CPUExecutionProvider,
              intra_op_threads: 1, graph_optimization: all}
    measurement: {warmup_runs: 10, rounds: 5, round_ms: 50, max_spread: 0.05, max_attempts: 3}
    provenance: "..."

Required: name, description, latency, runtime (with engine). ``measurement`` and ``provenance`` are
optional (defaults: `MeasurementSettings` and ""). ``latency: measured`` profiles are run on this
machine, so their runtime must be ONNX Runtime and every runtime key is checked; ``latency: predicted``
profiles (remote devices, added later) only need a runtime mapping naming its engine.

Every problem is a `NasError` naming the file and the field (or the line, for YAML syntax errors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from nas._resources import builtin_dir
from nas.errors import NasError
from nas.latency._measure import MeasurementSettings, check_setting

LATENCY_KINDS = ("measured", "predicted")
TOP_LEVEL_KEYS = ("name", "description", "latency", "runtime", "measurement", "provenance")
REQUIRED_KEYS = ("name", "description", "latency", "runtime")
MEASURED_ENGINE = "onnxruntime"
# Runtime keys of a measured profile and the MeasurementSettings field each one sets.
RUNTIME_KEYS = ("engine", "execution_provider", "intra_op_threads", "graph_optimization")
MEASUREMENT_KEYS = ("warmup_runs", "rounds", "round_ms", "max_spread", "max_attempts", "batch_size")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class HardwareProfile:
    """One device: how its latency is obtained (measured here, or predicted) and with which settings."""

    name: str
    description: str
    latency: str  # "measured" | "predicted"
    path: Path
    runtime: dict
    measurement: MeasurementSettings
    provenance: str
    raw: dict  # the whole parsed YAML

    def describe(self) -> dict:
        """A JSON-friendly summary (for `nas profiles`, run metadata, reports)."""
        return {
            "name": self.name,
            "description": self.description,
            "latency": self.latency,
            "path": str(self.path),
            "runtime": dict(self.runtime),
            "measurement": asdict(self.measurement),
            "provenance": self.provenance,
        }


def _fail(path: Path, field: str, problem: str) -> NasError:
    return NasError(f"{path}: {field}: {problem}")


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NasError(f"hardware profile file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NasError(f"{path}: cannot read hardware profile: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "line ?"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise NasError(f"{path}: {where}: YAML syntax error: {problem}") from None
    if data is None:
        raise NasError(f"{path}: the hardware profile is empty")
    if not isinstance(data, dict):
        raise NasError(f"{path}: a hardware profile must be a mapping of fields, got {type(data).__name__}")
    return data


def _text(path: Path, data: dict, key: str, *, required: bool) -> str:
    if key not in data:
        if required:
            raise _fail(path, key, "missing required field")
        return ""
    value = data[key]
    if not isinstance(value, str):
        raise _fail(path, key, f"must be a {'non-empty ' if required else ''}string, got {value!r}")
    if required and not value.strip():
        raise _fail(path, key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _mapping(path: Path, data: dict, key: str, *, required: bool) -> dict:
    if key not in data:
        if required:
            raise _fail(path, key, "missing required field")
        return {}
    value = data[key]
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, key, f"must be a mapping, got {value!r}")
    for sub_key in value:
        if not isinstance(sub_key, str):
            raise _fail(path, f"{key}.{sub_key}", "keys must be strings")
    return value


def _check_unknown(path: Path, section: str, mapping: dict, known: tuple[str, ...], hint: dict[str, str]) -> None:
    for key in mapping:
        if key not in known:
            where = f" (it belongs under {hint[key]})" if key in hint else ""
            raise _fail(path, f"{section}.{key}" if section else key,
                        f"unknown key{where}; expected one of: {', '.join(known)}")


def _parse(path: Path, data: dict) -> HardwareProfile:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _fail(path, str(key), f"unknown field; expected one of: {', '.join(TOP_LEVEL_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise _fail(path, key, "missing required field")

    name = _text(path, data, "name", required=True)
    description = _text(path, data, "description", required=True)
    latency = data["latency"]
    if latency not in LATENCY_KINDS:
        raise _fail(path, "latency", f"must be one of {', '.join(LATENCY_KINDS)}, got {latency!r}")
    provenance = _text(path, data, "provenance", required=False)

    runtime = _mapping(path, data, "runtime", required=True)
    measurement = _mapping(path, data, "measurement", required=False)
    if "engine" not in runtime:
        raise _fail(path, "runtime.engine", "missing required field")
    engine = runtime["engine"]
    if not isinstance(engine, str) or not engine.strip():
        raise _fail(path, "runtime.engine", f"must be a non-empty string, got {engine!r}")

    settings: dict[str, Any] = {}
    if latency == "measured":
        if engine != MEASURED_ENGINE:
            raise _fail(path, "runtime.engine",
                        f"a measured profile runs on this machine with {MEASURED_ENGINE!r}, got {engine!r}")
        _check_unknown(path, "runtime", runtime, RUNTIME_KEYS, {k: "measurement" for k in MEASUREMENT_KEYS})
        settings.update({k: v for k, v in runtime.items() if k != "engine"})
    _check_unknown(path, "measurement", measurement, MEASUREMENT_KEYS, {k: "runtime" for k in RUNTIME_KEYS})
    settings.update(measurement)

    for key, value in settings.items():
        problem = check_setting(key, value)
        if problem is not None:
            section = "runtime" if key in RUNTIME_KEYS else "measurement"
            raise _fail(path, f"{section}.{key}", problem)
    if "round_ms" in settings:
        settings["round_ms"] = float(settings["round_ms"])
    if "max_spread" in settings:
        settings["max_spread"] = float(settings["max_spread"])
    known = {f.name for f in fields(MeasurementSettings)}
    assert set(settings) <= known, settings

    return HardwareProfile(
        name=name,
        description=description,
        latency=latency,
        path=path,
        runtime=dict(runtime),
        measurement=MeasurementSettings(**settings),
        provenance=provenance,
        raw=data,
    )


def _builtin_paths() -> dict[str, Path]:
    folder = builtin_dir("hardware_profiles")
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in _SUFFIXES and p.is_file()}


def list_profiles() -> list[HardwareProfile]:
    """The built-in hardware profiles, sorted by name."""
    profiles = [_parse(path, _read_yaml(path)) for path in _builtin_paths().values()]
    return sorted(profiles, key=lambda profile: profile.name)


def _looks_like_path(value: str | Path) -> bool:
    if isinstance(value, Path):
        return True
    return "/" in value or "\\" in value or value.endswith(_SUFFIXES)


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A built-in profile by name (e.g. "x86-cpu"), or a profile file by path."""
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"expected a profile name or path, got {type(name_or_path).__name__}")
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise NasError(f"hardware profile file not found: {path}")
        return _parse(path, _read_yaml(path))
    builtins = _builtin_paths()
    if name_or_path not in builtins:
        available = ", ".join(builtins) or "none"
        raise NasError(f"unknown hardware profile {name_or_path!r} (available: {available}; or give a path to a .yaml file)")
    return _parse(builtins[name_or_path], _read_yaml(builtins[name_or_path]))
