"""`nas baselines` on a run measured on a device node: the baselines' latency from that node, or, when it is
gone, predicted by the run's calibrated model, with a line that says so. In process, with a fake node."""

from __future__ import annotations

import importlib
import json
import logging

import pytest

from nas.baselines import evaluate_baselines, hand_designed
from nas.latency import ArchitectureFeaturizer, load_profile
from nas.search import latencies_as_the_run
from tests._serial_executor import SerialExecutor
from tests.search.test_hybrid import FAST, FakeDevice, _search, connect_to, doubled_profile


@pytest.fixture
def device(monkeypatch, x86_model_profile):
    return connect_to(monkeypatch, FakeDevice(x86_model_profile, "nas-device:x86-doubled"))


class OnTheCluster(SerialExecutor):
    def __init__(self, ray):
        self.ray = ray  # the (fake) cluster whose device node measures


def test_baselines_of_a_hybrid_run_are_measured_on_its_device_node_or_say_they_are_not(
    tmp_path, tiny_space_file, tiny_dataset_file, x86_model_profile, device, caplog, monkeypatch
):
    prior = doubled_profile(x86_model_profile, tmp_path)
    run = _search(tmp_path, tiny_space_file, tiny_dataset_file, prior, trials=2).run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["latency_mode"] == "hybrid"

    # what is tested is where the latency comes from: the baselines "train" as the run's candidates did
    search_package = importlib.import_module("nas.search")  # `nas.search` is also the function
    monkeypatch.setattr(
        search_package, "train_candidate", lambda trainer, arch, *args: FAST.train(arch, *args)
    )
    with caplog.at_level(logging.WARNING, logger="nas"):
        results = evaluate_baselines(run, (0.5,), executor=OnTheCluster(device))
    assert {r["latency_source"] for r in results} == {"device"}
    assert "measured on the device node 'nas-device:x86-doubled' (host " in caplog.text
    stored = json.loads((run / "baselines.json").read_text())
    assert [r["latency_ms"] for r in stored] == [r["latency_ms"] for r in results]

    device.present = False  # the node has left: predicted here, by the model the run calibrated
    profile = load_profile(config["search"]["profile"])
    archs = list(hand_designed((0.5,)).values())
    entries, line = latencies_as_the_run(run, config, profile, OnTheCluster(device), archs)
    assert {e["latency_source"] for e in entries} == {"predicted"}
    assert line.startswith("latency: predicted by x86-doubled's model calibrated on the run's ")
    assert "not measured on the device (no Ray node advertises 'nas-device:x86-doubled' now)" in line
    # the model calibrated on the node's measurements (the x86 model's), not the prior (twice that)
    featurizer = ArchitectureFeaturizer(2)
    for entry, arch in zip(entries, archs):
        assert 0.8 < entry["latency_ms"] / device.truth.predict(featurizer.features(arch)) < 1.25
    assert latencies_as_the_run(run, {**config, "latency_mode": "predicted"}, profile, None, archs) is None
