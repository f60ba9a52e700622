"""The early-exit section of a report: for each Pareto-optimal network with exits, where its images leave,
at which thresholds, what that saves against the whole network and what accuracy it costs.

A run without exits gets no section (the empty string). The numbers are those the search recorded after
calibrating each candidate's exits on the validation split (`nas.search._exits`): the shares are that
split's, so the expected latency holds for images like it.
"""

from __future__ import annotations

from typing import Any

from nas.records import TrialRecord, TrialStatus
from nas.report import _html as H
from nas.report._load import RunData

EXITS = "exits"  # the trial attribute nas.search._exits records (with TrialRecord.latency_whole_ms)


def exit_rows(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    """One plain row per trial with a calibrated cascade: its exit stages, thresholds, shares, latencies and
    accuracies (fractions; the drop in points)."""
    rows = []
    for t in trials:
        exits = t.extra.get(EXITS)
        if not isinstance(exits, dict) or "shares" not in exits:
            continue
        expected = exits.get("expected_latency") or {}
        whole = t.latency_whole_ms
        rows.append(
            {
                "trial": t.number,
                "stages": [*((t.architecture or {}).get("exits") or []), "final"],
                "thresholds": list(exits.get("thresholds", [])),
                "shares": list(exits["shares"]),
                "expected_ms": t.latency_ms,
                "low_ms": expected.get("low_ms"),
                "high_ms": expected.get("high_ms"),
                "whole_ms": whole,
                "saving": 1 - t.latency_ms / whole if whole else None,
                "cascade_accuracy": exits.get("cascade_accuracy"),
                "final_accuracy": exits.get("final_accuracy"),
                "drop_points": exits.get("drop_points"),
                "max_drop_points": exits.get("max_drop_points"),
            }
        )
    return rows


def trained_over_budget(run: RunData) -> list[TrialRecord]:
    """Candidates with exits trained, then infeasible on their expected latency (duplicates left out)."""
    return [
        t
        for t in run.trials
        if t.status is TrialStatus.INFEASIBLE
        and t.duplicate_of is None
        and isinstance(t.extra.get(EXITS), dict)
    ]


def exits_section(run: RunData) -> str:
    """The section's HTML, or "" when no Pareto-optimal network has exits."""
    rows = exit_rows(run.pareto)
    if not rows:
        return ""
    headers = [
        "trial",
        "exits",
        "thresholds",
        "exit rates",
        "expected latency (ms)",
        "whole network (ms)",
        "saved",
        "cascade accuracy",
        "final exit accuracy",
        "drop (points, bound)",
    ]
    table = [
        [
            (str(r["trial"]), r["trial"]),
            " / ".join(r["stages"]),
            " / ".join(_threshold(v) for v in r["thresholds"]),
            " / ".join(f"{100 * s:.0f}%" for s in r["shares"]),
            (_interval(r), r["expected_ms"]),
            (H.fmt_ms(r["whole_ms"]), r["whole_ms"] or 0),
            ("" if r["saving"] is None else f"{100 * r['saving']:.0f}%", r["saving"] or 0),
            (_accuracy(r["cascade_accuracy"]), r["cascade_accuracy"] or 0),
            (_accuracy(r["final_accuracy"]), r["final_accuracy"] or 0),
            (H.esc(_drop(r)), r["drop_points"] or 0),
        ]
        for r in rows
    ]
    over = trained_over_budget(run)
    note = (
        "An image leaves at the first exit whose confidence (largest softmax probability) reaches that exit's "
        "threshold (2 closes an exit); the thresholds were calibrated on the validation split so the cascade "
        "loses at most the bound in accuracy against the final exit alone. Exit rates: the share of validation "
        "images leaving at each exit. Expected latency: the sum over exits of that share times the latency up "
        "to the exit (each segment measured or predicted on the profile), the latency this run's front and "
        "budget use; whole network: every image to the final exit. Accuracies are the cascade's and the final "
        "exit's on the validation split (proxy training)."
    )
    if over:
        note += (
            f" {len(over)} trained candidate(s) with exits were infeasible on their expected latency "
            f"(trial {', '.join(str(t.number) for t in over)})."
        )
    return f"<h2>Early exits</h2>\n<p class=\"note\">{H.esc(note)}</p>\n" + H.table(
        headers, table, sortable=True, numeric=(0, 4, 5, 6, 7, 8, 9), css_id="exits-table"
    )


def _threshold(value: float) -> str:
    return "closed" if value > 1 else f"{value:.3f}"


def _interval(row: dict[str, Any]) -> str:
    text = H.fmt_ms(row["expected_ms"])
    if row["low_ms"] is not None:
        text += f" ({H.fmt_ms(row['low_ms'], 3)}-{H.fmt_ms(row['high_ms'], 3)})"
    return text


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _drop(row: dict[str, Any]) -> str:
    if row["drop_points"] is None:
        return ""
    bound = row["max_drop_points"]
    return f"{row['drop_points']:.2f}" + ("" if bound is None else f" (<= {bound:g})")
