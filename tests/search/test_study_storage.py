"""RunStorage: the driver's trials kept in memory as it writes them, equal to what SQLite stores; reads that
do not re-read the trials in flight; a trial's attributes written in one commit."""

from __future__ import annotations

import sqlalchemy
from optuna.trial import TrialState

from nas.records import Attr
from nas.search import load_run_study, open_study
from nas.search._study import _ENGINES, RunStorage, fast_commits, recover_interrupted, save_trials


def _whole(trial) -> tuple:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.params,
        trial.distributions,
        trial.user_attrs,
        trial.system_attrs,
        trial.datetime_start,
        trial.datetime_complete,
    )


def _sampled(study, index: int):
    trial = study.ask()
    trial.suggest_categorical("primitive", ["mbconv", "dwsep"])
    trial.suggest_int("depth", 1, 4)
    trial.set_user_attr(Attr.ARCH_HASH, f"hash{index}")
    trial.set_user_attr(Attr.ARCHITECTURE, {"index": index, "widths": (16, 24)})  # a tuple comes back a list
    save_trials(study)
    return trial


def test_the_trials_in_memory_are_the_stored_ones(tmp_path):
    study = open_study(tmp_path, "random", 2, 0)
    assert isinstance(study._storage, RunStorage)
    with fast_commits(study):
        trials = [_sampled(study, i) for i in range(5)]
        trials[0].set_user_attr("status", "complete")
        study.tell(trials[0], [0.5, 1.25])
        trials[1].set_user_attr("status", "infeasible")
        study.tell(trials[1], state=TrialState.PRUNED)
        study.tell(trials[2], state=TrialState.FAIL)
        study.enqueue_trial({"primitive": "dwsep", "depth": 2}, user_attrs={"requeued_from": 2})
        popped = _sampled(study, 5)  # the queued one, its parameters fixed
        assert popped.params == {"primitive": "dwsep", "depth": 2}
        popped.set_user_attr("status", "unsaved until the state changes")
        in_memory = [_whole(t) for t in study.get_trials()]
    assert in_memory == [_whole(t) for t in load_run_study(tmp_path).get_trials()]
    assert [t.state for t in load_run_study(tmp_path).get_trials()] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.RUNNING,
        TrialState.RUNNING,
    ]


def test_a_resumed_study_recovers_the_trials_in_flight_from_memory_and_disk_alike(tmp_path):
    study = open_study(tmp_path, "random", 2, 0)
    with fast_commits(study):
        _sampled(study, 0)
        study.ask()  # killed while sampling: no architecture
    study = open_study(tmp_path, "random", 2, 0)
    with fast_commits(study):
        assert recover_interrupted(study) == 2
        requeued = _sampled(study, 0)  # the same parameters again
        assert requeued.user_attrs[Attr.REQUEUED_FROM] == 0
        assert requeued.params == study.trials[0].params
        in_memory = [_whole(t) for t in study.get_trials()]
    assert in_memory == [_whole(t) for t in load_run_study(tmp_path).get_trials()]


def test_reading_the_study_does_not_reread_the_trials_in_flight(tmp_path, monkeypatch):
    study = open_study(tmp_path, "random", 2, 0)
    backend = study._storage._backend
    read_back = []
    real = backend._get_trials

    def counting(*args, **kwargs):
        trials = real(*args, **kwargs)
        read_back.extend(t.number for t in trials)
        return trials

    with fast_commits(study):
        study.get_trials()  # the study read whole, once
        monkeypatch.setattr(backend, "_get_trials", counting)
        for index in range(8):  # a batch asked: each ask looks for queued trials
            _sampled(study, index)
            study.get_trials(deepcopy=False)
        assert len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) == 8
    assert read_back == []  # every trial in flight was known here: none read back from SQLite


def test_a_told_trial_is_three_commits_whatever_its_attributes(tmp_path):
    study = open_study(tmp_path, "random", 2, 0)
    with fast_commits(study):
        trial = _sampled(study, 0)
        commits = []
        sqlalchemy.event.listen(_ENGINES[study], "commit", lambda connection: commits.append(1))
        for index in range(20):
            trial.set_user_attr(f"attr{index}", index)
        study.tell(trial, [0.5, 1.0])
        # the attributes, then the state and values, and the read of the told trial (one each per attribute
        # in Optuna's own storage)
        assert len(commits) == 3
    assert load_run_study(tmp_path).trials[0].user_attrs["attr19"] == 19
