"""--latency hybrid with a fleet (`--budget OTHER=MS`) whose other device has a node: the candidates chosen
for training are measured there too, before they train, and a measurement over that budget makes them
infeasible, and that device's model is refitted on them; the node leaving keeps the prediction, marked
`fallback`. In process, with fake nodes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from nas.search import search
from tests._serial_executor import SerialExecutor
from tests.search.test_hybrid import FAST, FakeDevice, _Ref, _rows, connect_to

FLEET = "x86-fleet"
SLOWER = 3.0  # the fleet's device is this much slower than its profile's model predicts


@pytest.fixture(scope="module")
def fleet_profile(x86_model_profile, tmp_path_factory):
    raw = yaml.safe_load(x86_model_profile.read_text())
    raw["name"] = FLEET
    path = tmp_path_factory.mktemp("fleet") / f"{FLEET}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class FleetNodes(FakeDevice):
    """Two fake device nodes: the search's own (its latency the x86 model's) and the fleet's (SLOWER times
    it); each measurement runs in this process with the function of the node its resource names."""

    def __init__(self, truth_profile):
        super().__init__(truth_profile, "nas-device:x86-cpu")  # the search's profile (x86-model.yaml's name)
        self.fleet_resource, self.fleet_present, self.fleet_measured = f"nas-device:{FLEET}", True, 0

    def fleet_measure(self, graph, settings):
        self.fleet_measured += 1
        out = self.measure(graph, settings)
        self.measured -= 1
        return {**out, "median_ms": SLOWER * out["median_ms"], "node_id": "fleet-node"}

    def remote(self, **options):
        fleet = self.fleet_resource in options["resources"]

        def task(fn):
            def run(measure, graphs, settings):
                return _Ref(fn(self.fleet_measure if fleet else measure, graphs, settings))

            return SimpleNamespace(remote=run)

        return task

    def nodes(self):
        nodes = super().nodes()
        if self.fleet_present:
            nodes.append({"Alive": True, "Resources": {self.fleet_resource: 1}})
        return nodes


class FleetExecutor(SerialExecutor):
    def __init__(self, ray):
        self.ray = ray  # what `with_device_nodes` looks for the fleet's nodes in


@pytest.fixture
def nodes(monkeypatch, x86_model_profile):
    return connect_to(monkeypatch, FleetNodes(x86_model_profile))


def _fleet_search(tmp_path, space, data, profile, fleet_profile, nodes, budget_ms, **settings):
    settings = dict(
        space=str(space),
        dataset=str(data),
        profile=str(profile),
        budgets=[f"{fleet_profile}={budget_ms}"],
        latency="hybrid",
        population=2,
        epochs=1,
        train_subset=32,
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=3,
        prescreen_score="params",
        **settings,
    )
    return search(executor=FleetExecutor(nodes), trainer=FAST, **settings)


def test_the_fleet_device_measures_what_trains_and_its_budget_rejects_by_the_measurement(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, fleet_profile, nodes
):
    result = _fleet_search(
        tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, fleet_profile, nodes, 0.06, trials=6
    )
    rows = _rows(result.run_dir)
    source, latency = f"latency_source@{FLEET}", f"latency_ms@{FLEET}"
    measured = [r for r in rows if r[source] == "device"]
    assert measured and nodes.fleet_measured == len(measured) == nodes.measured
    for row in measured:  # the model's prediction of the fleet device replaced by its measurement
        assert float(row[latency]) == pytest.approx(SLOWER * float(row["latency_ms"]))
        assert row[f"latency_low_ms@{FLEET}"] == ""
    over = [r for r in measured if float(r[latency]) > 0.06]
    assert over and all(r["status"] == "infeasible" for r in over)
    assert all(
        f"latency on {FLEET}" in r["failure_reason"] and "(device)" in r["failure_reason"] for r in over
    )
    assert all(float(r[latency]) <= 0.06 for r in rows if r["status"] == "complete")
    assert {r[source] for r in rows if r["status"] == "screened_out"} <= {"predicted"}
    # the fleet device's model is refitted on its measurements: the first pool is predicted by its profile's
    # model (the search's own device's latency, here), the later ones as SLOWER times it
    predicted = [float(r[latency]) / float(r["latency_ms"]) for r in rows if r[source] == "predicted"]
    assert min(predicted) == pytest.approx(1.0, rel=0.02) and max(predicted) > 2.0


def test_a_resumed_run_refits_each_device_from_its_own_measurements(tiny_space_file):
    import optuna

    from nas.search._hybrid import calibration_samples
    from nas.space import load_space

    arch = load_space(str(tiny_space_file)).sample(optuna.create_study().ask())

    def trial(number, **attrs):
        return SimpleNamespace(number=number, user_attrs={"architecture": arch.to_dict(), **attrs})

    trials = [
        trial(
            2,
            latency_source="device",
            latency_ms=1.0,
            **{f"latency_source@{FLEET}": "device", f"latency_ms@{FLEET}": 3.0},
        ),
        trial(
            1,
            latency_source="predicted",
            latency_ms=0.5,
            **{f"latency_source@{FLEET}": "device", f"latency_ms@{FLEET}": 1.5},
        ),
        trial(
            3,
            latency_source="device",
            latency_ms=2.0,
            **{f"latency_source@{FLEET}": "fallback", f"latency_ms@{FLEET}": 9.0},
        ),
        trial(4, latency_source="device", latency_ms=7.0, duplicate_of=2),
    ]
    features = SimpleNamespace(features=lambda a: a.hash)
    assert [ms for _, ms in calibration_samples(trials, features)] == [1.0, 2.0]
    assert [ms for _, ms in calibration_samples(trials, features, FLEET)] == [1.5, 3.0]


def test_a_fleet_device_that_leaves_leaves_its_prediction_marked_fallback(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, fleet_profile, nodes
):
    measure = nodes.fleet_measure

    def leaves_after_two(graph, settings):
        if nodes.fleet_measured >= 2:
            nodes.fleet_present = False
            raise RuntimeError("the node is gone")
        return measure(graph, settings)

    nodes.fleet_measure = leaves_after_two
    result = _fleet_search(
        tmp_path,
        tiny_space_file,
        tiny_dataset_file,
        x86_model_profile,
        fleet_profile,
        nodes,
        1.0,  # a budget no candidate exceeds: every chosen one trains
        trials=4,
        device_timeout=0.01,
    )
    trained = [r for r in _rows(result.run_dir) if r["status"] == "complete" and not r["duplicate_of"]]
    fleet_sources = [r[f"latency_source@{FLEET}"] for r in trained]
    assert fleet_sources[:2] == ["device", "device"] and set(fleet_sources[2:]) == {"fallback"}
    assert len(fleet_sources) > 2 and {r["latency_source"] for r in trained} == {"device"}
