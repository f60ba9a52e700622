"""The typed trial record: Optuna trial, user_attrs, trials.csv row and pareto.json entry agree."""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from nas.records import CSV_COLUMNS, Attr, TrialRecord, TrialStatus

COMPLETE_ATTRS = {
    "status": "complete",
    "arch_hash": "ab12cd34",
    "summary": "mb3x16-k3",
    "architecture": {"stem": 16, "blocks": [{"kind": "mbconv", "kernel": 3}]},
    "params": 12345,
    "macs": 678900,
    "prepare_seconds": 0.5,
    "latency_ms": 0.42,
    "latency_source": "measured",
    "latency_spread": 0.03,
    "latency_stable": True,
    "latency_attempts": 1,
    "latency_seconds": 1.25,
    "train_seconds": 3.5,
    "eval_seconds": 0.25,
    "val_loss": 1.5,
    "epochs": 2,
    "clean_accuracy": 0.61,
    "checkpoint": "checkpoints/trial_00003_ab12cd34.pt",
    "rung_accuracy": {"1": 0.4},
    "rung_seconds": 1.0,
    "naswot": 123.5,
    "wall_seconds": 6.0,
}


def _trial(state=TrialState.COMPLETE, values=(0.61, 0.42), attrs=None, number=3):
    trial = optuna.trial.create_trial(
        state=state,
        values=list(values) if values else None,
        params={"depth": 2, "kernel": "k3"},
        distributions={
            "depth": IntDistribution(1, 4),
            "kernel": CategoricalDistribution(["k3", "k5"]),
        },
        user_attrs=COMPLETE_ATTRS if attrs is None else attrs,
    )
    trial.number = number
    return trial


def _csv_round_trip(row: dict) -> dict:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS) + sorted(k for k in row if ":" in k))
    writer.writeheader()
    writer.writerow(row)
    return next(csv.DictReader(io.StringIO(buffer.getvalue())))


def test_every_attr_key_is_a_field():
    fields = {f.name for f in dataclasses.fields(TrialRecord)}
    keys = [v for k, v in vars(Attr).items() if k.isupper()]
    assert len(keys) == len(set(keys))
    assert set(keys) <= fields
    assert set(CSV_COLUMNS) <= fields | {"number", "state", "status"}


def test_trial_to_record_to_user_attrs_round_trip():
    trial = _trial(attrs={**COMPLETE_ATTRS, "some_future_key": [1, 2]})
    record = TrialRecord.from_trial(trial)
    assert record.status is TrialStatus.COMPLETE
    assert (record.number, record.state, record.accuracy, record.latency_ms) == (3, "COMPLETE", 0.61, 0.42)
    assert record.params == 12345 and record.architecture == COMPLETE_ATTRS["architecture"]
    assert record.sampled == {"depth": 2, "kernel": "k3"}
    assert record.extra == {"some_future_key": [1, 2]}
    assert record.trained and record.reason == ""
    assert record.to_user_attrs() == trial.user_attrs


def test_status_is_a_plain_string_where_it_is_written():
    assert TrialStatus.COMPLETE == "complete"
    assert f"{TrialStatus.SCREENED_OUT}" == str(TrialStatus.SCREENED_OUT) == "screened_out"
    assert "stopped_early" in {TrialStatus.STOPPED_EARLY}
    assert not TrialStatus.INTERRUPTED.counts_toward_budget
    assert TrialStatus.INFEASIBLE.counts_toward_budget


def test_unfinished_trials():
    running = TrialRecord.from_trial(_trial(TrialState.RUNNING, None, {"arch_hash": "ab"}))
    assert running.status is TrialStatus.RUNNING and running.accuracy is None
    assert running.to_user_attrs() == {"arch_hash": "ab"}  # "running" is Optuna's state, not recorded
    queued = TrialRecord.from_trial(_trial(TrialState.WAITING, None, {"requeued_from": 1}))
    assert queued.status is None and queued.requeued_from == 1
    assert queued.to_row()["status"] == ""


def test_unknown_status_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown trial status 'exploded' \(known: complete, infeasible"):
        TrialStatus.parse("exploded")
    with pytest.raises(ValueError, match="unknown trial status 'exploded'"):
        TrialRecord.from_trial(_trial(TrialState.FAIL, None, {"status": "exploded"}))
    with pytest.raises(ValueError, match="unknown trial status 'exploded'"):
        TrialRecord.from_row({"number": "1", "state": "FAIL", "status": "exploded"})


def test_csv_row_to_record():
    record = TrialRecord.from_trial(_trial())
    row = _csv_round_trip(record.to_row())
    assert list(row)[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert row["param:depth"] == "2" and row["latency_stable"] == "True" and row["duplicate_of"] == ""
    back = TrialRecord.from_row(row)
    # trials.csv keeps neither the architecture, the times of day nor the columns it has no room for
    dropped = ("architecture", "latency_attempts", "val_loss", "epochs", "checkpoint")
    assert back == record.replace(datetime_start=None, datetime_complete=None, **dict.fromkeys(dropped))


def test_csv_reason_column():
    attrs = {"status": "infeasible", "latency_ms": 9.0, "infeasible_reason": "latency 9 ms > budget 1 ms"}
    infeasible = TrialRecord.from_trial(_trial(TrialState.PRUNED, None, attrs))
    row = _csv_round_trip(infeasible.to_row())
    assert row["failure_reason"] == "latency 9 ms > budget 1 ms" and row["accuracy"] == ""
    back = TrialRecord.from_row(row)
    assert back.infeasible_reason == "latency 9 ms > budget 1 ms" and back.failure_reason is None
    assert back.reason == infeasible.reason and back.latency_ms == 9.0
    failed = TrialRecord.from_row({**row, "state": "FAIL", "status": "failed", "failure_reason": "boom"})
    assert failed.failure_reason == "boom" and failed.infeasible_reason is None


def test_pareto_entry_round_trip():
    record = TrialRecord.from_trial(
        _trial(attrs={**COMPLETE_ATTRS, "latency_low_ms": 0.4, "latency_high_ms": 0.5})
    )
    entry = record.to_pareto_entry()
    assert entry["trial"] == 3 and entry["latency_interval_ms"] == [0.4, 0.5]
    assert TrialRecord.from_pareto_entry(entry).to_pareto_entry() == entry


def test_importing_the_record_needs_neither_optuna_nor_torch():
    code = "import sys, nas.records; assert not {'optuna', 'torch'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)
