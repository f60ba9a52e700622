"""Read a run directory (study.db, config.json, export/, baselines.json) into plain records for a report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas._io import read_json
from nas.errors import NasError
from nas.records import TrialRecord, TrialStatus
from nas.search import hypervolume, load_run_study, pareto_indices


@dataclass(frozen=True)
class Baseline:
    name: str
    accuracy: float
    latency_ms: float


@dataclass
class RunData:
    run_dir: Path
    config: dict
    trials: list[TrialRecord]  # every trial, by number
    pareto: list[TrialRecord]  # Pareto-optimal trained trials, by latency
    dominated: list[TrialRecord]  # trained, not duplicates, not Pareto-optimal
    baselines: list[Baseline]
    exports: dict[str, Path] = field(default_factory=dict)  # arch_hash -> export/NN_HASH directory

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def search(self) -> dict:
        return self.config.get("search", {})

    @property
    def budget_ms(self) -> float | None:
        return self.search.get("latency_budget_ms")

    @property
    def profile_name(self) -> str:
        return (self.config.get("profile") or {}).get("name") or str(self.search.get("profile", "?"))

    @property
    def latency_kind(self) -> str:
        """How the run's latencies were obtained: "measured" (here), "measured on the device" (a Ray node
        advertising the profile) or "predicted": the search's choice, else the profile's."""
        chosen = self.search.get("latency")
        if chosen in ("measured", "predicted"):
            return chosen
        if chosen == "device":
            return "measured on the device"
        return (self.config.get("profile") or {}).get("latency") or "measured"

    @property
    def space_name(self) -> str:
        return (self.config.get("space") or {}).get("name") or str(self.search.get("space", "?"))

    @property
    def trained(self) -> list[TrialRecord]:
        """Trained trials that are not duplicates (a duplicate repeats its original's point)."""
        return [t for t in self.trials if t.trained]

    def reference_latency(self) -> tuple[float, str]:
        """The hypervolume reference latency and a caption fragment saying which one it is."""
        if self.budget_ms:
            return float(self.budget_ms), f"the latency budget, {self.budget_ms:g} ms"
        worst = max(t.latency_ms for t in self.trained)
        return worst, f"the largest latency of a trained trial in this run, {worst:.3g} ms (no budget set)"

    def counts(self) -> dict[str, int]:
        return {s.value: sum(t.status is s for t in self.trials) for s in TrialStatus}


def load_run(run_dir: str | Path) -> RunData:
    """Everything a report needs from one run directory; user mistakes are one-line NasErrors."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise NasError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise NasError(f"{run_dir}: not a nas run directory (not a folder)")
    for name in ("config.json", "study.db"):
        if not (run_dir / name).is_file():
            raise NasError(f"{run_dir}: not a nas run directory (missing {name})")
    config = read_json(run_dir / "config.json", "run configuration")
    if not isinstance(config, dict) or not isinstance(config.get("search"), dict):
        raise NasError(f"{run_dir / 'config.json'}: not a nas run configuration (no 'search' settings)")
    trials = _read_trials(run_dir)
    complete = [t for t in trials if t.trained]
    if not complete:
        counts = ", ".join(
            f"{n} {s}" for s, n in ((s, sum(t.status is s for t in trials)) for s in TrialStatus) if n
        )
        raise NasError(f"{run_dir}: no completed (trained) trial to report yet ({counts or 'no trials'})")
    front = pareto_indices([(t.accuracy, t.latency_ms) for t in complete])
    pareto = [complete[i] for i in front]
    dominated = [t for i, t in enumerate(complete) if i not in set(front)]
    return RunData(
        run_dir=run_dir,
        config=config,
        trials=trials,
        pareto=pareto,
        dominated=dominated,
        baselines=_read_baselines(run_dir),
        exports=_find_exports(run_dir),
    )


def _read_trials(run_dir: Path) -> list[TrialRecord]:
    try:
        study = load_run_study(run_dir)
    except NasError:
        raise
    except Exception as exc:  # a foreign or corrupt database
        raise NasError(f"{run_dir / 'study.db'}: cannot open the nas study ({type(exc).__name__})") from None
    try:
        records = [_settled(TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False)]
    except ValueError as exc:  # a status this version does not know
        raise NasError(f"{run_dir / 'study.db'}: {exc}") from None
    return sorted(records, key=lambda r: r.number)


# The status of a finished trial that recorded none, from Optuna's state.
_STATUS_OF_STATE = {"COMPLETE": TrialStatus.COMPLETE, "PRUNED": TrialStatus.INFEASIBLE}


def _settled(record: TrialRecord) -> TrialRecord:
    """The record as the report counts it: every trial has a status (queued ones count as running), a
    complete trial has objective values (else it is shown as failed), and a summary line."""
    if record.state in ("RUNNING", "WAITING"):
        status = TrialStatus.RUNNING
    else:
        status = record.status or _STATUS_OF_STATE.get(record.state, TrialStatus.FAILED)
    latency = record.latency_ms
    changes: dict[str, Any] = {
        "status": status,
        "summary": record.summary or "",
        "latency_ms": float(latency) if isinstance(latency, (int, float)) else None,
    }
    if record.state != "COMPLETE":
        changes["accuracy"] = None
    if status is TrialStatus.COMPLETE and changes.get("accuracy", record.accuracy) is None:
        changes["status"] = TrialStatus.FAILED
        if not record.reason:
            changes["failure_reason"] = "complete without objective values"
    return record.replace(**changes)


BASELINES_FORMAT = (
    "RUN_DIR/baselines.json: a JSON list of hand-designed reference networks, trained and measured the same "
    'way as the run\'s candidates, e.g. [{"name": "MobileNetV2-0.35", "accuracy": 0.71, "latency_ms": 0.42}]; '
    "accuracy is a fraction in [0, 1], latency_ms is milliseconds on the run's hardware profile."
)


def _read_baselines(run_dir: Path) -> list[Baseline]:
    path = run_dir / "baselines.json"
    if not path.is_file():
        return []
    data = read_json(path, "baselines file")
    if not isinstance(data, list):
        raise NasError(f"{path}: must be a JSON list of {{name, accuracy, latency_ms}} objects")
    baselines = []
    for i, item in enumerate(data):
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and all(
                isinstance(item.get(k), (int, float)) and not isinstance(item.get(k), bool)
                for k in ("accuracy", "latency_ms")
            )
        )
        if not ok or not 0 <= item["accuracy"] <= 1 or not item["latency_ms"] > 0:
            raise NasError(
                f"{path}: entry {i}: expected {{\"name\": str, \"accuracy\": 0..1, \"latency_ms\": > 0}}, "
                f"got {json.dumps(item)[:120]}"
            )
        baselines.append(Baseline(item["name"], float(item["accuracy"]), float(item["latency_ms"])))
    return baselines


def _find_exports(run_dir: Path) -> dict[str, Path]:
    found = {}
    export = run_dir / "export"
    if export.is_dir():
        for directory in sorted(export.iterdir()):
            if directory.is_dir() and (directory / "model.onnx").is_file() and "_" in directory.name:
                found.setdefault(directory.name.split("_", 1)[1], directory)
    return found


def progress_curves(run: RunData) -> dict[str, Any]:
    """Hypervolume and best feasible accuracy after each trial (by number) and over wall-clock time."""
    reference, _ = run.reference_latency()
    by_number = sorted(run.trials, key=lambda t: t.number)
    finished = [
        t for t in run.trials if t.datetime_complete is not None and t.status is not TrialStatus.RUNNING
    ]
    by_time = sorted(finished, key=lambda t: t.datetime_complete)
    starts = [t.datetime_start for t in run.trials if t.datetime_start is not None]
    origin = min(starts) if starts else None

    def curve(order: list[TrialRecord]) -> tuple[list[float], list[float | None]]:
        points, hv, best = [], [], []
        for t in order:
            if t.status is TrialStatus.COMPLETE and t.accuracy is not None:
                points.append((t.accuracy, t.latency_ms))
            hv.append(hypervolume(points, reference))
            best.append(max((p[0] for p in points), default=None))
        return hv, best

    hv_n, best_n = curve(by_number)
    hv_t, best_t = curve(by_time)
    minutes = [(t.datetime_complete - origin).total_seconds() / 60 for t in by_time] if origin else []
    return {
        "trial": [t.number for t in by_number],
        "hv_by_trial": hv_n,
        "best_by_trial": best_n,
        "minutes": minutes,
        "hv_by_time": hv_t,
        "best_by_time": best_t,
        "reference_ms": reference,
    }
