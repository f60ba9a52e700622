"""SIGKILL the driver mid-search, run the same command again: nothing finished is lost, the rest re-runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from optuna.trial import TrialState

from nas.search import load_run_study

TRIALS = 6  # the kill comes after 2 finished: 4 or fewer left to resume


def finished_trials(run_dir):
    if not (run_dir / "study.db").exists():
        return []
    try:
        study = load_run_study(run_dir)
    except (KeyError, Exception):  # the study may not be created yet
        return []
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def test_sigkill_then_same_command_resumes(tmp_path, tiny_space_file, tiny_dataset_file):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(tiny_space_file),
        "--dataset",
        str(tiny_dataset_file),
        "--trials",
        str(TRIALS),
        "--population",
        "2",
        "--workers",
        "2",
        "--epochs",
        "2",
        "--train-subset",
        "64",
        "--prescreen",
        "2",
        "--out",
        str(run_dir),
        "--quiet",
    ]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 240
    while len(finished_trials(run_dir)) < 2:
        assert driver.poll() is None, f"driver ended early: {driver.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "no trial finished in time"
        time.sleep(0.2)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = {t.number: (t.values, t.user_attrs["arch_hash"]) for t in finished_trials(run_dir)}
    assert 2 <= len(before) < TRIALS

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    study = load_run_study(run_dir)
    trials = study.get_trials(deepcopy=False)
    after = {
        t.number: (t.values, t.user_attrs["arch_hash"]) for t in trials if t.state == TrialState.COMPLETE
    }
    for number, value in before.items():
        assert after[number] == value, "a trial completed before the kill changed or vanished"
    counted = [t for t in trials if t.user_attrs.get("status") in ("complete", "infeasible", "failed")]
    assert len(counted) == TRIALS
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.user_attrs.get("status") == "interrupted"]
    requeued = [t for t in trials if "requeued_from" in t.user_attrs]
    sampled = [t for t in interrupted if "arch_hash" in t.user_attrs]  # killed after its params were drawn
    assert sorted(t.user_attrs["requeued_from"] for t in requeued) == sorted(t.number for t in sampled)
    for t in requeued:
        original = next(o for o in trials if o.number == t.user_attrs["requeued_from"])
        assert t.params == original.params
    assert (run_dir / "trials.csv").read_text().count("\n") == len(trials) + 1
