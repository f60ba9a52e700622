"""--latency hybrid, in process with a fake device: every candidate predicted, the trained ones measured on
the device node, the model refitted on them as the search goes, the fallback when the device leaves, resume,
and the calibrated profile saved from the run (`nas profile fit --from-run`)."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe, TrainingResult
from nas.latency import ArchitectureFeaturizer, graph_features, load_profile
from nas.report import load_run
from nas.report._report import _calibration_section
from nas.search import DeviceMeasurer, OnlineCalibration, resolve_latency_mode, search
from nas.search._device_nodes import device_present
from nas.space import load_space
from tests._serial_executor import SerialExecutor


class QuickTrainer(ProxyTrainer):
    """No training: an accuracy drawn from the architecture. What is tested is latency, not accuracy."""

    def train(self, arch, dataset, seed, *, stop_after=None, resume=None):
        accuracy = int(arch.hash[:6], 16) / 0xFFFFFF
        return TrainingResult(
            accuracy=accuracy,
            val_loss=1 - accuracy,
            train_seconds=0.001,
            eval_seconds=0.001,
            epochs=self.recipe.epochs,
            state_dict=b"weights",
            resume_state=None,
            device="cpu",
        )


FAST = QuickTrainer(TrainingRecipe(epochs=1, train_subset=32, batch_size=32))


def doubled_profile(x86_model_profile, folder):
    """The x86 model with every weight doubled: the prior a hybrid search must correct."""
    raw = yaml.safe_load(x86_model_profile.read_text())
    raw["name"] = "x86-doubled"
    raw["model"]["weights"] = {column: 2 * w for column, w in raw["model"]["weights"].items()}
    path = folder / "x86-doubled.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def perturbed_profile(x86_model_profile, tmp_path_factory):
    return doubled_profile(x86_model_profile, tmp_path_factory.mktemp("profiles"))


class _Ref:
    def __init__(self, value):
        self.value = value


class FakeDevice:
    """A device whose latency is the unperturbed x86 model's prediction of the graph; it can leave."""

    def __init__(self, truth_profile, resource):
        self.truth = load_profile(truth_profile).latency_model
        self.resource, self.present, self.measured = resource, True, 0

    def measure(self, graph, settings):
        self.measured += 1
        return {
            "median_ms": self.truth.predict(graph_features(graph)),
            "spread": 0.0,
            "stable": True,
            "attempts": 1,
            "node_id": "fake-node",
            "host": "fake-host",
            "seconds": 0.0,
        }

    # the Ray calls a DeviceMeasurer makes, run in this process
    def remote(self, **options):
        return lambda fn: SimpleNamespace(remote=lambda *args: _Ref(fn(*args)))

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value

    def cancel(self, ref, force=False):
        pass

    def nodes(self):
        return [{"Alive": True, "Resources": {self.resource: 1}}] if self.present else []


def connect_to(monkeypatch, fake):
    """Searches find `fake`'s device node (its Ray calls run in this process)."""

    def connect(cls, executor, profile, timeout_s, mode="device"):
        return cls(fake, profile.name, profile.measurement, timeout_s, measure=fake.measure)

    monkeypatch.setattr(DeviceMeasurer, "connect", classmethod(connect))
    return fake


@pytest.fixture
def device(monkeypatch, x86_model_profile):
    return connect_to(monkeypatch, FakeDevice(x86_model_profile, "nas-device:x86-doubled"))


def _search(tmp_path, space, data, profile, **settings):
    defaults = dict(
        space=str(space),
        dataset=str(data),
        profile=str(profile),
        latency="hybrid",
        trials=5,
        population=2,
        epochs=1,
        train_subset=32,
        out=str(tmp_path / "run"),
        sampler="random",
        prescreen=3,
        prescreen_score="params",
    )
    return search(executor=SerialExecutor(), trainer=FAST, **{**defaults, **settings})


def _rows(run_dir):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def _relative_error(row):
    return abs(float(row["latency_predicted_ms"]) - float(row["latency_ms"])) / float(row["latency_ms"])


def test_the_calibration_recovers_a_model_whose_weights_were_doubled(
    tiny_space_file, x86_model_profile, perturbed_profile
):
    truth = load_profile(x86_model_profile).latency_model
    space, featurizer = load_space(tiny_space_file), ArchitectureFeaturizer(2)
    rng = np.random.default_rng(0)
    chooser = SimpleNamespace(suggest_categorical=lambda name, choices: choices[rng.integers(len(choices))])
    features = [featurizer.features(space.sample(chooser)) for _ in range(20)]
    calibration = OnlineCalibration(load_profile(perturbed_profile))

    def mape(items):
        return np.mean([abs(calibration.predict(f).latency_ms / truth.predict(f) - 1) for f in items])

    before = mape(features[10:])
    for f in features[:10]:
        calibration.add(f, truth.predict(f))
    assert before > 0.5, "the doubled weights predict far too slow"
    assert mape(features[10:]) < 0.1 * before
    interval = calibration.predictor.interval
    assert interval.n == 10 and "each predicted first" in interval.data
    assert interval.low < 0.6 and interval.high > 0.9, "the first prediction, before any refit, was 2x off"


def test_a_hybrid_search_predicts_the_pool_measures_what_trains_and_refits(
    tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile, device, capsys
):
    result = _search(tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile)
    rows = _rows(result.run_dir)
    trained = [r for r in rows if r["status"] == "complete" and not r["duplicate_of"]]
    assert trained and device.measured == len(trained)
    assert all(r["latency_source"] == "device" and r["latency_host"] == "fake-host" for r in trained)
    assert all(r["latency_low_ms"] == "" for r in trained), "a measured latency carries no interval"
    screened = [r for r in rows if r["status"] == "screened_out"]
    assert screened and all(r["latency_source"] == "predicted" for r in screened)
    # each measured trial records what the model predicted before measuring it, refitted on all before it
    assert [int(r["latency_calibrated_on"]) for r in trained] == list(range(len(trained)))
    assert _relative_error(trained[0]) > 0.5 and max(map(_relative_error, trained[1:])) < 0.5

    from nas.cli import main

    target = tmp_path / "calibrated.yaml"
    assert (
        main(["profile", "fit", "--from-run", str(result.run_dir), "--name", "x86-run", "--out", str(target)])
        == 0
    )
    assert "leave-one-out MAPE" in capsys.readouterr().out
    saved = load_profile(target)
    assert saved.latency == "predicted" and saved.validation["n"] == len(trained)
    truth = device.truth
    featurizer, space = ArchitectureFeaturizer(2), load_space(tiny_space_file)
    rng = np.random.default_rng(1)
    chooser = SimpleNamespace(suggest_categorical=lambda name, choices: choices[rng.integers(len(choices))])
    unseen = [featurizer.features(space.sample(chooser)) for _ in range(10)]
    assert max(abs(saved.predict(f).latency_ms / truth.predict(f) - 1) for f in unseen) < 0.25

    report = tmp_path / "report"
    report.mkdir()
    section = _calibration_section(load_run(result.run_dir), report)
    assert "Latency model calibration" in section and (report / "calibration.png").stat().st_size > 0

    # resumed with more trials, the model starts refitted on every measurement the run already has
    more = _search(tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile, trials=6)
    later = [r for r in _rows(more.run_dir) if r["status"] == "complete" and not r["duplicate_of"]]
    assert [int(r["latency_calibrated_on"]) for r in later] == list(range(len(later)))
    assert len(later) > len(trained)


def test_a_device_that_leaves_leaves_its_candidates_their_prediction_marked_fallback(
    tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile, device
):
    measure = device.measure

    def leaves_after_two(graph, settings):
        if device.measured >= 2:
            device.present = False
            raise RuntimeError("the node is gone")
        return measure(graph, settings)

    device.measure = leaves_after_two
    result = _search(
        tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile, device_timeout=0.01, trials=4
    )
    trained = [r for r in _rows(result.run_dir) if r["status"] == "complete" and not r["duplicate_of"]]
    sources = [r["latency_source"] for r in trained]
    assert sources[:2] == ["device", "device"] and set(sources[2:]) == {"fallback"} and len(sources) > 2
    assert all(float(r["latency_ms"]) == float(r["latency_predicted_ms"]) for r in trained[2:])


def test_auto_is_hybrid_when_the_cluster_has_the_profiles_device(x86_model_profile):
    profile = load_profile(x86_model_profile)
    assert resolve_latency_mode(profile, "auto") == "measured"
    assert resolve_latency_mode(profile, "auto", device_node=True) == "hybrid"
    no_model = SimpleNamespace(name="board", latency="measured", latency_model=None)
    assert resolve_latency_mode(no_model, "auto", device_node=True) == "measured", "nothing to predict with"
    here = FakeDevice(x86_model_profile, "nas-device:x86-cpu")
    assert device_present(SimpleNamespace(ray=here), "x86-cpu")
    assert not device_present(SimpleNamespace(ray=here), "jetson-tx2")
    assert not device_present(SerialExecutor(), "x86-cpu")


def test_a_resume_with_another_prior_model_is_refused(
    tmp_path, tiny_space_file, tiny_dataset_file, perturbed_profile, device
):
    """The calibration refits the prior on the run's measurements: another prior would mix two models."""
    profile = tmp_path / "x86-doubled.yaml"
    profile.write_text(perturbed_profile.read_text())
    _search(tmp_path, tiny_space_file, tiny_dataset_file, profile, trials=2)
    raw = yaml.safe_load(profile.read_text())
    raw["model"]["weights"] = {column: 1.5 * w for column, w in raw["model"]["weights"].items()}
    profile.write_text(yaml.safe_dump(raw))
    with pytest.raises(NasError, match="the latency_model changed since this run started"):
        _search(tmp_path, tiny_space_file, tiny_dataset_file, profile, trials=3)
