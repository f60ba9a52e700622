"""What every benchmark shares: where things are, how it declares its needs, and the one result writer.

A benchmark module declares itself with one module-level constant, read by the runner without
importing the module (so listing needs neither torch nor the data):

    BENCHMARK = Benchmark(cost="full", seconds=900, needs=("search_efficiency",), data=(...,), extra=None)

and writes its JSON with `write_result`, which stamps the header (command, UTC date, git commit, machine,
wall time as benchmark_seconds), makes every path repository-relative and refuses a result that still holds
an absolute one: committed results never carry the paths of the machine that ran them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "benchmarks"  # the committed results (what benchmarks read from each other)
RUNS = ROOT / "results" / "benchmark-runs"  # search runs and caches, not committed
SHARED_DATA = ROOT.parent / "shared" / "data"  # data sets kept beside the checkout
PROFILES = ROOT / "hardware_profiles"  # the built-in hardware profiles and their measured tables (data/)
RESULTS_ENV = "NAS_BENCH_RESULTS"  # where to write results instead of RESULTS (the runner's --results)

COSTS = ("cheap", "full")  # cheap: under about two minutes on a 2-core machine; full: longer
EXTRAS = {"bench": ("lightgbm",)}  # optional-dependency groups of pyproject.toml and what they provide


@dataclass(frozen=True)
class Benchmark:
    """What a benchmark needs and costs: the runner orders, skips and times benchmarks by it."""

    cost: str  # one of COSTS
    seconds: float  # wall time of its last recorded result (an estimate, said beside it, where none is)
    needs: tuple[str, ...] = ()  # other benchmarks whose runs or results it reads
    data: tuple[str, ...] = ()  # paths it reads, relative to the repository root ("../shared/..." beside it)
    extra: str | None = None  # the optional-dependency group it imports (pip install -e ".[bench]")
    accelerator: str | None = None  # "cuda": it needs a CUDA GPU, and is skipped on a machine without one

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, not {self.cost!r}")
        if self.extra is not None and self.extra not in EXTRAS:
            raise ValueError(f"extra must be one of {', '.join(EXTRAS)}, not {self.extra!r}")
        if self.accelerator not in (None, "cuda"):
            raise ValueError(f"accelerator must be None or 'cuda', not {self.accelerator!r}")
        if any(Path(p).is_absolute() for p in self.data):
            raise ValueError("data paths are relative to the repository root")


class BenchmarkError(Exception):
    """A problem the user can fix (missing data, a bad argument): one line, no traceback."""


def results_dir() -> Path:
    """Where results are written: RESULTS, or the folder the runner's --results named."""
    return Path(os.environ.get(RESULTS_ENV) or RESULTS)


# An absolute path inside a string: a POSIX path of two or more parts, a well-known root, or a drive letter.
_ABSOLUTE = re.compile(
    r"(?<![\w.~/])(?:/(?:[\w.+@-]+/)+[\w.+@-]*|/(?:work|tmp|home|root|Users|mnt|var|opt|private)\b)"
    r"|(?<!\w)[A-Za-z]:[\\/]"
)


def absolute_paths(value: Any) -> list[str]:
    """Every string (keys included) of a JSON value that holds an absolute path."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in absolute_paths(k) + absolute_paths(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in absolute_paths(v)]
    if isinstance(value, (str, Path)) and _ABSOLUTE.search(str(value)):
        return [str(value)]
    return []


def repo_path(path: str | Path) -> str:
    """A path as results record it: relative to the repository root ("../shared/..." for the shared data
    folder beside it); elsewhere only its name, under "<temporary>" or "<external>" (another machine's
    folder means nothing here)."""
    path = Path(path).resolve()
    for base, prefix in ((ROOT, ""), (ROOT.parent / "shared", "../shared/")):
        if path == base:
            return prefix.rstrip("/") or "."
        if path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix()
    temporary = path.is_relative_to(Path(tempfile.gettempdir()).resolve()) or path.is_relative_to("/tmp")
    return f"<{'temporary' if temporary else 'external'}>/{path.name}"


def portable(value: Any) -> Any:
    """A JSON value with every string that is an absolute path (keys included) made a `repo_path`."""
    if isinstance(value, dict):
        return {portable(k): portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, Path) or (isinstance(value, str) and Path(value).is_absolute()):
        return repo_path(value)
    return value


def command() -> str:
    """The command that ran this benchmark, with repository-relative paths."""

    def relative(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("--") and "=" in arg else ("", "", arg)
        return flag + eq + (repo_path(value) if Path(value).is_absolute() else value)

    script = sys.argv[0]
    name = repo_path(script) if script and script != "-c" else "benchmarks"
    return " ".join(["python", name, *map(relative, sys.argv[1:])])


def git_commit() -> str:
    """The checked-out commit (short hash), or "unknown" outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """The machine a result was measured on."""
    from nas.latency import cpu_model

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def header(name: str, started: float | None = None) -> dict:
    """The header of a result file: benchmark, command, UTC date, commit, machine and wall time."""
    head = {
        "benchmark": name,
        "command": command(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
        "machine": machine(),
    }
    if started is not None:
        head["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    return head


def write_result(
    name: str, body: dict, *, started: float, filename: str | None = None, out: str | Path | None = None
) -> Path:
    """Write `out`, or `results_dir()/<filename or name.json>`: the header, then `body` (not repeating it).

    `started` is `time.perf_counter()` at the benchmark's start. A string that is an absolute path becomes
    its `repo_path`; a result still holding one inside a longer string is refused.
    """
    head = header(name, started)
    repeated = sorted(set(head) & set(body))
    if repeated:
        raise ValueError(f"the result body repeats header fields: {', '.join(repeated)}")
    result = portable({**head, **body})
    absolute = absolute_paths(result)
    if absolute:
        raise ValueError(f"{name}: absolute paths in the result (use repo_path): {', '.join(absolute[:3])}")
    out = write_json(Path(out) if out else results_dir() / (filename or f"{name}.json"), result)
    print(f"wrote {repo_path(out)} ({head['benchmark_seconds']} s)")
    return out


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a reader never sees half a file: results, and caches shared by workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp.name, path)
    return path


def figure_path(name: str) -> Path:
    """Where a benchmark's figure goes: beside its results."""
    results_dir().mkdir(parents=True, exist_ok=True)
    return results_dir() / name


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file another benchmark wrote; missing or malformed is a one-line BenchmarkError."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchmarkError(f"{what} not found: {repo_path(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BenchmarkError(f"{repo_path(path)}: not valid JSON") from None


def run_main(main) -> None:
    """Run a benchmark's main: its return value is the exit status; a BenchmarkError or NasError is one line."""
    from nas.errors import NasError

    try:
        status = main()
    except (BenchmarkError, NasError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(status if isinstance(status, int) else 0)
