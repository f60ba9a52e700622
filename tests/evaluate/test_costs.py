"""count_costs: parameters and MACs as fvcore counts them (directly for the built-in networks, equal to
fvcore on every primitive and attention), without side effects on the model."""

from __future__ import annotations

import itertools

import optuna
import pytest
import torch
from torch import nn

from nas.blocks import build_block, conv_bn
from nas.builder import build_model
from nas.evaluate import CostCounter, Costs, count_costs
from nas.evaluate._costs import _directly_countable, _fvcore_macs
from nas.space import BlockSpec, load_space, primitive_attributes

optuna.logging.set_verbosity(optuna.logging.WARNING)


def hand_model() -> nn.Module:
    # 3x3 conv 3->8, padding 1, on 8x8 -> 8x8x8; then flatten -> linear 512 -> 10
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def test_macs_and_params_of_hand_computable_model():
    costs = count_costs(hand_model(), resolution=8)
    assert isinstance(costs, Costs)
    conv_macs = 8 * 8 * 8 * (3 * 3 * 3)  # output elements x (k*k*c_in)
    linear_macs = 512 * 10
    assert costs.macs == conv_macs + linear_macs == 18944
    assert costs.params == (8 * 3 * 3 * 3 + 8) + (512 * 10 + 10) == 5354
    assert isinstance(costs.macs, int) and isinstance(costs.params, int)


def test_macs_scale_with_resolution_and_stride():
    def conv_net():
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
        )

    m16 = count_costs(conv_net(), resolution=16).macs
    m32 = count_costs(conv_net(), resolution=32).macs
    # stride 2 -> 8x8 outputs: dense conv 64*16*27, depthwise 64*16*9
    assert m16 == 64 * 16 * 27 + 64 * 16 * 9
    assert m32 == 4 * m16


@pytest.mark.parametrize("space_name, seed", [("mobilenet", 0), ("mobilenet", 1), ("fbnet", 0)])
def test_params_equal_sum_of_numel(space_name, seed):
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    arch = space.sample(study.ask())
    model = build_model(arch, 10, seed=0)
    costs = count_costs(model, arch.resolution)
    assert costs.params == sum(p.numel() for p in model.parameters())
    assert costs.macs > 0
    # a bigger input costs more, the parameter count does not change
    bigger = count_costs(model, arch.resolution * 2)
    assert bigger.params == costs.params and bigger.macs > costs.macs


@pytest.mark.parametrize("mode", [True, False])
def test_training_mode_is_restored(mode):
    model = build_model(
        load_space("mobilenet").sample(
            optuna.trial.FixedTrial(
                {
                    "s1.depth": 1,
                    "s1.width": 16,
                    "s1.primitive": "mbconv",
                    "s1.kernel": 3,
                    "s1.expansion": 3,
                    "s1.se": True,
                    "s1.activation": "relu",
                    "s2.depth": 1,
                    "s2.width": 24,
                    "s2.primitive": "dwsep",
                    "s2.kernel": 3,
                    "s2.se": False,
                    "s2.activation": "relu",
                    "s3.depth": 1,
                    "s3.width": 40,
                    "s3.primitive": "fused_mbconv",
                    "s3.kernel": 3,
                    "s3.expansion": 1,
                    "s3.se": False,
                    "s3.activation": "relu6",
                    "s4.depth": 1,
                    "s4.width": 64,
                    "s4.primitive": "shuffle_bottleneck",
                    "s4.kernel": 3,
                    "s4.expansion": 1,
                    "s4.se": False,
                    "s4.activation": "hardswish",
                    "head.width": 256,
                }
            )
        ),
        10,
        seed=0,
    )
    model.train(mode)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    running_mean = bn.running_mean.clone()
    tracked = bn.num_batches_tracked.clone()
    count_costs(model, 32)
    assert model.training is mode
    assert all(m.training is mode for m in model.modules())
    # counting runs in eval mode: BatchNorm statistics are untouched
    assert torch.equal(bn.running_mean, running_mean)
    assert torch.equal(bn.num_batches_tracked, tracked)


class _Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        raise RuntimeError("boom")


def test_training_mode_restored_when_counting_fails():
    model = _Boom().train()
    with pytest.raises(Exception):
        count_costs(model, 8)
    assert model.training and model.conv.training


def test_macs_count_only_convolutions_and_linear_layers():
    conv_only = count_costs(nn.Conv2d(3, 8, 3, padding=1, bias=False), 8).macs
    with_bn_pool = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
    )
    assert count_costs(with_bn_pool, 8).macs == conv_only == 8 * 64 * 27


def _sampled(space_name: str, count: int, seed: int = 5) -> list:
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(count)]


def test_counting_by_parts_equals_counting_the_built_network():
    from nas.baselines import hand_designed

    counter = CostCounter(num_classes=10)
    archs = _sampled("mobilenet", 6) + _sampled("fbnet", 6) + list(hand_designed((0.5,)).values())
    for arch in archs:
        assert counter.costs(arch) == count_costs(build_model(arch, 10, seed=0), arch.resolution), (
            arch.summary()
        )
    assert CostCounter(num_classes=100).costs(archs[0]) == count_costs(
        build_model(archs[0], 100), archs[0].resolution
    )


def test_each_part_is_counted_once():
    arch = _sampled("mobilenet", 1)[0]
    counter = CostCounter(num_classes=10)
    first = counter.costs(arch)
    parts = len(counter)
    assert counter.costs(arch) == first and len(counter) == parts and parts <= arch.depth + 2


def _spec(primitive: str, kernel: int, expansion: float, se, act: str) -> BlockSpec:
    """A BlockSpec with only the attributes the primitive uses (others None, as the space makes them)."""
    values = {"kernel": kernel, "expansion": expansion, "groups": 2, "se": se, "activation": act}
    used = primitive_attributes(primitive)
    return BlockSpec(primitive=primitive, **{k: v for k, v in values.items() if k in used})


BLOCKS = [
    (_spec(primitive, kernel, expansion, se, act), c_in, c_out, stride)
    for primitive, kernel, expansion, se, act, (c_in, c_out, stride) in itertools.product(
        ["mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck", "skip"],
        [3, 5],
        [1.0, 6.0],
        [False, True, "eca", "coord"],
        ["relu", "hardswish"],
        [(16, 16, 1), (24, 40, 2)],
    )
][::9]  # every primitive, attention, kernel, expansion and shape appears (tested below)


def test_the_blocks_cover_every_primitive_and_attention():
    assert {s.primitive for s, *_ in BLOCKS} == {
        "mbconv",
        "fused_mbconv",
        "dwsep",
        "shuffle_bottleneck",
        "skip",
    }
    assert {s.se for s, *_ in BLOCKS if s.primitive == "mbconv"} == {False, True, "eca", "coord"}
    assert {s.se for s, *_ in BLOCKS if s.primitive == "shuffle_bottleneck"} == {False, True, "eca", "coord"}


@pytest.mark.parametrize("spec, c_in, c_out, stride", BLOCKS)
def test_direct_count_equals_fvcore_on_every_primitive_and_attention(spec, c_in, c_out, stride):
    block = build_block(spec, c_in, c_out, stride).eval()
    example = torch.zeros(1, c_in, 12, 12)
    assert _directly_countable(block)
    assert count_costs(block, 12, input_shape=example.shape).macs == _fvcore_macs(block, example)


def test_direct_count_equals_fvcore_on_whole_networks_stems_and_heads():
    from nas.baselines import hand_designed

    archs = _sampled("mobilenet", 2) + _sampled("fbnet", 1) + list(hand_designed((0.5,)).values())
    for arch in archs:
        model = build_model(arch, 10, seed=0).eval()
        example = torch.zeros(1, 3, arch.resolution, arch.resolution)
        assert _directly_countable(model)
        assert count_costs(model, arch.resolution).macs == _fvcore_macs(model, example), arch.summary()
    stem = conv_bn(3, 16, 3, 2, act="hardswish").eval()
    assert count_costs(stem, 32).macs == _fvcore_macs(stem, torch.zeros(1, 3, 32, 32))


class _Bilinear(nn.Module):
    """A plugin's module whose forward multiplies outside any conv or linear module."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(8, 8))

    def forward(self, x):
        return torch.matmul(x, self.weight)


def test_a_module_it_does_not_know_is_counted_by_fvcore():
    model = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), _Bilinear())
    assert not _directly_countable(model)
    # conv 8 x 8 x 8 outputs x 3 inputs, matmul (1 x 8 x 8 x 8) @ (8 x 8): 512 x 8
    assert count_costs(model, 8).macs == 8 * 64 * 3 + 512 * 8
