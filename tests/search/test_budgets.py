"""--budget PROFILE=MS: a fleet of devices in one search, each a latency constraint (predicted, or measured on
its device node)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from types import SimpleNamespace

import optuna
import pytest

from nas.builder import build_model
from nas.cli import _print_pareto
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.latency import ArchitectureFeaturizer, load_profile
from nas.onnx_io import export_onnx
from nas.records import TrialRecord
from nas.report import load_run
from nas.report._report import _table_section
from nas.search import SearchConfig, search
from nas.search._constraints import DeviceBudget, latency_violation, measure_fleet, with_device_nodes
from nas.space import load_space
from tests._serial_executor import SerialExecutor

FAST = ProxyTrainer(TrainingRecipe(epochs=1, train_subset=32, batch_size=32))
DEVICE = "jetson-tx2"
# The tiny space's candidates are predicted at 1.2 to 2.6 ms on the jetson-tx2: this budget splits them.
SPLIT_MS = 1.7


def _search(tmp_path, space, data, profile, **settings):
    defaults = dict(
        space=str(space),
        dataset=str(data),
        profile=str(profile),
        latency="predicted",
        allow_extrapolation=True,  # the shipped device profiles never measured some of the tiny space's kinds
        trials=6,
        population=2,
        epochs=1,
        train_subset=32,
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=1,
        prescreen_score="naswot",
    )
    return search(executor=SerialExecutor(), trainer=FAST, **{**defaults, **settings})


def _rows(run_dir):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("latency", ["predicted", "measured"])  # the steady driver, the batch driver
def test_a_fleet_budget_rejects_before_training_and_is_recorded(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, capsys, latency
):
    result = _search(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        x86_model_profile,
        budgets={DEVICE: SPLIT_MS},
        latency=latency,
        latency_budget_ms=None,  # the fleet's budget alone: the default one would reject candidates too
    )
    rows = _rows(result.run_dir)
    column = f"latency_ms@{DEVICE}"
    assert all(r[column] for r in rows), "every candidate records its latency on the fleet's device"
    assert {r[f"latency_source@{DEVICE}"] for r in rows} == {"predicted"}
    assert all(
        float(r[f"latency_low_ms@{DEVICE}"]) <= float(r[column]) <= float(r[f"latency_high_ms@{DEVICE}"])
        for r in rows
    )
    trained = [r for r in rows if r["status"] == "complete"]
    rejected = [r for r in rows if r["status"] == "infeasible"]
    assert trained and rejected, "the budget must split the candidates, or the test proves nothing"
    assert all(float(r[column]) <= SPLIT_MS for r in trained)
    for r in rejected:
        assert float(r[column]) > SPLIT_MS and not r["train_seconds"]
        assert (
            f"latency on {DEVICE}" in r["failure_reason"]
            and "(predicted) > budget 1.7 ms" in r["failure_reason"]
        )
    assert result.pareto and all(p[column] <= SPLIT_MS for p in result.pareto)
    saved = json.loads((result.run_dir / "config.json").read_text())["search"]
    assert saved["budgets"] == [f"{DEVICE}=1.7"] and saved["latency_budget_ms"] is None
    assert TrialRecord.from_row(rows[0]).fleet_latencies[column] == float(rows[0][column])

    run = load_run(result.run_dir)  # the report's Pareto table shows the device's column
    assert run.pareto[0].fleet_latencies[column] == result.pareto[0][column]
    table = _table_section(run, tmp_path)
    assert f"on {DEVICE} (ms)" in table
    _print_pareto(result)  # the table `nas search` ends with
    assert f"ms on {DEVICE}" in capsys.readouterr().out

    with pytest.raises(NasError, match="holds a search with budgets="):  # part of what the run is
        _search(
            tmp_path,
            tiny_space_file,
            tiny_dataset_file,
            x86_model_profile,
            budgets={DEVICE: 2.0},
            latency=latency,
            latency_budget_ms=None,
        )


def test_a_budget_on_the_searchs_own_profile_is_its_latency_budget(
    tmp_path, tiny_space_file, tiny_dataset_file
):
    result = _search(
        tmp_path, tiny_space_file, tiny_dataset_file, DEVICE, trials=2, budgets=[f"{DEVICE}=1.7"]
    )
    saved = json.loads((result.run_dir / "config.json").read_text())["search"]
    assert saved["latency_budget_ms"] == 1.7 and saved["budgets"] == []
    assert not any(k.startswith("latency_ms@") for k in _rows(result.run_dir)[0])
    with pytest.raises(NasError, match="give one of --budget jetson-tx2=MS and --latency-budget-ms"):
        _search(
            tmp_path / "both",
            tiny_space_file,
            tiny_dataset_file,
            DEVICE,
            latency_budget_ms=2.0,
            budgets={DEVICE: 1.7},
        )
    assert not (tmp_path / "both").exists()


@pytest.mark.parametrize(
    "budgets, message",
    [
        ({"no-such-device": 3.0}, "budgets: no-such-device: "),
        (
            {"raspberry-pi-4": 40.0},
            "raspberry-pi-4 has never measured",
        ),  # the coverage rule, as for --profile
    ],
)
def test_a_budget_the_fleet_cannot_predict_is_refused_before_anything_is_written(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, budgets, message
):
    with pytest.raises(NasError, match=message):
        _search(
            tmp_path,
            tiny_space_file,
            tiny_dataset_file,
            x86_model_profile,
            budgets=budgets,
            allow_extrapolation=False,
        )
    assert not (tmp_path / "run").exists()


def test_budgets_have_one_spelling_whatever_form_they_are_given_in():
    as_mapping = SearchConfig(budgets={"raspberry-pi-4": 40, "jetson-tx2": 8})
    as_flags = SearchConfig(budgets=("jetson-tx2=8", "raspberry-pi-4=40.0"))
    assert as_mapping.budgets == as_flags.budgets == ("jetson-tx2=8.0", "raspberry-pi-4=40.0")
    assert as_mapping.identity()["budgets"] == ["jetson-tx2=8.0", "raspberry-pi-4=40.0"]
    assert as_flags.budget_by_profile == {"jetson-tx2": 8.0, "raspberry-pi-4": 40.0}
    assert SearchConfig().identity()["budgets"] == []  # a run from before --budget resumes as it was


@pytest.mark.parametrize(
    "budgets, message",
    [
        (("jetson-tx2",), "expected PROFILE=MS"),
        (("jetson-tx2=fast",), "MS must be a number of milliseconds"),
        (("jetson-tx2=0",), "jetson-tx2: must be a positive finite number of milliseconds"),
        ({"jetson-tx2": float("nan")}, "must be a positive finite number"),
        ({"jetson-tx2": True}, "must be a positive finite number"),
        (("jetson-tx2=8", "jetson-tx2=9"), "'jetson-tx2' is given more than one budget"),
        ("jetson-tx2=8", "a list of PROFILE=MS or a mapping"),
    ],
)
def test_malformed_budgets_are_refused(budgets, message):
    with pytest.raises(NasError, match=message):
        SearchConfig(budgets=budgets)


class _Ref:
    def __init__(self, value):
        self.value = value


class InProcessRay:
    """The Ray calls a DeviceMeasurer makes, run in this process, with one live node advertising `resource`."""

    def __init__(self, resource):
        self.resource = resource

    def remote(self, **options):
        return lambda fn: SimpleNamespace(remote=lambda *args: _Ref(fn(*args)))

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value

    def nodes(self):
        return [{"Alive": True, "Resources": {self.resource: 1}}]


def test_with_a_device_node_the_fleets_device_is_measured_there_and_a_refused_graph_fails_its_trial(
    tiny_space_file,
):
    space = load_space(tiny_space_file)
    archs = [space.sample(optuna.create_study().ask()) for _ in range(2)]
    batch = [SimpleNamespace(arch=arch, attrs={}) for arch in archs]
    graphs = [export_onnx(build_model(archs[0], 2), 16, fast=True), b"not an onnx graph"]
    budget = DeviceBudget(load_profile(DEVICE), 1000.0)
    absent = with_device_nodes([budget], SimpleNamespace(ray=InProcessRay("nas-device:pixel-3")), 5.0)
    assert absent == (budget,), "no node for the device: it stays predicted"

    present = with_device_nodes([budget], SimpleNamespace(ray=InProcessRay(f"nas-device:{DEVICE}")), 5.0)
    failures = measure_fleet(present, batch, graphs)
    assert list(failures) == [1] and failures[1].startswith(f"on {DEVICE}: device: ")
    measured = batch[0].attrs
    assert measured[f"latency_source@{DEVICE}"] == "device" and measured[f"latency_ms@{DEVICE}"] > 0
    assert latency_violation(present, batch[0], ArchitectureFeaturizer(2)) is None
    assert measured[f"latency_source@{DEVICE}"] == "device", "a measured latency is not predicted over"
    tight = (replace(present[0], budget_ms=measured[f"latency_ms@{DEVICE}"] / 2),)
    assert "(device) > budget" in latency_violation(tight, batch[0], ArchitectureFeaturizer(2))
