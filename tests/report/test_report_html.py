"""write_report on real run directories: figures, embedding, the Pareto table, odd runs, and user mistakes."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas.errors import NasError
from nas.report import write_comparison, write_report

FIGURES = ("pareto.png", "progress.png", "allocation.png", "latency_breakdown.png")


class Page(HTMLParser):
    """The bits of a page the tests look at: images, links, and the rows of the Pareto table."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.rows = [], [], []
        self._table = None
        self._depth = 0
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self.links.append(attrs.get("href", ""))
        elif tag == "table":
            self._depth += 1
            if attrs.get("id") == "pareto-table":
                self._table = self._depth
        elif tag == "tr" and self._table == self._depth:
            self.rows.append([])
        elif tag == "td" and self._table == self._depth:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            if self._table == self._depth:
                self._table = None
            self._depth -= 1


def assert_self_contained(html: str, folder: Path, figures) -> Page:
    page = Page(html)
    assert not re.search(r"https?://", html), "the page must not reference any http(s) URL"
    assert not re.search(r"<(script|link)[^>]+(src|href)=", html), "no external script or stylesheet"
    embedded = {img["data-file"]: img["src"] for img in page.images}
    assert sorted(embedded) == sorted(figures)
    for name in figures:
        png = (folder / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        assert embedded[name] == "data:image/png;base64," + base64.b64encode(png).decode()
    return page


def test_report_from_a_real_run(tiny_run, tmp_path):
    path = write_report(tiny_run, tmp_path / "out")
    assert path == tmp_path / "out" / "index.html"
    html = path.read_text()
    page = assert_self_contained(html, path.parent, FIGURES)

    pareto = json.loads((tiny_run / "pareto.json").read_text())["pareto"]
    table = page.rows[1:] if page.rows and not page.rows[0] else page.rows
    assert [int(row[0]) for row in table] == [p["trial"] for p in pareto]
    assert [float(row[1]) for row in table] == pytest.approx([p["accuracy"] for p in pareto], abs=1e-4)
    # one "on PROFILE (ms)" column per fleet latency the run recorded (an auto budget checks the model's
    # prediction on x86-cpu beside the measurement) comes before params, MACs and summary
    fleet = sorted(k for k in pareto[0] if k.startswith("latency_ms@"))
    for row, record in zip(table, pareto):
        assert row[5 + len(fleet)] == record["summary"]
    onnx_links = [link for link in page.links if link.endswith("model.onnx")]
    assert len(onnx_links) == len(pareto)
    for link in onnx_links:
        assert not link.startswith("/") and (path.parent / link).resolve().is_file()
    assert "class=\"sortable\"" in html and "addEventListener(\"click\"" in html
    for text in ("tiny", "x86-cpu", "6 complete", "fvcore", "element-wise"):
        assert text in html
    assert "x86-cpu</td><td>measured" in html  # the breakdown table's measured row

    # Without `out`, the report goes to RUN_DIR/report.
    default = write_report(tiny_run, profiles=[])
    assert default == tiny_run / "report" / "index.html" and all(
        (default.parent / f).is_file() for f in FIGURES[:3]
    )


def test_model_card_is_linked_when_present(tiny_run, tmp_path):
    # `nas export` writes a card per model; keep only the first model's, so the others show none.
    cards = {path: path.read_bytes() for path in (tiny_run / "export").glob("*/model_card.md")}
    card = sorted((tiny_run / "export").iterdir())[0] / "model_card.md"
    try:
        for path in cards:
            path.unlink()
        card.write_text("# card\n")
        html = write_report(tiny_run, tmp_path, profiles=[]).read_text()
    finally:
        card.unlink(missing_ok=True)
        for path, content in cards.items():
            path.write_bytes(content)
    links = [link for link in Page(html).links if link.endswith("model_card.md")]
    assert len(links) == 1 and (tmp_path / links[0]).resolve() == card.resolve()


class Predictor:
    def predict(self, onnx_bytes: bytes) -> float:
        return len(onnx_bytes) / 1e5  # any deterministic function of the graph


def test_run_with_infeasible_failed_and_interrupted_trials(mixed_run, tmp_path):
    predicted = SimpleNamespace(name="fake-pi", latency="predicted", latency_model=Predictor())
    unmodelled = SimpleNamespace(name="fake-jetson", latency="predicted")
    path = write_report(mixed_run, tmp_path, profiles=["x86-cpu", predicted, unmodelled])
    html = path.read_text()
    assert_self_contained(html, tmp_path, FIGURES)
    assert "6 complete, 2 infeasible, 2 failed, 1 interrupted" in html
    assert "latency budget" in html and "gold stars" in html.lower()
    assert "Not drawn (no latency measured): 1 infeasible, 1 failed, 1 interrupted." in html
    assert "fake-pi</td><td>predicted" in html and "x86-cpu</td><td>measured" in html
    assert "fake-jetson: latency is predicted and the profile has no latency model" in html
    assert "nas export RUN_DIR" in html  # no export folder in this copy: no links, a hint instead


def test_chosen_network_and_its_mistakes(tiny_run, mixed_run, tmp_path):
    html = write_report(tiny_run, tmp_path, network=0, profiles=[]).read_text()
    assert "Latency breakdown of trial #0" in html and "No profile could measure" in html
    with pytest.raises(NasError, match="unknown hardware profile 'nope'"):
        write_report(tiny_run, tmp_path, profiles=["nope"])
    with pytest.raises(NasError, match="no trial number 99"):
        write_report(tiny_run, tmp_path, network=99)
    with pytest.raises(NasError, match="trial 7 is infeasible, not a trained network"):
        write_report(mixed_run, tmp_path, network=7)


def test_user_mistakes_are_one_line_errors(tmp_path, no_trained_run):
    with pytest.raises(NasError, match="no such run directory") as missing:
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasError, match="not a nas run directory \\(missing config.json\\)"):
        write_report(tmp_path / "empty")
    with pytest.raises(
        NasError, match="no completed \\(trained\\) trial to report yet \\(1 infeasible, 1 failed\\)"
    ) as none:
        write_report(no_trained_run)
    for error in (missing.value, none.value):
        assert "\n" not in str(error)
    (tmp_path / "bad").mkdir()
    with pytest.raises(NasError, match="compare: give at least two run directories"):
        write_comparison([], tmp_path / "bad")


def test_bad_baselines_file_names_the_entry(mixed_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(mixed_run, run_dir)
    (run_dir / "baselines.json").write_text('[{"name": "x", "accuracy": 80, "latency_ms": 1}]')
    with pytest.raises(NasError, match="baselines.json: entry 0: expected"):
        write_report(run_dir, tmp_path / "out", profiles=[])


def test_a_predicted_profile_shows_its_interval_and_what_is_extrapolated(tiny_run, tmp_path):
    from nas.latency import load_profile
    from nas.report._breakdown import latency_breakdown
    from nas.report._load import load_run

    breakdown = latency_breakdown(load_run(tiny_run), profiles=[load_profile("raspberry-pi-4")])
    notes = " ".join(breakdown.profiles[0].notes)
    assert "whole network: 90% interval" in notes
    assert breakdown.profiles[0].whole_ms > 0
    html = write_report(tiny_run, tmp_path, profiles=["raspberry-pi-4"]).read_text()
    assert "whole network: 90% interval" in html
