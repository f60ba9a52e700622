"""A run directory in the format `nas search` writes (study.db user_attrs, trials.csv, pareto.json) still
loads, and the writers reproduce its files byte for byte.

The study is built by hand with the user_attrs the driver records for each kind of trial; saved_run/ holds
the trials.csv and pareto.json written for it, kept verbatim so that any change of format fails here.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from nas.records import TrialRecord, TrialStatus

ARCH = {"stem": 16, "blocks": [{"kind": "mbconv", "kernel": 3, "expand": 4}]}
TRAINED = {
    "arch_hash": "aaaa1111",
    "summary": "mb16-k3",
    "architecture": ARCH,
    "params": 12000,
    "macs": 340000,
    "prepare_seconds": 0.5,
    "latency_ms": 0.25,
    "latency_spread": 0.02,
    "latency_stable": True,
    "latency_attempts": 1,
    "latency_source": "measured",
    "latency_seconds": 1.5,
    "train_seconds": 3.25,
    "eval_seconds": 0.5,
    "val_loss": 1.25,
    "epochs": 2,
    "clean_accuracy": 0.5,
    "checkpoint": "checkpoints/trial_00000_aaaa1111.pt",
    "status": "complete",
    "wall_seconds": 5.0,
}
# (state, values, user_attrs, sampled kernel) of each trial, in order; trial numbers follow.
TRIALS = [
    (TrialState.COMPLETE, [0.5, 0.25], TRAINED, "k3"),
    (
        TrialState.COMPLETE,
        [0.625, 0.5],
        {
            **TRAINED,
            "arch_hash": "bbbb2222",
            "summary": "mb16-k5",
            "latency_ms": 0.5,
            "clean_accuracy": 0.625,
            "rung_accuracy": {"1": 0.375},
            "rung_seconds": 1.5,
            "naswot": 123.5,
            "checkpoint": "checkpoints/trial_00001_bbbb2222.pt",
        },
        "k5",
    ),
    (
        TrialState.COMPLETE,
        [0.5, 0.25],
        {
            **{k: v for k, v in TRAINED.items() if not k.endswith("seconds") and k != "checkpoint"},
            "duplicate_of": 0,
        },
        "k3",
    ),
    (
        TrialState.PRUNED,
        None,
        {
            "arch_hash": "cccc3333",
            "summary": "mb32-k5",
            "architecture": ARCH,
            "params": 90000,
            "macs": 2000000,
            "latency_ms": 3.0,
            "latency_source": "predicted",
            "latency_low_ms": 2.5,
            "latency_high_ms": 3.5,
            "latency_extrapolated": 0.125,
            "latency_straddles_budget": True,
            "infeasible_reason": "latency 3.000 ms > budget 2 ms",
            "status": "infeasible",
            "wall_seconds": 0.75,
        },
        "k5",
    ),
    (
        TrialState.PRUNED,
        None,
        {
            "arch_hash": "dddd4444",
            "summary": "mb8-k3",
            "latency_ms": 0.125,
            "prescreen_score": 4.5,
            "infeasible_reason": "screened out: naswot 4.5 < 9.5 in its latency band",
            "status": "screened_out",
        },
        "k3",
    ),
    (
        TrialState.PRUNED,
        None,
        {
            "arch_hash": "eeee5555",
            "summary": "mb24-k3",
            "latency_ms": 1.0,
            "rung_accuracy": {"1": 0.25},
            "infeasible_reason": "stopped early: dominated at 1 epoch by 2 trials",
            "status": "stopped_early",
        },
        "k3",
    ),
    (
        TrialState.FAIL,
        None,
        {
            "arch_hash": "ffff6666",
            "summary": "broken",
            "failure_reason": "prepare: RuntimeError: boom",
            "status": "failed",
        },
        "k5",
    ),
    (
        TrialState.FAIL,
        None,
        {
            "arch_hash": "abab7777",
            "summary": "killed",
            "failure_reason": "driver stopped before the trial finished; re-queued",
            "status": "interrupted",
        },
        "k3",
    ),
]

SAVED = Path(__file__).parent / "saved_run"


def build_saved_run(run_dir: Path) -> optuna.Study:
    """A run directory with config.json and a study.db holding TRIALS, plus one queued (requeued) trial."""
    from nas.search import storage_url

    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(
        json.dumps({"search": {"space": "tiny", "profile": "x86-cpu", "latency_budget_ms": 2.0}})
    )
    study = optuna.create_study(
        study_name="nas", storage=storage_url(run_dir), directions=["maximize", "minimize"]
    )
    distributions = {"depth": IntDistribution(1, 4), "kernel": CategoricalDistribution(["k3", "k5"])}
    for state, values, attrs, kernel in TRIALS:
        study.add_trial(
            create_trial(
                state=state,
                values=values,
                params={"depth": 2, "kernel": kernel},
                distributions=distributions,
                user_attrs=attrs,
            )
        )
    study.enqueue_trial({"depth": 2, "kernel": "k3"}, user_attrs={"requeued_from": 7}, skip_if_exists=False)
    return study


@pytest.fixture
def saved_run(tmp_path) -> Path:
    run_dir = tmp_path / "saved-run"
    build_saved_run(run_dir)
    for name in ("trials.csv", "pareto.json"):
        shutil.copy(SAVED / name, run_dir / name)
    return run_dir


def test_writers_reproduce_the_saved_files(saved_run, tmp_path):
    from nas.search import load_run_study
    from nas.search._results import write_pareto_json, write_trials_csv

    study = load_run_study(saved_run)
    write_trials_csv(study, tmp_path / "trials.csv")
    write_pareto_json(study, tmp_path / "pareto.json", {"run": "saved"})
    assert (tmp_path / "pareto.json").read_bytes() == (SAVED / "pareto.json").read_bytes()
    # trials.csv gained the memory, device, energy and early-exit columns since the saved file was written:
    # the rest is byte for byte.
    added = [
        "peak_memory_kb",
        "weights_kb",
        "latency_node_id",
        "latency_host",
        "train_device",
        "latency_predicted_ms",
        "latency_calibrated_on",
        "energy_mj",
        "energy_low_mj",
        "energy_high_mj",
        "energy_extrapolated",
        "latency_whole_ms",
    ]
    saved_columns, saved_rows = _read_csv(SAVED / "trials.csv")
    columns, rows = _read_csv(tmp_path / "trials.csv")
    assert [c for c in columns if c not in added] == saved_columns and set(added) <= set(columns)
    assert [{c: row[c] for c in saved_columns} for row in rows] == saved_rows
    assert all(row[c] == "" for row in rows for c in added)


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_saved_files_read_back_as_records(saved_run):
    from nas.search import load_run_study

    with open(saved_run / "trials.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames
    records = [TrialRecord.from_row(row) for row in rows]
    assert [r.status for r in records] == [
        *[TrialStatus.COMPLETE] * 3,
        TrialStatus.INFEASIBLE,
        TrialStatus.SCREENED_OUT,
        TrialStatus.STOPPED_EARLY,
        TrialStatus.FAILED,
        TrialStatus.INTERRUPTED,
        None,  # queued again after the interruption
    ]
    assert records[1].rung_accuracy == {"1": 0.375} and records[3].latency_straddles_budget is True
    assert records[3].reason == "latency 3.000 ms > budget 2 ms" and records[2].duplicate_of == 0
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(r.to_row() for r in records)
    assert buffer.getvalue().encode() == (saved_run / "trials.csv").read_bytes()

    from_study = {t.number: TrialRecord.from_trial(t) for t in load_run_study(saved_run).trials}
    for record in records:  # what the csv holds agrees with the study
        assert record.to_row() == from_study[record.number].to_row()

    pareto = json.loads((saved_run / "pareto.json").read_text())["pareto"]
    for entry in pareto:
        record = TrialRecord.from_pareto_entry(entry)
        assert record.to_pareto_entry() == entry == from_study[record.number].to_pareto_entry()


def test_report_loads_the_saved_run(saved_run):
    from nas.report._load import load_run, progress_curves

    run = load_run(saved_run)
    assert run.counts() == {
        "complete": 3,
        "infeasible": 1,
        "screened_out": 1,
        "stopped_early": 1,
        "failed": 1,
        "interrupted": 1,
        "running": 1,
    }
    assert [t.number for t in run.pareto] == [0, 1] and run.dominated == []
    assert [t.number for t in run.trained] == [0, 1]
    assert run.budget_ms == 2.0 and run.trials[3].reason == "latency 3.000 ms > budget 2 ms"
    assert progress_curves(run)["hv_by_trial"][-1] == pytest.approx(0.5 * 0.25 + 0.625 * 1.5)


def test_an_unknown_status_is_one_line(saved_run):
    from nas.errors import NasError
    from nas.report._load import load_run
    from nas.search import load_run_study

    load_run_study(saved_run).add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={"status": "exploded"})
    )
    with pytest.raises(NasError, match=r"study.db: unknown trial status 'exploded' \(known: complete"):
        load_run(saved_run)


@pytest.mark.parametrize(
    "chosen, profile_kind, shown",
    [
        ("measured", "predicted", "measured"),
        ("predicted", "measured", "predicted"),
        ("device", "predicted", "measured on the device"),
        ("auto", "predicted", "predicted"),
        (None, None, "measured"),
    ],
)
def test_the_report_names_how_latency_was_obtained(chosen, profile_kind, shown):
    from nas.report._load import RunData

    config = {"search": {"latency": chosen}, "profile": {"latency": profile_kind}}
    run = RunData(Path("run"), config, trials=[], pareto=[], dominated=[], baselines=[])
    assert run.latency_kind == shown
