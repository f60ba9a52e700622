"""The run directory's identity: a re-run with the same search resumes it, a different one is refused,
and content changed under the same names (space, profile, dataset) is noticed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nas._io import remove_stale_temp_files
from nas.errors import NasError
from nas.search._config import SearchConfig
from nas.search._setting import canonical_path

# Settings whose defaults changed since they were added: their value in a run made before they existed.
BEFORE_IT_EXISTED = {"prescreen": 1, "prescreen_score": "naswot"}

# Present while a new search makes its run directory (config.json, study.db, checkpoints/), removed once the
# search runs: found by a later start, it marks a start that was killed (SIGKILL, a power cut) before it could
# roll back, whose files are no run yet.
START_MARKER = ".starting"
# What a start makes before the marker goes (besides the lock): the only names `clear_unfinished_start` removes.
_START_FILES = ("config.json", "study.db", "study.db-journal", "study.db-wal", "study.db-shm")


def check_run_dir(config: SearchConfig, run_dir: Path) -> bool:
    """True when run_dir holds this same search (resume). A different search there is a user error."""
    saved_path = run_dir / "config.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise NasError(f"{run_dir}: is a file, not a run directory; choose another --out")
    if (run_dir / START_MARKER).is_file():  # a start killed half-way: a new search (cleared under the lock)
        return False
    if not saved_path.exists():
        if run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
            raise NasError(f"{run_dir}: exists and is not a nas run directory; choose another --out")
        return False
    try:
        document = json.loads(saved_path.read_text())
        saved, saved_paths = document["search"], document.get("paths")
        saved_paths = saved_paths if isinstance(saved_paths, dict) else {}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise NasError(f"{saved_path}: unreadable run configuration; choose another --out") from None
    # A setting added after the run was made had, in effect, its value of that time.
    absent = {**SearchConfig().identity(), **BEFORE_IT_EXISTED}
    canonical = config.canonical_paths()
    for name, value in config.identity().items():
        before = saved.get(name, absent[name])
        if (
            name in canonical
        ):  # resolved paths: as stored at the start, else (older runs) the spelling resolved here
            before, value = saved_paths.get(name, canonical_path(name, before)), canonical[name]
        if before != value:
            hint = ""
            if name == "latency_budget_ms":  # the default is derived from the profile: say the run's own
                hint = f" (its budget: --latency-budget-ms {'none' if before is None else before})"
            raise NasError(
                f"{run_dir}: holds a search with {name}={before!r}, not {value!r}; "
                f"re-run with the same settings to resume{hint}, or choose another --out"
            )
    return True


def fingerprints(space, profile, dataset, latency_mode: str) -> dict[str, str]:
    """Content hashes of what a run is made with, so a resume notices a space file, a profile or a dataset
    that changed under the same name. For the profile only what the run uses counts: the measurement
    protocol when measuring, the fitted model when predicting."""

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]

    space_path = Path(space.path)
    used = (
        _model_used(profile)
        if latency_mode == "predicted"
        else {"runtime": profile.runtime, "measurement": profile.measurement}
    )
    content = {
        "space": hashlib.sha256(space_path.read_bytes()).hexdigest()[:16]
        if space_path.is_file()
        else digest(space.describe()),
        "profile": digest(used),
        "dataset": digest(dataset.describe()),
    }
    if latency_mode == "hybrid":  # the prior its online calibration refits: another one would mix two
        content["latency_model"] = digest(_model_used(profile))
    return content


def _model_used(profile) -> dict[str, Any]:
    """What of a profile's latency model a prediction uses: its weights, overhead and prior (which prices
    the kinds the device never measured)."""
    model = profile.latency_model
    used = {"overhead_ms": model.overhead_ms, "weights": model.weights}
    if profile.prior is not None:
        used["prior"] = profile.prior.to_dict()
    return used


def check_fingerprints(run_dir: Path, current: dict[str, str]) -> None:
    """On resume: the same content as when the run started (runs made before fingerprints: not checked)."""
    saved = json.loads((run_dir / "config.json").read_text()).get("fingerprints") or {}
    for key, value in saved.items():
        if current.get(key) != value:
            raise NasError(
                f"{run_dir}: the {key} changed since this run started (same name, different content); "
                "restore it to resume, or choose another --out"
            )


def clear_unfinished_start(run_dir: Path) -> bool:
    """Remove what a killed start left (see START_MARKER): its config.json, study.db, empty checkpoints/ and
    the marker; nothing else. Call it holding the run's lock. Returns whether there was such a start."""
    if not (run_dir / START_MARKER).is_file():
        return False
    for name in _START_FILES:
        (run_dir / name).unlink(missing_ok=True)
    remove_stale_temp_files(run_dir)
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir():
        remove_stale_temp_files(checkpoints)
        if not any(checkpoints.iterdir()):
            checkpoints.rmdir()
    (run_dir / START_MARKER).unlink()
    return True


def finished_already(run_dir: Path, trials: int) -> bool:
    """Whether the run in `run_dir` already has `trials` that count toward --trials (a re-run of a finished
    search has nothing left to do). Read-only; a study it cannot read is not finished (the start that follows
    names the problem)."""
    from nas.search._study import finished_count, load_run_study

    try:
        study = load_run_study(run_dir)
    except NasError:
        return False
    return finished_count(study) >= trials
