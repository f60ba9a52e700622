"""Segments, the exported cascade and the expected latency; joint training of every exit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.exits import check_segments, exit_weights, expected_latency, export_segments, joint_exit_loss
from nas.runtime import ExitCascade, read_exits_metadata, route
from tests.exits.cascade_fixture import exits_architecture, make_cascade_folder

pytestmark = pytest.mark.dynamo_export  # the segments a deployed cascade runs


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    return make_cascade_folder(tmp_path_factory.mktemp("exits"))


def test_the_segments_chain_to_the_logits_of_every_exit(cascade):
    _, model, arch, x, _ = cascade
    assert arch.exits == ("a", "b")
    graphs = export_segments(model, arch.resolution)
    assert len(graphs) == 3
    assert check_segments(model, graphs, arch.resolution) < 1e-3
    with torch.no_grad():
        outputs = model.forward_exits(torch.from_numpy(x))
        assert torch.equal(outputs[-1], model(torch.from_numpy(x)))  # forward: the final exit, unchanged


def test_the_runtime_takes_the_exits_the_rule_gives(cascade):
    folder, model, _, x, thresholds = cascade
    meta = read_exits_metadata(folder / "model.onnx")
    assert meta["thresholds"] == thresholds and meta["segments"] == [
        f"exit_segment_{k}.onnx" for k in range(3)
    ]
    with torch.no_grad():
        probabilities = [torch.softmax(o, 1).numpy() for o in model.forward_exits(torch.from_numpy(x))]
    want_prediction, want_exit = route(probabilities, thresholds)
    out = ExitCascade(folder).run(x)
    assert np.array_equal(out.exit_taken, want_exit)
    assert np.array_equal(out.prediction, want_prediction)
    assert set(np.unique(out.exit_taken)) == {0, 1, 2}  # the fixture's thresholds split the images
    one = ExitCascade(folder).run(x[:1])  # batch 1, as a deployment runs it
    assert one.exit_taken[0] == want_exit[0] and one.prediction[0] == want_prediction[0]


def test_expected_latency_weighs_the_latency_up_to_each_exit():
    got = expected_latency([0.5, 0.3, 0.2], [1.0, 2.0, 4.0], [0.5, 1.0, 2.0], [2.0, 4.0, 8.0])
    assert got.cumulative_ms == (1.0, 3.0, 7.0)
    assert got.expected_ms == pytest.approx(0.5 * 1 + 0.3 * 3 + 0.2 * 7)
    assert got.low_ms == pytest.approx(got.expected_ms / 2) and got.high_ms == pytest.approx(
        2 * got.expected_ms
    )
    with pytest.raises(ValueError, match="must sum to 1"):
        expected_latency([0.5, 0.3], [1.0, 2.0])


def test_segments_are_measured_by_the_profiles_protocol(cascade):
    from nas.exits import cascade_latency
    from nas.latency import load_profile

    _, model, arch, _, _ = cascade
    got = cascade_latency(model, arch.resolution, [0.5, 0.25, 0.25], load_profile("x86-cpu"))
    assert len(got.cumulative_ms) == 3 and all(ms > 0 for ms in got.cumulative_ms)
    assert list(got.cumulative_ms) == sorted(got.cumulative_ms)  # each exit costs the segments before it
    assert got.expected_ms == pytest.approx(sum(s * c for s, c in zip(got.shares, got.cumulative_ms)))
    assert got.low_ms is None  # measured: no prediction interval


def test_joint_loss_weighs_exits_by_depth():
    assert exit_weights(3) == [1 / 3, 2 / 3, 1.0]
    labels = torch.tensor([0, 1])
    outputs = [
        torch.zeros(2, 2),
        torch.tensor([[5.0, 0.0], [0.0, 5.0]]),
        torch.tensor([[0.0, 5.0], [5.0, 0.0]]),
    ]
    ce = [torch.nn.functional.cross_entropy(o, labels) for o in outputs]
    assert joint_exit_loss(outputs, labels) == pytest.approx(float(ce[0] / 3 + 2 * ce[1] / 3 + ce[2]))


def test_training_trains_every_exit_and_reports_the_calibrated_cascade(tmp_path, tiny_dataset_file):
    from nas.builder import build_model
    from nas.data import load_dataset
    from nas.evaluate import ProxyTrainer, TrainingRecipe

    arch = exits_architecture(tmp_path)
    dataset = load_dataset(tiny_dataset_file, val_fraction=0.25, seed=0)
    result = ProxyTrainer(
        TrainingRecipe(epochs=1, train_subset=None, batch_size=16), exit_max_drop=0.5
    ).train(arch, dataset, seed=0)
    assert result.exits is not None and len(result.exits["thresholds"]) == 2
    assert result.accuracy == result.exits["cascade_accuracy"]
    assert result.exits["drop_points"] <= 0.5 + 1e-9
    from safetensors.torch import load

    trained = load(result.state_dict)
    initial = build_model(arch, 2, seed=0).state_dict()
    for name in ("exits.a.classifier.weight", "exits.b.classifier.weight", "classifier.weight"):
        assert not torch.equal(trained[name], initial[name]), f"{name} was not trained"
