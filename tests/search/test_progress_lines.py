"""Progress where stdout is not a terminal (a log file, CI): one line per finished trial and a summary every
minute instead of the live bar; --quiet silences both."""

from __future__ import annotations

import io
import re
import shutil
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nas.records import Attr
from nas.search._progress import progress_display
from tests._cli_run import nas_command

TRIAL_LINE = re.compile(
    r"^trial +(\d+)  (\w+) +accuracy +([\d.]+|-)  latency +([\d.]+|-) ms +([\d.]+|-) s(  \(.*\))?$"
)


def _add(study, status: str, accuracy: float | None, latency: float, seconds: float = 1.5, **attrs) -> None:
    state = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL}.get(status, TrialState.PRUNED)
    study.add_trial(
        create_trial(
            state=state,
            values=[accuracy, latency] if state == TrialState.COMPLETE else None,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs={Attr.STATUS: status, Attr.LATENCY_MS: latency, Attr.WALL_SECONDS: seconds, **attrs},
        )
    )


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def test_one_line_per_finished_trial_and_a_summary_at_the_end(study):
    out = io.StringIO()
    with progress_display(True, study, 4, None, terminal=False, stream=out, summary_every=3600) as progress:
        _add(study, "complete", 0.41, 2.5)
        progress.done = 1
        progress.update(progress)
        _add(study, "infeasible", None, 9.0, **{Attr.INFEASIBLE_REASON: "latency 9.0 ms > budget 5 ms"})
        _add(study, "screened_out", None, 3.0)  # not one of --trials: no line
        _add(study, "complete", 0.52, 3.1)
        progress.done = 3
        progress.update(progress)
        progress.update(progress)  # nothing new: nothing printed twice
    lines = out.getvalue().splitlines()
    trials = [TRIAL_LINE.match(line) for line in lines[:-1]]
    assert all(trials), lines
    assert [(m[1], m[2], m[3]) for m in trials] == [
        ("0", "complete", "0.410"),
        ("1", "infeasible", "-"),
        ("3", "complete", "0.520"),
    ]
    assert (
        trials[1][6] == "  (latency 9.0 ms > budget 5 ms)"
        and trials[0][4] == "2.500"
        and trials[0][5] == "1.5"
    )
    assert lines[-1].startswith("search: 3/4 trials, 2 trained, best accuracy 0.520 at 3.100 ms (trial 3), ")
    assert lines[-1].endswith("elapsed")


def test_a_summary_line_every_interval_while_nothing_finishes(study):
    out = io.StringIO()
    with progress_display(True, study, 10, None, terminal=False, stream=out, summary_every=0.05):
        time.sleep(0.3)
    summaries = out.getvalue().splitlines()
    assert len(summaries) >= 3
    assert all(line.startswith("search: 0/10 trials, 0 trained, none trained yet, ") for line in summaries)


def test_a_resumed_search_does_not_repeat_the_trials_it_had(study):
    _add(study, "complete", 0.3, 1.0)
    out = io.StringIO()
    with progress_display(True, study, 2, None, terminal=False, stream=out, summary_every=3600) as progress:
        _add(study, "failed", None, 1.0, **{Attr.FAILURE_REASON: "train: RuntimeError: boom\nmore"})
        progress.done = 2
        progress.update(progress)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trial    1  failed") and lines[0].endswith("(train: RuntimeError: boom)")
    assert lines[1].startswith("search: 2/2 trials, 1 trained, best accuracy 0.300")


def test_quiet_prints_nothing_and_a_terminal_gets_the_bar_not_lines(study, capsys):
    out = io.StringIO()
    with progress_display(False, study, 2, None, terminal=False, stream=out, summary_every=0.01) as progress:
        _add(study, "complete", 0.3, 1.0)
        progress.update(progress)
        time.sleep(0.05)
    with progress_display(True, study, 2, None, terminal=True, stream=out) as progress:
        progress.update(progress)
    assert out.getvalue() == ""


def test_a_search_whose_stdout_is_a_pipe_prints_its_trials_as_lines(cli_run, tmp_path):
    lines = cli_run.stdout.splitlines()  # the session's tiny search, its stdout a pipe (conftest)
    trials = [m for m in map(TRIAL_LINE.match, lines) if m]
    assert len(trials) == 6 and {m[2] for m in trials} <= {"complete", "infeasible", "failed"}
    assert any(line.startswith("search: 6/6 trials, ") for line in lines)
    assert "Pareto front" in cli_run.stdout and "\r" not in cli_run.stdout  # no bar redrawn into the pipe

    run_dir = tmp_path / "run"  # a copy, resumed quietly: nothing left to do, nothing printed about trials
    shutil.copytree(cli_run.run_dir, run_dir, ignore=shutil.ignore_patterns("export"))
    quiet = nas_command("search", "--quiet", *cli_run.args, "--out", run_dir)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not any(
        TRIAL_LINE.match(line) or line.startswith("search: ") for line in quiet.stdout.splitlines()
    )
