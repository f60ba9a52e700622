"""The `nas adapt` decision as a terminal summary (rich) and a self-contained HTML page in the style of the
`nas select` page (whose tables and figure it reuses for the comparison after fine-tuning)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from nas._html import SORTABLE_SCRIPT
from nas._io import write_atomic
from nas.validate._render import png_bytes
from nas.validate._select_html import CSS, _esc, _latency_text, _matrix_rows, _pct, _table, selection_figure


def _share(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def _test(test: dict | None) -> str:
    if test is None:
        return "not tested (neither is the slice's best)"
    verdict = "significant" if test["significant"] else "not significant"
    return f"{test['better']} better, p={test['p_value']:.2g} ({verdict})"


def _decision_rows(report: dict) -> list[str]:
    d = report["decision"]
    rows = []
    for r in d["slices"]:
        acc = r["accuracy"]
        cells = [
            _esc(r["slice"]) + (" (thin)" if r["thin"] else ""),
            r["n"],
            f"{_pct(acc[d['base']])}",
            f"{_pct(r['gap'])}",
            f"{_pct(acc[d['adapted']])}",
            _share(r["fine_tune_closed"]),
            _esc(_test(r["fine_tune_test"])),
            _esc(r.get("switch_to", "")),
            _pct(acc[r["switch_to"]]) if "switch_to" in r else "",
            _share(r.get("switch_closed")),
            _esc(_test(r.get("switch_test"))) if "switch_to" in r else "",
        ]
        rows.append(
            ("<tr class=\"thin\">" if r["thin"] else "<tr>")
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    return rows


def adaptation_page(report: dict, png: bytes) -> str:
    d, selection = report["decision"], report["comparison"]
    names = [c["name"] for c in selection["candidates"]]
    training = report["training"]
    candidate_rows = [
        "<tr>"
        + "".join(
            f"<td>{_esc(v)}</td>"
            for v in (c["name"], c["path"], _latency_text(c["latency"]), c["worst_slice"], len(c["best_on"]))
        )
        + "</tr>"
        for c in selection["candidates"]
    ]
    figure = base64.b64encode(png).decode("ascii")
    body = (
        f"<h1>Fine-tune or replace: {_esc(report['model'])}</h1>\n"
        f"<h2>Recommendation</h2>\n<p><strong>{_esc(d['recommendation'])}</strong></p>\n<ul>"
        + "".join(f"<li>{_esc(e)}</li>" for e in d["evidence"])
        + "</ul>\n<h2>Failing slices: gap closed by fine-tuning and by switching</h2>\n"
        "<p class=\"note\">Gap: clean accuracy minus slice accuracy of the model. Closed: the share of the gap "
        "the fine-tuned model, or the best other candidate on that slice, wins back (exact McNemar on the same "
        "images when one of the pair is the slice's most accurate model).</p>\n"
        + _table(
            (
                "slice",
                "n",
                "model %",
                "gap",
                "fine-tuned %",
                "closed",
                "test",
                "best other",
                "its %",
                "closed",
                "test",
            ),
            _decision_rows(report),
        )  # fmt: skip
        + "<h2>Fine-tuning</h2>\n"
        f"<p>{_esc(training['summary']['train_images'])} training images of {_esc(training['data'])} "
        f"(disjoint from the evaluation images), each clean and under "
        f"{_esc(', '.join(training['summary']['conditions']) or 'no corruption')}, plus "
        f"{_esc(training['summary']['hard_examples'])} hard examples (images the model got wrong) once more; "
        f"{_esc(training['epochs'])} epochs from the model's weights; written to {_esc(report['adapted'])}.</p>\n"
        "<h2>Candidates after fine-tuning</h2>\n"
        + _table(("candidate", "model", "latency", "worst slice", "best on (slices)"), candidate_rows)
        + "<h2>Accuracy per slice (%, 95% interval) and ECE</h2>\n"
        + _table(
            ("slice", "n", *[f"{n} acc" for n in names], *[f"{n} ECE" for n in names], "thin"),
            _matrix_rows(selection, names),
        )
        + "<h2>Figure</h2>\n"
        f"<figure><img src=\"data:image/png;base64,{figure}\" alt=\"accuracy per slice and candidate\"></figure>\n"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nas adapt</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}<script>{SORTABLE_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_adaptation_page(report: dict, path: Path) -> Path:
    png = png_bytes(selection_figure(report["comparison"]))
    return write_atomic(path, adaptation_page(report, png).encode("utf-8"))


def print_adaptation(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    d = report["decision"]
    table = Table(title=f"failing slices of {report['model']}: share of the gap to clean accuracy closed")
    for column in ("slice", "gap", "fine-tuned", "closed", "best other", "closed"):
        table.add_column(column, justify="left" if column in ("slice", "best other") else "right")
    for r in d["slices"]:
        table.add_row(
            r["slice"] + (" (thin)" if r["thin"] else ""),
            _pct(r["gap"]),
            _pct(r["accuracy"][d["adapted"]]),
            _share(r["fine_tune_closed"]),
            r.get("switch_to", ""),
            _share(r.get("switch_closed")),
        )
    console.print(table)
    console.print(f"recommendation: {d['recommendation']}", highlight=False)
    for line in d["evidence"]:
        console.print(f"- {line}", highlight=False)
