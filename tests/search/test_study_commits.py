"""The study's fast commits (SQLite write-ahead log while a driver runs): a killed driver loses no commit,
and a stopped one leaves study.db whole and alone, in the rollback journal."""

from __future__ import annotations

import os
import signal
import sqlite3

import optuna

from nas.search import open_study, storage_url
from nas.search._study import _ENGINES, fast_commits, save_trials


def journal_mode(run_dir) -> str:
    connection = sqlite3.connect(run_dir / "study.db")
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def attrs_of_trials(run_dir) -> list[dict]:
    """Read by a connection closed again (one left open would keep the log: `fast_commits`)."""
    storage = optuna.storages.RDBStorage(storage_url(run_dir))
    try:
        return [t.user_attrs for t in optuna.load_study(study_name="nas", storage=storage).trials]
    finally:
        storage.engine.dispose()


def test_commits_go_to_the_log_while_the_driver_runs_and_study_db_is_alone_after(tmp_path):
    study = open_study(tmp_path, "random", 2, 0)
    assert journal_mode(tmp_path) == "delete"
    reader = sqlite3.connect(tmp_path / "study.db")  # optuna-dashboard, say, reading meanwhile
    reader.execute("SELECT count(*) FROM trials").fetchone()
    try:
        with fast_commits(study):
            study.ask().set_user_attr("status", "complete")
            assert journal_mode(tmp_path) == "wal"
            assert (tmp_path / "study.db-wal").is_file()
            with _ENGINES[study].connect() as connection:  # the driver's own connections
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        reader.close()
    assert journal_mode(tmp_path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]
    assert attrs_of_trials(tmp_path) == [{"status": "complete"}]


def test_a_driver_killed_with_commits_in_the_log_loses_none_of_them(tmp_path):
    child = os.fork()
    if child == 0:  # never returns into pytest
        try:
            study = open_study(tmp_path, "random", 2, 0)
            with fast_commits(study):
                for number in range(3):
                    study.ask().set_user_attr("number", number)
                    save_trials(study)  # as the driver does once a candidate is sampled
                study.ask().set_user_attr("number", "unsaved")  # sampled when the kill came: not a candidate
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(99)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "not killed where meant"
    assert (tmp_path / "study.db-wal").is_file()  # the commits were in the log only
    assert attrs_of_trials(tmp_path) == [{"number": n} for n in range(3)] + [{}]
    study = open_study(tmp_path, "random", 2, 0)  # the resume goes on from there
    with fast_commits(study):
        study.ask().set_user_attr("number", 4)  # saved when the driver stops
    assert attrs_of_trials(tmp_path) == [{"number": n} for n in range(3)] + [{}, {"number": 4}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]


def test_a_study_made_elsewhere_is_left_as_it_is():
    study = optuna.create_study(directions=["maximize", "minimize"])  # in memory: nothing to speed up
    with fast_commits(study):
        study.ask().set_user_attr("status", "complete")
    assert study.trials[0].user_attrs == {"status": "complete"}
