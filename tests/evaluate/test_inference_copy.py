"""Validation runs an inference copy with BatchNorm folded into the convolutions: the same predictions as
the trained network for every primitive, and the trained network is left as it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.builder import build_model
from nas.evaluate import Preprocessing, evaluate_accuracy
from nas.evaluate._training import inference_copy
from nas.space import Architecture, BlockSpec, StageSpec
from nas.space._primitives import known_primitives, primitive_attributes
from tests.evaluate.test_training import easy_dataset

BLOCK_VALUES = {"kernel": 3, "expansion": 3, "groups": 2, "se": True, "activation": "hardswish"}


def network(primitive: str, se=True) -> torch.nn.Module:
    """Two stages of `primitive` blocks, with BatchNorm statistics and affine parameters away from their
    initial values (an untrained network's BatchNorm is nearly the identity, which would hide a wrong fold)."""
    values = {**BLOCK_VALUES, "se": se}
    block = BlockSpec(primitive=primitive, **{a: values[a] for a in primitive_attributes(primitive)})
    arch = Architecture(
        space="fold",
        resolution=16,
        stem_channels=16,
        stem_kernel=3,
        stem_stride=1,
        stem_activation="relu",
        stages=(
            StageSpec(name="a", stride=1, width=16, blocks=(block, block)),
            StageSpec(name="b", stride=2, width=24, blocks=(block,)),
        ),
        head_width=32,
        head_activation="hardswish",
        dropout=0.0,
    )
    model = build_model(arch, 10, seed=0)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.3)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.3)
    return model.to(memory_format=torch.channels_last).eval()


@pytest.mark.parametrize("primitive", known_primitives())
def test_the_folded_copy_predicts_what_the_network_does(primitive):
    model = network(primitive)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(2)).contiguous(
        memory_format=torch.channels_last
    )
    net = inference_copy(model)
    with torch.no_grad():
        expected, got = model(x), net(x)
    assert torch.equal(expected.argmax(1), got.argmax(1))
    assert torch.allclose(expected, got, rtol=1e-4, atol=1e-4)
    batchnorms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not batchnorms  # every conv_bn folded (a primitive's own BatchNorm would stay, but none has one)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the network is unchanged
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 0


def test_validation_gives_the_unfolded_networks_accuracy_and_loss():
    data = easy_dataset(size=16, n_val=250)
    norm = Preprocessing(data.mean, data.std, 16)
    for primitive in known_primitives():
        model = network(primitive, se=False)
        with torch.no_grad():  # the plain network, all 250 images in one batch
            logits = model(norm(torch.from_numpy(data.x_val)))
        labels = torch.from_numpy(np.asarray(data.y_val, dtype=np.int64))
        accuracy, loss = evaluate_accuracy(model, data, norm)
        assert accuracy == float((logits.argmax(1) == labels).float().mean())
        assert loss == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-5)
