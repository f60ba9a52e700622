"""The real `nas` command end to end on a tiny space and dataset, and its handling of user mistakes."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import pytest

from nas.cli import main
from tests._cli_run import nas_command as nas


def test_search_then_export_gives_onnx_models_that_run(cli_run, tiny_dataset_file):
    run_dir = cli_run.run_dir  # `nas search` then `nas export`, run once for the session (conftest)
    assert "Pareto front" in cli_run.stdout
    with open(run_dir / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and {r["status"] for r in table} <= {"complete", "infeasible", "failed"}
    assert {
        "accuracy",
        "latency_ms",
        "latency_spread",
        "params",
        "macs",
        "state",
        "failure_reason",
        "wall_seconds",
    } <= set(table[0])
    pareto = json.loads((run_dir / "pareto.json").read_text())["pareto"]

    dirs = sorted((run_dir / "export").iterdir())
    assert len(dirs) == len(pareto) >= 1
    x, _ = np.load(tiny_dataset_file)["x"], None
    for directory, record in zip(dirs, pareto):
        spec = json.loads((directory / "spec.json").read_text())
        metrics = json.loads((directory / "metrics.json").read_text())
        assert spec["arch_hash"] == record["arch_hash"] and metrics["proxy_accuracy"] == record["accuracy"]
        pre = spec["preprocessing"]
        assert pre["layout"] == "NCHW" and pre["channel_order"] == "RGB" and len(pre["mean"]) == 3
        session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        assert json.loads(meta["nas.preprocessing"]) == pre
        # Preprocess real images exactly as the metadata says, at two batch sizes (dynamic batch).
        for batch in (1, 5):
            images = x[:batch].astype(np.float32) / 255
            inp = (
                ((images - np.array(pre["mean"])) / np.array(pre["std"]))
                .transpose(0, 3, 1, 2)
                .astype(np.float32)
            )
            logits = session.run(None, {pre["input_name"]: inp})[0]
            assert logits.shape == (batch, len(pre["classes"]))


@pytest.mark.parametrize(
    "args,message",
    [
        (["search", "--space", "nope"], "unknown search space 'nope'"),
        (["search", "--profile", "nope"], "unknown hardware profile 'nope'"),
        (["search", "--dataset", "/no/such/folder"], "dataset not found: /no/such/folder"),
        (["search", "--trials", "0"], "trials: must be an integer >= 1"),
        (["search", "--latency-budget-ms", "-1"], "latency_budget_ms"),
        (["search", "--rungs", "2", "--stop-margin", "1.5"], "stop_margin"),
        (["export", "/no/such/run"], "not a nas run directory"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and message in err and err.count("\n") == 1


def test_bad_space_file_names_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstem: {channels: 16}\nstages:\n  - {stride: 1, depth: 1, width: 12}\n")
    assert main(["search", "--space", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4: stages[0].width[0]" in err or f"{bad}:4: stages[0].width" in err
    assert "multiples of 8" in err


def test_rerun_into_a_different_search_is_refused_and_nothing_is_touched(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"search": {"space": "fbnet"}}))
    before = (run_dir / "config.json").read_text()
    assert main(["search", "--out", str(run_dir)]) == 2
    assert "holds a search with space='fbnet'" in capsys.readouterr().err
    assert (run_dir / "config.json").read_text() == before and len(list(run_dir.iterdir())) == 1


def test_argparse_mistakes_exit_2():
    done = nas("search", "--trials", "many")
    assert done.returncode == 2 and "invalid int value" in done.stderr


def test_spaces_and_profiles_list_the_builtins():
    spaces = nas("spaces", "--json")
    assert {s["name"] for s in json.loads(spaces.stdout)} >= {"mobilenet", "fbnet"}
    profiles = nas("profiles", "--json")
    assert "x86-cpu" in {p["name"] for p in json.loads(profiles.stdout)}
    assert "search" in nas("--help").stdout and "--latency-budget-ms" in nas("search", "--help").stdout
