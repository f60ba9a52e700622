"""The trial record: what one evaluated candidate of a search carries, in one typed place.

The driver stores a trial's facts as Optuna `user_attrs` under the keys in `Attr`; `trials.csv` and
`pareto.json` are views of the same facts. `TrialRecord` reads any of the three and writes them back:

    record = TrialRecord.from_trial(frozen_trial)      # an Optuna FrozenTrial (duck-typed)
    record = TrialRecord.from_row(csv_row)             # a row of trials.csv, as csv.DictReader gives it
    record = TrialRecord.from_pareto_entry(entry)      # an entry of pareto.json's "pareto" list
    record.to_user_attrs(), record.to_row(), record.to_pareto_entry()

This module imports neither torch nor Optuna, so a run directory can be read without either.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from nas._trial_keys import (  # noqa: F401 (the vocabulary, re-exported: nas.records is its public home)
    CSV_COLUMNS,
    FLEET_ATTRS,
    FLEET_SEPARATOR,
    PARAM_PREFIX,
    Attr,
    TrialStatus,
    fleet_key,
    fleet_order,
    is_fleet_key,
)

# Statuses whose reason is stored as infeasible_reason (the others store a failure_reason).
_INFEASIBLE_KINDS = (TrialStatus.INFEASIBLE, TrialStatus.SCREENED_OUT, TrialStatus.STOPPED_EARLY)


@dataclass(frozen=True)
class TrialRecord:
    """One trial. Optuna's own facts first, then one field per `Attr` key (None when not recorded)."""

    number: int
    state: str  # Optuna's TrialState name: COMPLETE, PRUNED, FAIL, RUNNING or WAITING
    status: TrialStatus | None  # as recorded; RUNNING while Optuna runs it; None for a queued trial
    accuracy: float | None = None  # first objective (the blend of clean and corrupted in a robust search)
    latency_ms: float | None = None  # as measured or predicted (a complete trial's second objective)
    sampled: Mapping[str, Any] = field(default_factory=dict)  # the sampler's parameters (Optuna trial.params)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None
    arch_hash: str | None = None
    summary: str | None = None
    architecture: dict | None = None
    infeasible_reason: str | None = None
    failure_reason: str | None = None
    duplicate_of: int | None = None
    requeued_from: int | None = None
    params: int | None = None
    macs: int | None = None
    peak_memory_kb: float | None = None
    weights_kb: float | None = None
    latency_source: str | None = None
    latency_spread: float | None = None
    latency_stable: bool | None = None
    latency_attempts: int | None = None
    latency_node_id: str | None = None
    latency_host: str | None = None
    latency_low_ms: float | None = None
    latency_high_ms: float | None = None
    latency_extrapolated: float | None = None
    latency_straddles_budget: bool | None = None
    latency_predicted_ms: float | None = None
    latency_calibrated_on: int | None = None
    latency_whole_ms: float | None = None
    energy_mj: float | None = None
    energy_low_mj: float | None = None
    energy_high_mj: float | None = None
    energy_extrapolated: float | None = None
    prescreen_score: float | None = None
    naswot: float | None = None
    rung_accuracy: dict[str, float] | None = None
    val_loss: float | None = None
    epochs: int | None = None
    clean_accuracy: float | None = None
    corrupted_accuracy: float | None = None
    worst_slice: str | None = None
    worst_slice_accuracy: float | None = None
    checkpoint: str | None = None
    prepare_seconds: float | None = None
    latency_seconds: float | None = None
    rung_seconds: float | None = None
    train_seconds: float | None = None
    train_device: str | None = None
    eval_seconds: float | None = None
    robust_seconds: float | None = None
    wall_seconds: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # user_attrs under keys this version does not know

    # --- readers -------------------------------------------------------------------------------------

    @classmethod
    def from_trial(cls, trial: Any) -> TrialRecord:
        """From an Optuna FrozenTrial (anything with its attributes); an unknown status is a ValueError."""
        attrs = dict(trial.user_attrs)
        state = trial.state.name
        recorded = attrs.pop(Attr.STATUS, None)
        status = TrialStatus.parse(recorded) if recorded is not None else None
        if status is None and state == "RUNNING":
            status = TrialStatus.RUNNING
        values = trial.values
        latency = attrs.pop(Attr.LATENCY_MS, None)
        if latency is None and values:
            latency = values[1]
        known = {k: attrs.pop(k) for k in _ATTR_FIELDS if k in attrs}
        return cls(
            number=trial.number,
            state=state,
            status=status,
            accuracy=values[0] if values else None,
            latency_ms=latency,
            sampled=dict(trial.params),
            datetime_start=trial.datetime_start,
            datetime_complete=trial.datetime_complete,
            extra=attrs,
            **known,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> TrialRecord:
        """From a trials.csv row as csv.DictReader reads it (every value a string, "" for none).

        The file has one reason column: it becomes `infeasible_reason` for the statuses that record one,
        else `failure_reason`. trials.csv holds neither the architecture nor the times of day."""
        status = TrialStatus.parse(row["status"]) if row.get("status") else None
        fields = {
            name: _parse_cell(row.get(name, ""), _FIELD_TYPES[name])
            for name in CSV_COLUMNS
            if name not in ("number", "state", "status", "failure_reason")
        }
        reason_field = "infeasible_reason" if status in _INFEASIBLE_KINDS else "failure_reason"
        fields[reason_field] = row.get("failure_reason") or None
        sampled = {
            k[len(PARAM_PREFIX) :]: _literal(v)
            for k, v in row.items()
            if k.startswith(PARAM_PREFIX) and v != ""
        }
        fleet = {k: _literal(v) for k, v in row.items() if is_fleet_key(k) and v != ""}
        return cls(
            number=int(row["number"]),
            state=row["state"],
            status=status,
            sampled=sampled,
            extra=fleet,
            **fields,
        )

    @classmethod
    def from_pareto_entry(cls, entry: Mapping[str, Any]) -> TrialRecord:
        """From an entry of pareto.json's "pareto" list (a trained, complete trial)."""
        interval = entry.get("latency_interval_ms")
        return cls(
            number=entry["trial"],
            state="COMPLETE",
            status=TrialStatus.COMPLETE,
            accuracy=entry["accuracy"],
            latency_ms=entry["latency_ms"],
            arch_hash=entry.get("arch_hash"),
            latency_spread=entry.get("latency_spread"),
            latency_low_ms=interval[0] if interval else None,
            latency_high_ms=interval[1] if interval else None,
            latency_extrapolated=entry.get("latency_extrapolated"),
            latency_whole_ms=entry.get("latency_whole_ms"),
            params=entry.get("params"),
            macs=entry.get("macs"),
            peak_memory_kb=entry.get("peak_memory_kb"),
            weights_kb=entry.get("weights_kb"),
            energy_mj=entry.get("energy_mj"),
            energy_low_mj=(entry.get("energy_interval_mj") or (None, None))[0],
            energy_high_mj=(entry.get("energy_interval_mj") or (None, None))[1],
            energy_extrapolated=entry.get("energy_extrapolated"),
            summary=entry.get("summary"),
            clean_accuracy=entry.get("clean_accuracy"),
            corrupted_accuracy=entry.get("corrupted_accuracy"),
            checkpoint=entry.get("checkpoint"),
            architecture=entry.get("architecture"),
            extra={k: v for k, v in entry.items() if is_fleet_key(k)},
        )

    # --- writers -------------------------------------------------------------------------------------

    def to_user_attrs(self) -> dict[str, Any]:
        """The user_attrs to store for this trial: every recorded field (None fields are left out)."""
        attrs = {k: getattr(self, k) for k in _ATTR_FIELDS if getattr(self, k) is not None}
        if self.latency_ms is not None:
            attrs[Attr.LATENCY_MS] = self.latency_ms
        if self.status is not None and self.status is not TrialStatus.RUNNING:
            attrs[Attr.STATUS] = self.status.value
        return {**attrs, **self.extra}

    def to_row(self) -> dict[str, Any]:
        """The trials.csv row: CSV_COLUMNS ("" for none), then "param:NAME" for each sampled parameter."""
        row = {name: _cell(getattr(self, name, None)) for name in CSV_COLUMNS}
        row.update(number=self.number, state=self.state, status=self.status.value if self.status else "")
        failure = self.failure_reason if self.failure_reason is not None else self.infeasible_reason
        row["failure_reason"] = _cell(failure)
        row.update(self.fleet_latencies)
        row.update({f"{PARAM_PREFIX}{k}": v for k, v in sorted(self.sampled.items())})
        return row

    def to_pareto_entry(self) -> dict[str, Any]:
        """The pareto.json entry of this (complete, trained) trial."""
        interval = None if self.latency_low_ms is None else [self.latency_low_ms, self.latency_high_ms]
        return {
            "trial": self.number,
            "arch_hash": self.arch_hash,
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            "latency_spread": self.latency_spread,
            "latency_interval_ms": interval,
            "latency_extrapolated": self.latency_extrapolated,
            **({"latency_whole_ms": self.latency_whole_ms} if self.latency_whole_ms is not None else {}),
            "params": self.params,
            "macs": self.macs,
            **self._memory_entry(),
            **self._energy_entry(),
            "summary": self.summary,
            "clean_accuracy": self.clean_accuracy,
            "corrupted_accuracy": self.corrupted_accuracy,
            "checkpoint": self.checkpoint,
            "architecture": self.architecture,
            **self.fleet_latencies,
            **({"exits": self.extra["exits"]} if "exits" in self.extra else {}),  # early exits (nas.search)
        }

    def _memory_entry(self) -> dict[str, float]:
        """The memory costs where recorded (a run made before they existed keeps its pareto.json as it was)."""
        memory = {"peak_memory_kb": self.peak_memory_kb, "weights_kb": self.weights_kb}
        return {k: v for k, v in memory.items() if v is not None}

    def _energy_entry(self) -> dict[str, Any]:
        """The predicted energy and its interval where recorded (a profile with an energy model)."""
        if self.energy_mj is None:
            return {}
        interval = None if self.energy_low_mj is None else [self.energy_low_mj, self.energy_high_mj]
        return {
            "energy_mj": self.energy_mj,
            "energy_interval_mj": interval,
            "energy_extrapolated": self.energy_extrapolated,
        }

    # --- derived facts -------------------------------------------------------------------------------

    @property
    def fleet_latencies(self) -> dict[str, float]:
        """latency_ms@PROFILE (and its interval) for each other device of the fleet, by key."""
        return {k: self.extra[k] for k in sorted(filter(is_fleet_key, self.extra), key=fleet_order)}

    @property
    def reason(self) -> str:
        """Why it is not a trained result: the infeasible reason, else the failure reason, else ""."""
        return self.infeasible_reason or self.failure_reason or ""

    @property
    def trained(self) -> bool:
        """Trained to the end in its own right (complete, not a duplicate repeating another's result)."""
        return self.status is TrialStatus.COMPLETE and self.duplicate_of is None

    def replace(self, **changes: Any) -> TrialRecord:
        """A copy with some fields changed (the record itself is frozen)."""
        return dataclasses.replace(self, **changes)


# Record fields stored under the user_attrs key of the same name (status and latency_ms are handled apart).
_ATTR_FIELDS = tuple(
    v for k, v in vars(Attr).items() if k.isupper() and v not in (Attr.STATUS, Attr.LATENCY_MS)
)
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrialRecord)}


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _parse_cell(text: str, annotation: str) -> Any:
    """A trials.csv cell back to the field's type (the annotation is a string: `from __future__`)."""
    if text == "":
        return None
    if annotation.startswith("bool"):
        return text == "True"
    if annotation.startswith("int"):
        return int(text)
    if annotation.startswith("float"):
        return float(text)
    if annotation.startswith("dict"):
        return ast.literal_eval(text)
    return text


def _literal(text: str) -> Any:
    """A sampled parameter's cell: a Python literal (number, bool) when it reads as one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
