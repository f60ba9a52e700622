"""What a run leaves behind besides the study: `trials.csv` and `pareto.json`."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas._io import write_atomic, write_json_atomic
from nas.records import CSV_COLUMNS, PARAM_PREFIX, TrialRecord, fleet_order, is_fleet_key


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(accuracy, latency) `a` is no worse than `b` in both and better in one (Pareto dominance)."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_indices(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of non-dominated (accuracy up, latency down) points; exact ties keep the first."""
    front = [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) or (q == p and j < i) for j, q in enumerate(points) if j != i)
    ]
    return sorted(front, key=lambda k: points[k][1])


def hypervolume(points: Sequence[tuple[float, float]], reference_latency_ms: float) -> float:
    """Area (accuracy x ms) dominated by the points, bounded by accuracy 0 and `reference_latency_ms`.

    The reference must stay fixed to compare runs (a latency budget, or one latency for all runs).
    """
    area, best = 0.0, 0.0
    inside = sorted((p for p in points if p[1] < reference_latency_ms), key=lambda p: p[1])
    # Sweep from the fastest point: each point adds the slab where it is the best accuracy so far.
    for i, (acc, lat) in enumerate(inside):
        best = max(best, acc)
        right = inside[i + 1][1] if i + 1 < len(inside) else reference_latency_ms
        area += best * (right - lat)
    return area


def trained_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Candidates trained to the end, each once (duplicates repeat their original's result)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialRecord.from_trial(t).trained
    ]


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    complete = trained_trials(study)
    front = pareto_indices([(t.values[0], t.values[1]) for t in complete])
    return [complete[i] for i in front]


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's trials.csv row (see `TrialRecord.to_row`)."""
    return TrialRecord.from_trial(trial).to_row()


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    param_columns = sorted({k for r in rows for k in r if k.startswith(PARAM_PREFIX)})
    fleet_columns = sorted(
        {k for r in rows for k in r if is_fleet_key(k)}, key=fleet_order
    )  # latency_ms@PROFILE, ...
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS) + fleet_columns + param_columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def pareto_records(study: optuna.Study) -> list[dict[str, Any]]:
    """The pareto.json entries (see `TrialRecord.to_pareto_entry`), fastest first."""
    return [TrialRecord.from_trial(t).to_pareto_entry() for t in pareto_trials(study)]


def write_pareto_json(study: optuna.Study, path: Path, context: dict[str, Any]) -> list[dict[str, Any]]:
    records = pareto_records(study)
    write_json_atomic(
        path, {**context, "objectives": {"accuracy": "maximize", "latency_ms": "minimize"}, "pareto": records}
    )
    return records
