"""nas validate on a model with early exits: each slice reports where its images leave the cascade."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from nas.runtime import ExitCascade
from nas.validate import evaluate_slices, preprocess
from tests.exits.cascade_fixture import make_cascade_folder


def test_every_slice_reports_its_exit_rates(tmp_path, tiny_dataset_file):
    folder, *_ = make_cascade_folder(tmp_path)
    report = evaluate_slices(
        folder / "model.onnx", str(tiny_dataset_file), families=("contrast",), severities=(5,), split="all"
    )
    data = report.to_dict()
    assert data["exits"]["stages"] == ["a", "b"] and len(data["exits"]["thresholds"]) == 2
    clean, contrast = data["slices"]
    for s in (clean, contrast):
        assert sum(s["exits"]["rates"]) == pytest.approx(1.0)
        assert s["exits"]["expected_latency_ms"] == pytest.approx(
            np.dot(s["exits"]["rates"], [0.1, 0.2, 0.4])
        )
    images = np.load(tiny_dataset_file)["x"]
    out = ExitCascade(folder).run(preprocess(images, report_preprocessing(folder)))
    assert clean["exits"]["rates"] == [float(np.mean(out.exit_taken == k)) for k in range(3)]
    console = Console(file=io.StringIO(), width=300)
    console.print(report.table())
    assert "exits " in console.file.getvalue()  # the table's note column shows them


def report_preprocessing(folder):
    from nas.export import read_preprocessing

    return read_preprocessing(folder / "model.onnx")
