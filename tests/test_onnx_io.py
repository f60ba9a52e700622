"""nas.onnx_io: both exporters, BatchNorm folding, dynamic batch, numerics, metadata, atomic writes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nas.onnx_io import export_onnx, read_metadata

pytestmark = pytest.mark.dynamo_export  # the exporter deployment models are written with

RESOLUTION = 32


class SmallNet(nn.Module):
    """Conv-BN-ReLU stem, a depthwise-separable block, a strided conv, pooling and a classifier."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.Conv2d(16, 24, 1, bias=False),
            nn.BatchNorm2d(24),
            nn.Conv2d(24, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def make_model() -> SmallNet:
    """A model whose BatchNorm statistics are far from the identity, so a wrong fold shows up."""
    torch.manual_seed(0)
    model = SmallNet()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.train()  # a training-mode model: the exporter must switch to eval and back


def op_types(data: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_from_string(data).graph.node]


def ort_run(data: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    return session.run(None, {"input": x})[0]


def torch_run(model: nn.Module, x: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    model.train(was_training)
    return out


@pytest.fixture(scope="module")
def model() -> SmallNet:
    return make_model()


@pytest.fixture(scope="module")
def exported(model) -> dict[str, bytes]:
    """Each exporter once with a dynamic batch (exports are the slow part of this file)."""
    return {
        "dynamo": export_onnx(
            model, RESOLUTION, dynamic_batch=True, metadata={"arch": "small", "trial": "7"}
        ),
        "fast": export_onnx(model, RESOLUTION, dynamic_batch=True, fast=True, metadata={"arch": "small"}),
    }


@pytest.mark.parametrize("exporter", ["dynamo", "fast"])
def test_batchnorm_is_folded(exported, exporter):
    ops = op_types(exported[exporter])
    assert "Conv" in ops
    assert "BatchNormalization" not in ops


@pytest.mark.parametrize("exporter", ["dynamo", "fast"])
@pytest.mark.parametrize("batch", [1, 4])
def test_outputs_match_torch_with_dynamic_batch(model, exported, exporter, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 3, RESOLUTION, RESOLUTION), dtype=np.float32)
    got = ort_run(exported[exporter], x)
    want = torch_run(model, x)
    assert got.shape == (batch, 10)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("exporter", ["dynamo", "fast"])
def test_dynamic_batch_is_symbolic_in_the_graph(exported, exporter):
    graph = onnx.load_from_string(exported[exporter]).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param  # symbolic
    assert [d.dim_value for d in dims[1:]] == [3, RESOLUTION, RESOLUTION]


def test_static_export_has_fixed_batch_of_one(model):
    data = export_onnx(model, 16, fast=True)
    dims = onnx.load_from_string(data).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 16, 16]
    x = np.ones((1, 3, 16, 16), dtype=np.float32)
    np.testing.assert_allclose(ort_run(data, x), torch_run(model, x), atol=1e-4, rtol=1e-4)
    with pytest.raises(Exception):  # a static graph rejects another batch size
        ort_run(data, np.ones((2, 3, 16, 16), dtype=np.float32))


def test_export_restores_each_module_mode():
    model = make_model()
    model.features.eval()  # mixed: top-level training, features in eval
    export_onnx(model, 16, fast=True)
    assert model.training and model.classifier.training
    assert not model.features.training and not model.features[1].training
    model.eval()
    export_onnx(model, 16, fast=True)
    assert not any(m.training for m in model.modules())


def test_metadata_round_trip(exported, tmp_path):
    assert read_metadata(exported["dynamo"]) == {"arch": "small", "trial": "7"}
    assert read_metadata(exported["fast"]) == {"arch": "small"}
    path = tmp_path / "m.onnx"
    path.write_bytes(exported["dynamo"])
    assert read_metadata(path) == {"arch": "small", "trial": "7"}
    assert read_metadata(str(path)) == {"arch": "small", "trial": "7"}


@pytest.mark.parametrize("exporter", ["dynamo", "fast"])
def test_an_export_names_no_file_of_the_exporting_machine(exported, exporter):
    """The exporter records Python stack traces (paths of this machine) per node; a model one ships must
    not carry them, and the same network must export to the same bytes on any machine."""
    data = exported[exporter]
    keys = {p.key for node in onnx.load_from_string(data).graph.node for p in node.metadata_props}
    assert not any("stack_trace" in key for key in keys)
    assert str(Path(__file__).resolve().parents[1]).encode() not in data  # the checkout's path


def test_no_metadata_means_empty(model):
    assert read_metadata(export_onnx(model, 16, fast=True)) == {}


def test_write_to_path_is_atomic(model, tmp_path):
    path = tmp_path / "sub" / "model.onnx"
    data = export_onnx(model, 16, fast=True, path=path, metadata={"v": "1"})
    assert path.read_bytes() == data
    assert os.listdir(path.parent) == ["model.onnx"]  # no temp file left behind
    # Overwrite: the new bytes replace the old ones.
    data2 = export_onnx(model, 16, fast=True, path=str(path), metadata={"v": "2"})
    assert path.read_bytes() == data2 and read_metadata(path) == {"v": "2"}


def test_failed_write_leaves_old_file_and_no_temp(model, tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        export_onnx(model, 16, fast=True, path=path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_export_is_quiet(model, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(model, 16)
        export_onnx(model, 16, fast=True)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    assert caught == []


class Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom in forward")


@pytest.mark.parametrize("fast", [False, True])
def test_export_errors_propagate(fast):
    with pytest.raises(Exception, match="boom in forward"):
        export_onnx(Broken(), 16, fast=fast)
