"""Search settings, their validation, and the run directory's identity (so a re-run resumes, never mixes)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nas.errors import NasError

SAMPLERS = ("nsga2", "tpe", "random")
LATENCY_MODES = ("auto", "measured", "predicted")
EHVI = "ehvi"  # not a training-free score: expected hypervolume improvement from an accuracy model (_acquisition)
PRESCREEN_SCORES = (
    "naswot",
    "synflow",
    "grad_norm",
    "params",
    "macs",
    EHVI,
)  # nas.evaluate.ZERO_COST_SCORES + EHVI

MAX_PRESCREEN = 64  # --prescreen 100000 asked hundreds of thousands of trials before training one

# Settings that define what a run is; the others (trials, workers, ray_address, out) may change on resume.
_IDENTITY = (
    "space",
    "profile",
    "latency",
    "dataset",
    "sampler",
    "population",
    "seed",
    "epochs",
    "train_subset",
    "latency_budget_ms",
    "max_params",
    "max_macs",
    "val_fraction",
    "robust_weight",
    "prescreen",
    "prescreen_score",
    "rungs",
    "stop_dominated_by",
    "stop_margin",
)
# Identity settings that may name a file or folder: compared as resolved paths, however they are spelled.
_PATH_SETTINGS = ("space", "profile", "dataset")


@dataclass(frozen=True)
class SearchConfig:
    space: str = "mobilenet"
    profile: str = "x86-cpu"
    latency: str = "auto"
    dataset: str = "builtin"
    trials: int = 24
    epochs: int = 4
    train_subset: int | None = 2500
    workers: int | None = None
    latency_budget_ms: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    # The defaults are the best configuration measured (README, search efficiency): random proposals, 8 per
    # trained candidate, the ones with the largest expected hypervolume improvement train, in batches of 4.
    sampler: str = "random"
    population: int = 4
    seed: int = 0
    val_fraction: float = 0.1
    out: str | None = None
    ray_address: str | None = None
    robust_weight: float | None = None  # objective = (1 - w) clean + w mean-corrupted accuracy
    prescreen: int = 8  # sample this many candidates per trained one (1: off)
    prescreen_score: str = "ehvi"
    rungs: tuple[int, ...] = ()  # multi-fidelity: epochs of the early rungs (each < epochs)
    stop_dominated_by: int = 2
    stop_margin: float | None = None  # rung dominance needs this much more accuracy (None: 2 standard errors)
    allow_extrapolation: bool = (
        False  # predict kinds the profile never measured with its prior instead of refusing
    )
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        _positive_int("trials", self.trials)
        _positive_int("epochs", self.epochs)
        _positive_int("population", self.population, minimum=2)
        if self.train_subset is not None:
            _positive_int("train_subset", self.train_subset)
        if self.workers is not None:
            _positive_int("workers", self.workers)
        for name in ("max_params", "max_macs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.latency_budget_ms is not None and not (
            math.isfinite(self.latency_budget_ms) and self.latency_budget_ms > 0
        ):
            raise NasError(
                f"latency_budget_ms: must be a positive finite number of milliseconds, got {self.latency_budget_ms}"
            )
        if self.robust_weight is not None and not (
            isinstance(self.robust_weight, (int, float)) and 0 <= self.robust_weight <= 1
        ):
            raise NasError(f"robust_weight: must be a number in [0, 1], got {self.robust_weight!r}")
        _positive_int("prescreen", self.prescreen)
        if (
            self.prescreen > MAX_PRESCREEN
        ):  # each sampled candidate is a study trial plus its costs and latency
            raise NasError(
                f"prescreen: at most {MAX_PRESCREEN} candidates sampled per trained one (each costs a "
                f"study trial, its costs and latency before any training), got {self.prescreen}"
            )
        _positive_int("stop_dominated_by", self.stop_dominated_by)
        if self.stop_margin is not None and not (
            isinstance(self.stop_margin, (int, float))
            and not isinstance(self.stop_margin, bool)
            and 0 <= self.stop_margin < 1
        ):
            raise NasError(f"stop_margin: must be an accuracy difference in [0, 1), got {self.stop_margin!r}")
        object.__setattr__(self, "rungs", tuple(self.rungs))
        for rung in self.rungs:
            if isinstance(rung, bool) or not isinstance(rung, int) or not 0 < rung < self.epochs:
                raise NasError(
                    f"rungs: each rung is a number of epochs below --epochs ({self.epochs}), got {rung!r}"
                )
        if list(self.rungs) != sorted(set(self.rungs)):
            raise NasError(f"rungs: must increase, got {list(self.rungs)}")
        if self.prescreen_score not in PRESCREEN_SCORES:
            raise NasError(
                f"prescreen_score: unknown score {self.prescreen_score!r} (choose from {', '.join(PRESCREEN_SCORES)})"
            )
        if self.latency not in LATENCY_MODES:
            raise NasError(f"latency: unknown mode {self.latency!r} (choose from {', '.join(LATENCY_MODES)})")
        if self.sampler not in SAMPLERS:
            raise NasError(f"sampler: unknown sampler {self.sampler!r} (choose from {', '.join(SAMPLERS)})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise NasError(
                f"seed: must be an integer from 0 to 2**32 - 1 (what the samplers accept), got {self.seed!r}"
            )

    @property
    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        return Path("results") / f"search-{Path(self.space).stem}-{Path(self.profile).stem}-seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """As stored in config.json (tuples become lists), so a resume compares like with like."""
        return json.loads(json.dumps({name: getattr(self, name) for name in _IDENTITY}))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}

    def canonical_paths(self) -> dict[str, Any]:
        """The space, profile and dataset as absolute paths (built-in names as they are), stored in config.json
        so a resume from another folder, or with another spelling of the same path, is recognised."""
        return {name: _canonical(name, getattr(self, name)) for name in _PATH_SETTINGS}


def _canonical(name: str, value: Any) -> Any:
    """A path setting resolved (absolute, no `..`, links followed), decided as load_space, load_profile and
    load_dataset decide what is a path; a built-in name unchanged."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    is_path = (
        value != "builtin"
        if name == "dataset"
        else "/" in value or "\\" in value or path.suffix in (".yaml", ".yml") or path.exists()
    )
    return str(path.resolve()) if is_path else value


_BEFORE_IT_EXISTED = {
    "prescreen": 1,
    "prescreen_score": "naswot",
}  # whose defaults changed since they were added


def check_run_dir(config: SearchConfig, run_dir: Path) -> bool:
    """True when run_dir holds this same search (resume). A different search there is a user error."""
    saved_path = run_dir / "config.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise NasError(f"{run_dir}: is a file, not a run directory; choose another --out")
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
    absent = {**SearchConfig().identity(), **_BEFORE_IT_EXISTED}
    canonical = config.canonical_paths()
    for name, value in config.identity().items():
        before = saved.get(name, absent[name])
        if (
            name in canonical
        ):  # resolved paths: as stored at the start, else (older runs) the spelling resolved here
            before, value = saved_paths.get(name, _canonical(name, before)), canonical[name]
        if before != value:
            raise NasError(
                f"{run_dir}: holds a search with {name}={before!r}, not {value!r}; "
                "re-run with the same settings to resume, or choose another --out"
            )
    return True


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NasError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def fingerprints(space, profile, dataset, latency_mode: str) -> dict[str, str]:
    """Content hashes of what a run is made with, so a resume notices a space file, a profile or a dataset
    that changed under the same name. For the profile only what the run uses counts: the measurement
    protocol when measuring, the fitted model when predicting."""

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]

    space_path = Path(space.path)
    used = (
        {"overhead_ms": profile.latency_model.overhead_ms, "weights": profile.latency_model.weights}
        if latency_mode == "predicted"
        else {"runtime": profile.runtime, "measurement": profile.measurement}
    )
    if latency_mode == "predicted" and profile.prior is not None:  # it prices kinds the device never measured
        used["prior"] = profile.prior.to_dict()
    return {
        "space": hashlib.sha256(space_path.read_bytes()).hexdigest()[:16]
        if space_path.is_file()
        else digest(space.describe()),
        "profile": digest(used),
        "dataset": digest(dataset.describe()),
    }


def check_fingerprints(run_dir: Path, current: dict[str, str]) -> None:
    """On resume: the same content as when the run started (runs made before fingerprints: not checked)."""
    saved = json.loads((run_dir / "config.json").read_text()).get("fingerprints") or {}
    for key, value in saved.items():
        if current.get(key) != value:
            raise NasError(
                f"{run_dir}: the {key} changed since this run started (same name, different content); "
                "restore it to resume, or choose another --out"
            )
