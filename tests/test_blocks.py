"""The block primitives: shapes, residual rule, skip, SE, channel shuffle, and the registry."""

from __future__ import annotations

import itertools

import optuna
import pytest
import torch
from torch import nn

from nas.builder import (
    ChannelShuffle,
    Primitive,
    SqueezeExcite,
    build_block,
    build_model,
    conv_bn,
    make_divisible,
)
from nas.errors import NasError
from nas.space import (
    BlockSpec,
    declare_primitive,
    forget_primitive,
    get_primitive,
    known_primitives,
    load_space,
    primitive_attributes,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUILTIN = ("mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck", "skip")
ACTIVATIONS = ("relu", "relu6", "hardswish")
ACT_TYPES = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish}
SHAPES = [(16, 16), (16, 24), (24, 16)]


def spec_for(primitive: str, *, kernel=3, expansion=3, groups=2, se=False, act="relu") -> BlockSpec:
    """A BlockSpec with exactly the attributes the primitive uses (others None, as the space makes them)."""
    used = primitive_attributes(primitive)
    values = {"kernel": kernel, "expansion": expansion, "groups": groups, "se": se, "activation": act}
    return BlockSpec(primitive=primitive, **{k: v for k, v in values.items() if k in used})


def test_builtin_primitives_are_declared_with_a_builder_and_short_code():
    assert set(BUILTIN) <= set(known_primitives())
    for name in BUILTIN:
        declaration = get_primitive(name)
        assert callable(declaration.build) and declaration.short and declaration.name == name


def test_old_import_path_still_gives_the_layers():
    from nas import blocks

    assert blocks.conv_bn is conv_bn and blocks.build_block is build_block


def _grid():
    cases = []
    for prim in BUILTIN:
        attr_grid = [(False, "relu", 3, 1)]
        if prim != "skip":
            attr_grid = [
                (se, act, k, e)
                for (se, act), (k, e) in zip(
                    itertools.product((False, True), ACTIVATIONS), itertools.cycle([(3, 1), (5, 3), (7, 6)])
                )
            ]
        for stride, (c_in, c_out), (se, act, k, e) in itertools.product((1, 2), SHAPES, attr_grid):
            cases.append((prim, stride, c_in, c_out, se, act, k, e))
    return cases


@pytest.mark.parametrize("prim, stride, c_in, c_out, se, act, kernel, expansion", _grid())
def test_every_primitive_builds_and_runs(prim, stride, c_in, c_out, se, act, kernel, expansion):
    torch.manual_seed(0)
    spec = spec_for(prim, kernel=kernel, expansion=expansion, se=se, act=act)
    block = build_block(spec, c_in, c_out, stride)
    assert isinstance(block, Primitive)
    x = torch.randn(2, c_in, 8, 8)
    for mode in (True, False):
        block.train(mode)
        y = block(x)
        assert y.shape == (2, c_out, 8 // stride, 8 // stride)
        assert torch.isfinite(y).all()
    # the declared attributes really shape the module
    modules = list(block.modules())
    if prim != "skip":
        assert any(isinstance(m, SqueezeExcite) for m in modules) == se
        assert any(isinstance(m, ACT_TYPES[act]) for m in modules)
        others = set(ACT_TYPES.values()) - {ACT_TYPES[act]}
        assert not any(
            type(m) in others
            for m in modules
            if not isinstance(m, SqueezeExcite) and not _inside_se(block, m)
        )
        convs = [m for m in modules if isinstance(m, nn.Conv2d) and not _inside_se(block, m)]
        assert any(m.kernel_size == (kernel, kernel) for m in convs)
        assert sum(m.stride == (stride, stride) for m in convs if stride == 2) == (1 if stride == 2 else 0)
    # gradients flow to every parameter
    if not list(block.parameters()):
        assert prim == "skip" and c_in == c_out and stride == 1
        return
    block.train()
    block(x).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, name


def _inside_se(block: nn.Module, module: nn.Module) -> bool:
    return any(module is m for se in block.modules() if isinstance(se, SqueezeExcite) for m in se.modules())


def _zero_last_bn(block: nn.Module) -> None:
    bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    nn.init.zeros_(bns[-1].weight)
    nn.init.zeros_(bns[-1].bias)


@pytest.mark.parametrize("prim", BUILTIN)
@pytest.mark.parametrize("stride, c_in, c_out", [(1, 16, 16), (1, 16, 24), (2, 16, 16), (2, 16, 24)])
def test_residual_exactly_when_shapes_match(prim, stride, c_in, c_out):
    block = build_block(spec_for(prim, se=True), c_in, c_out, stride)
    expected = stride == 1 and c_in == c_out and prim not in ("dwsep", "skip")
    assert block.use_residual is expected
    if prim == "skip":
        return
    # functional check: with the body's output forced to zero, a residual block is the identity
    _zero_last_bn(block)
    block.eval()
    x = torch.randn(2, c_in, 8, 8)
    with torch.no_grad():
        y = block(x)
    if expected:
        torch.testing.assert_close(y, x)
    else:
        body = block.body(x) if y.shape == x.shape else None
        assert y.shape != x.shape or torch.equal(y, body)
        assert not (y.shape == x.shape and torch.allclose(y, x))


def test_residual_adds_input_to_body():
    torch.manual_seed(1)
    block = build_block(spec_for("mbconv", expansion=6, se=True, act="hardswish"), 16, 16, 1).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.body(x) + x)


@pytest.mark.parametrize("c_in, c_out, stride", [(16, 16, 1), (16, 24, 1), (16, 16, 2), (24, 16, 2)])
def test_skip_is_identity_or_pointwise_conv(c_in, c_out, stride):
    block = build_block(BlockSpec(primitive="skip"), c_in, c_out, stride)
    if stride == 1 and c_in == c_out:
        assert isinstance(block.body, nn.Identity)
        x = torch.randn(2, c_in, 8, 8)
        assert torch.equal(block(x), x)
        assert sum(p.numel() for p in block.parameters()) == 0
    else:
        assert isinstance(block.body, nn.Sequential)
        conv, bn, act = block.body
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and isinstance(act, nn.ReLU)
        assert conv.kernel_size == (1, 1) and conv.stride == (stride, stride)
        assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
        assert conv.bias is None


def test_channel_shuffle_order_groups_2():
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(2, 6, 3, 3).contiguous()
    y = ChannelShuffle(2)(x)
    assert y.shape == x.shape
    assert y[0, :, 0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    assert torch.equal(y[1], y[0])
    assert torch.equal(y[:, :, 0, 0, None, None].expand_as(y), y)  # spatial content untouched


def test_channel_shuffle_order_groups_3_and_spatial_values():
    x = torch.randn(2, 6, 4, 5)
    y = ChannelShuffle(3)(x)
    order = [0, 2, 4, 1, 3, 5]
    assert torch.equal(y, x[:, order])
    assert torch.equal(ChannelShuffle(1)(x), x)


def test_channel_shuffle_works_on_channels_last_input():
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    y = ChannelShuffle(2)(x)
    assert torch.equal(y, x[:, [0, 4, 1, 5, 2, 6, 3, 7]])


def test_shuffle_bottleneck_structure():
    block = build_block(spec_for("shuffle_bottleneck", kernel=5, expansion=1, groups=2), 16, 24, 2)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [2, 16, 2]
    assert [c.kernel_size for c in convs] == [(1, 1), (5, 5), (1, 1)]
    assert any(isinstance(m, ChannelShuffle) for m in block.modules())
    plain = build_block(spec_for("shuffle_bottleneck", expansion=6, groups=1), 16, 16, 1)
    assert not any(isinstance(m, ChannelShuffle) for m in plain.modules())
    assert [m.out_channels for m in plain.modules() if isinstance(m, nn.Conv2d)] == [96, 96, 16]


def test_mbconv_expansion_one_has_no_expand_conv():
    e1 = build_block(spec_for("mbconv", expansion=1), 16, 24, 1)
    e6 = build_block(spec_for("mbconv", expansion=6), 16, 24, 1)
    assert len([m for m in e1.modules() if isinstance(m, nn.Conv2d)]) == 2
    assert [m.out_channels for m in e6.modules() if isinstance(m, nn.Conv2d)] == [96, 96, 24]


def test_squeeze_excite_gates_channels():
    se = SqueezeExcite(16)
    assert se.fc1.out_channels == make_divisible(16 / 4) == 8
    x = torch.rand(2, 16, 5, 5)
    y = se(x)
    assert y.shape == x.shape
    gate = y / x
    # one gate per (sample, channel), constant over space, in [0, 1] (hard sigmoid)
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))
    assert ((gate >= 0) & (gate <= 1)).all()


@pytest.mark.parametrize(
    "value, expected", [(16, 16), (4, 8), (24 * 6, 144), (13, 16), (12, 16), (11, 16), (100, 104), (36, 40)]
)
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
    assert make_divisible(value) % 8 == 0 and make_divisible(value) >= 0.9 * value


def test_conv_bn_unit():
    unit = conv_bn(8, 16, 3, 2, act="relu6")
    conv, bn, act = unit
    assert conv.padding == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert bn.num_features == 16 and isinstance(act, nn.ReLU6)
    assert len(conv_bn(8, 16)) == 2


# ---------------------------------------------------------------- extension point


@pytest.fixture
def custom_primitive():
    """Declare a plain kxk conv primitive, and forget it afterwards."""
    name = "test_plain_conv"

    @declare_primitive(name, {"kernel", "activation"}, short="PC")
    def plain_conv(c_in, c_out, stride, spec):
        return conv_bn(c_in, c_out, spec.kernel, stride, act=spec.activation)

    try:
        yield name, plain_conv
    finally:
        forget_primitive(name)


def test_registered_primitive_usable_from_space_file(custom_primitive, tmp_path):
    name, _ = custom_primitive
    assert name in known_primitives()
    assert primitive_attributes(name) == {"kernel", "activation"}
    path = tmp_path / "custom.yaml"
    path.write_text(
        f"""\
name: custom
input: {{resolution: 16}}
stem: {{channels: 8, stride: 1}}
block_choices:
  primitive: [{name}]
  kernel: [3, 5]
  expansion: [3, 6]     # not used by {name}: never sampled
  activation: [relu, hardswish]
stages:
  - {{name: a, stride: 1, depth: [1, 2], width: 8}}
  - {{name: b, stride: 2, depth: 1, width: 16, primitive: [{name}, dwsep]}}
"""
    )
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(6):
        trial = study.ask()
        arch = space.sample(trial)
        assert not any(k.endswith(".expansion") for k in trial.params)
        model = build_model(arch, num_classes=3, seed=0)
        for stage in arch.stages:
            for block in stage.blocks:
                seen.add(block.primitive)
                if block.primitive == name:
                    assert block.expansion is None and block.se is None and block.groups is None
                    assert block.kernel in (3, 5)
        custom_blocks = [m for m in model.modules() if isinstance(m, Primitive) and m.primitive == name]
        assert len(custom_blocks) == sum(b.primitive == name for s in arch.stages for b in s.blocks) > 0
        # the residual rule applies to custom blocks too
        assert custom_blocks[0].use_residual  # stage a: 8 -> 8, stride 1
        out = model.eval()(torch.randn(2, 3, 16, 16))
        assert out.shape == (2, 3)
    assert name in seen


def test_unregistered_primitive_is_rejected_by_space(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\nstem: {channels: 8}\nstages:\n"
        "  - {name: a, stride: 1, depth: 1, width: 8, primitive: test_plain_conv}\n"
    )

    with pytest.raises(NasError, match="test_plain_conv"):
        load_space(path)


def test_declare_primitive_rejects_unknown_attributes():
    with pytest.raises(NasError, match="dilation"):

        @declare_primitive("test_bad_attrs", {"kernel", "dilation"})
        def bad(c_in, c_out, stride, spec):
            return None

    assert "test_bad_attrs" not in known_primitives()
