"""The report's early-exit section: per Pareto-optimal network with exits, its exit rates, thresholds,
expected and whole-network latency and accuracy drop; nothing for a run without exits."""

from __future__ import annotations

import re
import shutil
from html import unescape

import pytest

from nas.report import load_run, write_report
from nas.report._exits import exits_section

CALIBRATION = {
    "thresholds": [0.8],
    "shares": [0.25, 0.75],
    "exit_accuracy": [0.6, 0.75],
    "cascade_accuracy": 0.7475,
    "final_accuracy": 0.75,
    "drop_points": 0.25,
    "max_drop_points": 0.5,
    "n": 80,
}


@pytest.fixture(scope="module")
def exits_run(tmp_path_factory, tiny_run):
    """The real run plus a trained network with exits after stage a (its latency the expected one, half its
    whole network's), fastest of all so it is on the front, and one with exits found over the budget after
    training; recorded as the search records them (nas.search._exits)."""
    import optuna
    from optuna.trial import TrialState

    from nas.search import load_run_study

    run_dir = tmp_path_factory.mktemp("report") / "exits-run"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("report", "export"))
    study = load_run_study(run_dir)
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    fastest = min(trained, key=lambda t: t.values[1])
    whole = fastest.values[1]
    expected = whole / 2
    attrs = {
        **fastest.user_attrs,
        "arch_hash": "e0e0e0e0",
        "architecture": {**fastest.user_attrs["architecture"], "exits": ["a"]},
        "latency_ms": expected,
        "latency_whole_ms": whole,
        "exits": {
            **CALIBRATION,
            "expected_latency": {
                "expected_ms": expected,
                "low_ms": expected * 0.9,
                "high_ms": expected * 1.1,
            },
        },
    }
    study.add_trial(
        optuna.trial.create_trial(state=TrialState.COMPLETE, values=[0.7475, expected], user_attrs=attrs)
    )
    over = {
        **attrs,
        "arch_hash": "f0f0f0f0",
        "status": "infeasible",
        "infeasible_reason": "expected latency (whole network 1.000 ms) 0.900 ms > budget 0.5 ms",
    }
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs=over))
    return run_dir, len(study.trials) - 2, expected, whole


def _exit_rows(html: str) -> list[list[str]]:
    table = re.search(r'<table id="exits-table".*?</table>', html, re.S)
    assert table, "no early-exit table"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0).partition("<tbody>")[2], re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


def test_the_report_shows_each_front_networks_exits(exits_run, tmp_path):
    run_dir, number, expected, whole = exits_run
    html = write_report(run_dir, tmp_path, profiles=[]).read_text()
    assert "<h2>Early exits</h2>" in html
    (row,) = _exit_rows(html)  # only the network with exits; the others of the front have none
    assert row[0] == str(number)
    assert row[1] == "a / final" and row[2] == "0.800" and row[3] == "25% / 75%"
    assert row[4].startswith(f"{expected:.4g} (") and row[5] == f"{whole:.4g}" and row[6] == "50%"
    assert row[7:] == ["0.7475", "0.7500", "0.25 (<= 0.5)"]
    assert (
        f"1 trained candidate(s) with exits were infeasible on their expected latency (trial {number + 1})"
        in html
    )
    assert (
        "Except 1 with early exits: trained, then infeasible on their expected latency" in html
    )  # the figure


def test_a_run_without_exits_gets_no_exit_section(tiny_run, tmp_path):
    assert exits_section(load_run(tiny_run)) == ""
    html = write_report(tiny_run, tmp_path, profiles=[]).read_text()
    assert "Early exits" not in html and "exits-table" not in html
