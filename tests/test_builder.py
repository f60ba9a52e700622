"""build_model: Architecture -> nn.Module, seeded and with the structure the space describes."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch
from torch import nn

from nas.builder import ChannelShuffle, Network, Primitive, build_model
from nas.space import Architecture, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample(space_name: str, n: int, seed: int = 0) -> list[Architecture]:
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(n)]


def fbnet_uniform(op: str) -> Architecture:
    space = load_space("fbnet")
    params = {f"{s.name}.b{i}.op": op for s in space.stages for i in range(s.depth[0])}
    return space.sample(optuna.trial.FixedTrial(params))


@pytest.mark.parametrize("space_name, n, num_classes", [("mobilenet", 4, 10), ("fbnet", 2, 7)])
def test_output_shape_for_sampled_archs(space_name, n, num_classes):
    for arch in sample(space_name, n, seed=11):
        model = build_model(arch, num_classes, seed=0)
        assert isinstance(model, Network) and model.arch == arch
        assert model.classifier.out_features == num_classes
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(3, 3, arch.resolution, arch.resolution))
        assert out.shape == (3, num_classes)
        assert torch.isfinite(out).all()
        # stage structure mirrors the architecture
        assert len(model.stages) == len(arch.stages)
        assert [len(s) for s in model.stages] == [st.depth for st in arch.stages]


def test_train_mode_forward_and_backward():
    arch = sample("mobilenet", 1, seed=5)[0]
    model = build_model(arch, 4, seed=0).train()
    out = model(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_seeded_builds_are_identical_and_seeds_differ():
    arch = sample("mobilenet", 1, seed=2)[0]
    a, b = _state(build_model(arch, 10, seed=123)), _state(build_model(arch, 10, seed=123))
    c = _state(build_model(arch, 10, seed=124))
    assert a.keys() == b.keys() == c.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    weights = [k for k in a if k.endswith("weight") and a[k].dim() > 1]
    assert weights
    assert all(not torch.equal(a[k], c[k]) for k in weights)


def test_seeded_build_does_not_disturb_global_rng():
    arch = sample("mobilenet", 1, seed=2)[0]
    torch.manual_seed(0)
    expected = torch.rand(5)
    torch.manual_seed(0)
    build_model(arch, 10, seed=7)
    assert torch.equal(torch.rand(5), expected)


def test_unseeded_build_uses_global_rng():
    arch = sample("mobilenet", 1, seed=2)[0]
    torch.manual_seed(99)
    a = _state(build_model(arch, 10))
    torch.manual_seed(99)
    b = _state(build_model(arch, 10))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weight_init():
    model = build_model(sample("mobilenet", 1, seed=3)[0], 10, seed=0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any()
    assert not model.classifier.bias.any()
    assert model.classifier.weight.std().item() == pytest.approx(0.01, rel=0.3)


def _count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_fbnet_all_k3_e1_structure():
    arch = fbnet_uniform("k3_e1")
    assert all(b.kernel == 3 and b.expansion == 1 and b.groups == 1 for s in arch.stages for b in s.blocks)
    model = build_model(arch, 100, seed=0)
    blocks = [m for m in model.modules() if isinstance(m, Primitive)]
    assert len(blocks) == 22
    # stem + 3 convs per block (1x1, 3x3 depthwise, 1x1) + 1x1 head conv
    assert _count(model, nn.Conv2d) == 1 + 22 * 3 + 1
    assert _count(model, nn.BatchNorm2d) == 1 + 22 * 3 + 1
    assert _count(model, ChannelShuffle) == 0
    assert _count(model, nn.Linear) == 1
    # residual: every block with stride 1 and equal widths; the first block of s0 too (16 -> 16)
    assert [b.use_residual for b in blocks].count(True) == 1 + 3 * 5
    assert [b.use_residual for b in blocks] == [True] + ([False] + [True] * 3) * 5 + [False]
    # depthwise convs: stride only in the first block of the stride-2 stages
    dw = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups > 1]
    assert len(dw) == 22
    assert [i for i, m in enumerate(dw) if m.stride == (2, 2)] == [5, 9, 17]
    assert model.head[0].out_channels == 1504 and model.classifier.in_features == 1504
    assert model.stem[0].stride == (1, 1) and model.stem[0].out_channels == 16
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_fbnet_grouped_and_skip_structure():
    g2 = build_model(fbnet_uniform("k5_e1_g2"), 10, seed=0)
    assert _count(g2, ChannelShuffle) == 22
    skip = build_model(fbnet_uniform("skip"), 10, seed=0)
    # identity where the shape is kept, 1x1 conv at the 6 stage transitions (s1..s6 first blocks)
    assert _count(skip, nn.Identity) == 16
    assert _count(skip, nn.Conv2d) == 1 + 6 + 1
    with torch.no_grad():
        assert skip.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_head_width_none_path():
    arch = dataclasses.replace(sample("mobilenet", 1, seed=4)[0], head_width=None)
    model = build_model(arch, 5, seed=0)
    assert isinstance(model.head, nn.Identity)
    assert model.classifier.in_features == arch.stages[-1].width
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_head_width_omitted_in_space_file(tmp_path):
    path = tmp_path / "nohead.yaml"
    path.write_text(
        "name: nohead\ninput: {resolution: 16}\nstem: {channels: 8, stride: 2, activation: relu6}\n"
        "stages:\n  - {name: a, stride: 2, depth: 2, width: 24, primitive: fused_mbconv, expansion: 3}\n"
    )
    arch = load_space(path).sample(optuna.trial.FixedTrial({}))
    assert arch.head_width is None and arch.dropout == 0.0
    model = build_model(arch, 3, seed=0)
    assert isinstance(model.head, nn.Identity)
    assert isinstance(model.stem[2], nn.ReLU6)
    assert model.classifier.in_features == 24
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_dropout_from_arch():
    arch = sample("mobilenet", 1)[0]
    model = build_model(arch, 10, seed=0)
    assert model.dropout.p == pytest.approx(0.1)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no dropout noise in eval


def test_model_accepts_other_resolution_and_channels_last():
    arch = sample("mobilenet", 1, seed=8)[0]
    model = build_model(arch, 10, seed=0).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        ref = model(x)
        assert ref.shape == (2, 10)
        torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), ref)
