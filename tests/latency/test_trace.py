"""The export-free featurizer: for every primitive, the recorded forward pass gives exactly the features
of the exported ONNX graph; a module it cannot map gives None (the caller exports it instead)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas.blocks import build_block, conv_bn
from nas.builder import build_model
from nas.latency._graph import graph_features
from nas.latency._trace import traced_features
from nas.onnx_io import export_onnx
from nas.space import BlockSpec, load_space


def assert_same(module, shape):
    exported = graph_features(export_onnx(module, 0, fast=True, input_shape=shape))
    traced = traced_features(module, shape)
    assert traced is not None
    assert [n.op_type for n in traced.nodes] == [n.op_type for n in exported.nodes]
    assert [n.kind for n in traced.nodes] == [n.kind for n in exported.nodes]
    for t, e in zip(traced.nodes, exported.nodes):
        np.testing.assert_array_equal(t.features, e.features, err_msg=e.name)
    assert [n.shape for n in traced.nodes] == [
        n.shape for n in exported.nodes
    ]  # what coverage ranges are made of


CASES = [
    (BlockSpec(primitive, kernel, expansion, groups, se, act), c_in, c_out, stride)
    for primitive, kernel, expansion, groups, se, act, (c_in, c_out, stride) in itertools.product(
        ["mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck", "skip"],
        [3, 7],
        [1.0, 4.0],
        [2],
        [False, True],
        ["relu", "relu6", "hardswish"],
        [(16, 16, 1), (24, 40, 2)],
    )
]


@pytest.mark.parametrize("spec, c_in, c_out, stride", CASES[::5])  # every primitive, option and shape appears
def test_every_primitive_matches_its_exported_graph(spec, c_in, c_out, stride):
    spec = BlockSpec(
        spec.primitive,
        spec.kernel if spec.primitive != "skip" else None,
        spec.expansion if spec.primitive in ("mbconv", "fused_mbconv", "shuffle_bottleneck") else None,
        spec.groups if spec.primitive == "shuffle_bottleneck" else None,
        spec.se if spec.primitive != "skip" else False,
        spec.activation if spec.primitive != "skip" else None,
    )
    torch.manual_seed(0)
    assert_same(build_block(spec, c_in, c_out, stride), (1, c_in, 16, 16))


@pytest.mark.parametrize("space_name", ["mobilenet", "fbnet"])
def test_whole_networks_match(space_name):
    import optuna

    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    for _ in range(3):
        arch = space.sample(study.ask())
        assert_same(build_model(arch, 10), (1, 3, arch.resolution, arch.resolution))


def test_a_stem_unit_matches():
    assert_same(conv_bn(3, 16, 3, 2, act="hardswish"), (1, 3, 32, 32))


def test_an_unmapped_call_gives_none():
    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.tanh(torch.cumsum(x, dim=1))

    assert traced_features(Odd(), (1, 4, 8, 8)) is None


def test_training_mode_is_restored():
    block = conv_bn(16, 16, 3, act="relu").train()
    traced_features(block, (1, 16, 8, 8))
    assert block.training
