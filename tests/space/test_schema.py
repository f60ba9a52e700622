"""Search-space files: the built-in spaces, sampling, and the `file:line: field: problem` errors."""

from __future__ import annotations

import re

import optuna
import pytest

from nas.errors import NasError
from nas.space import (
    Architecture,
    SearchSpace,
    known_primitives,
    list_spaces,
    load_space,
    primitive_attributes,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")


def sample_many(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[dict, Architecture]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        arch = space.sample(trial)
        out.append((dict(trial.params), arch))
    return out


# ---------------------------------------------------------------- built-in spaces


def test_builtin_spaces_load_and_are_listed():
    names = [s.name for s in list_spaces()]
    assert {"mobilenet", "fbnet"} <= set(names)
    assert names == sorted(names)
    for name in ("mobilenet", "fbnet"):
        space = load_space(name)
        assert isinstance(space, SearchSpace)
        assert space.name == name
        assert space.path.name == f"{name}.yaml"


def test_load_space_by_path(tmp_path):
    builtin = load_space("mobilenet")
    by_path = load_space(builtin.path)
    by_str = load_space(str(builtin.path))
    assert by_path.name == by_str.name == "mobilenet"
    assert by_path.stages == builtin.stages
    # a copy elsewhere, with a .yml suffix, loads too
    copy = tmp_path / "copy.yml"
    copy.write_text(builtin.path.read_text())
    assert load_space(copy).stages == builtin.stages


def test_unknown_space_name_lists_builtins():
    with pytest.raises(NasError) as info:
        load_space("no_such_space")
    msg = str(info.value)
    assert "no_such_space" in msg
    assert "fbnet" in msg and "mobilenet" in msg


def test_missing_space_file_is_a_nas_error(tmp_path):
    with pytest.raises(NasError, match="not found"):
        load_space(tmp_path / "absent.yaml")


def test_mobilenet_declared_choices():
    space = load_space("mobilenet")
    assert [s.name for s in space.stages] == ["s1", "s2", "s3", "s4"]
    assert [s.stride for s in space.stages] == [1, 2, 2, 1]
    assert all(s.choose == "per_stage" for s in space.stages)
    assert space.stem["stride"] == 2 and space.stem["channels"] == (16,)
    assert space.head_width == (256, 512)
    assert space.dropout == pytest.approx(0.1)
    for stage in space.stages:
        assert set(stage.block["primitive"]) == {"mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck"}
        assert stage.block["kernel"] == (3, 5, 7)
        assert stage.block["groups"] == (2,)


def test_mobilenet_samples_lie_in_declared_choices():
    space = load_space("mobilenet")
    declared = {s.name: s for s in space.stages}
    primitives_seen = set()
    for _, arch in sample_many(space, 40):
        assert arch.space == "mobilenet"
        assert arch.resolution == 32
        assert arch.stem_channels == 16 and arch.stem_stride == 2 and arch.stem_activation == "hardswish"
        assert arch.head_width in (256, 512)
        assert [s.name for s in arch.stages] == ["s1", "s2", "s3", "s4"]
        for stage in arch.stages:
            choices = declared[stage.name]
            assert stage.stride == choices.stride
            assert stage.depth in choices.depth
            assert stage.width in choices.width and stage.width % 8 == 0
            # per_stage: one block configuration shared by every block of the stage
            assert len(set(stage.blocks)) == 1
            block = stage.blocks[0]
            primitives_seen.add(block.primitive)
            assert block.primitive in choices.block["primitive"]
            assert block.kernel in (3, 5, 7)
            assert block.se in (False, True)
            assert block.activation in ("relu", "relu6", "hardswish")
            if block.primitive == "dwsep":
                assert block.expansion is None
            else:
                assert block.expansion in (1, 3, 6)
            if block.primitive == "shuffle_bottleneck":
                assert block.groups == 2
            else:
                assert block.groups is None
        # valid value: survives a JSON round trip
        assert Architecture.from_json(arch.to_json()) == arch
    assert primitives_seen == {"mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck"}


def test_unused_attributes_are_none():
    space = load_space("mobilenet")
    dwsep = {f"s{i}.primitive": "dwsep" for i in range(1, 5)}
    params = {**_first_choices(space), **dwsep}
    arch = space.sample(optuna.trial.FixedTrial(params))
    for stage in arch.stages:
        for block in stage.blocks:
            assert block.primitive == "dwsep"
            assert block.expansion is None and block.groups is None
            assert block.kernel is not None and block.se is not None and block.activation is not None


def _first_choices(space: SearchSpace) -> dict:
    params = {"head.width": space.head_width[0]}
    for s in space.stages:
        params[f"{s.name}.depth"] = s.depth[0]
        params[f"{s.name}.width"] = s.width[0]
        for attr, values in s.block.items():
            params[f"{s.name}.{attr}"] = values[0]
    return params


def test_only_multi_choice_parameters_become_trial_params():
    space = load_space("mobilenet")
    for params, arch in sample_many(space, 15, seed=1):
        expected = {"head.width"}
        for stage in arch.stages:
            expected |= {f"{stage.name}.depth", f"{stage.name}.width", f"{stage.name}.primitive"}
            used = primitive_attributes(stage.blocks[0].primitive)
            # groups has a single choice (2) and never becomes a parameter
            expected |= {
                f"{stage.name}.{a}" for a in ("kernel", "expansion", "se", "activation") if a in used
            }
        assert set(params) == expected
    fbnet = load_space("fbnet")
    for params, _ in sample_many(fbnet, 3):
        expected = {f"s{i}.b{j}.op" for i, d in enumerate((1, 4, 4, 4, 4, 4, 1)) for j in range(d)}
        assert set(params) == expected
        assert set(params.values()) <= set(FBNET_OPS)


def test_fbnet_space_matches_hw_nas_bench():
    space = load_space("fbnet")
    assert [s.width for s in space.stages] == [(16,), (24,), (32,), (64,), (112,), (184,), (352,)]
    assert [s.stride for s in space.stages] == [1, 1, 2, 2, 1, 2, 1]
    assert [s.depth for s in space.stages] == [(1,), (4,), (4,), (4,), (4,), (4,), (1,)]
    assert all(s.choose == "per_layer" and s.block == {"op": FBNET_OPS} for s in space.stages)
    assert space.stem == {"channels": (16,), "kernel": 3, "stride": 1, "activation": "relu"}
    assert space.head_width == (1504,)
    assert space.resolution == (32,)
    assert set(space.ops) == set(FBNET_OPS)
    assert space.ops["skip"].primitive == "skip" and space.ops["skip"].kernel is None
    for name, spec in space.ops.items():
        if name == "skip":
            continue
        assert spec.primitive == "shuffle_bottleneck"
        assert spec.activation == "relu" and spec.se is False
        assert spec.kernel == int(name[1])
        assert spec.expansion == int(name.split("_")[1][1:])
        assert spec.groups == (2 if name.endswith("_g2") else 1)


def test_fbnet_samples():
    space = load_space("fbnet")
    for _, arch in sample_many(space, 10, seed=3):
        assert arch.depth == 22
        assert [s.width for s in arch.stages] == [16, 24, 32, 64, 112, 184, 352]
        assert [s.stride for s in arch.stages] == [1, 1, 2, 2, 1, 2, 1]
        assert arch.stem_stride == 1 and arch.stem_channels == 16
        assert arch.head_width == 1504
        for stage in arch.stages:
            for block in stage.blocks:
                assert block in space.ops.values()
    # per_layer: with 22 independent 9-way choices, at least one sampled stage mixes blocks
    archs = [a for _, a in sample_many(space, 5, seed=4)]
    assert any(len(set(s.blocks)) > 1 for a in archs for s in a.stages)


@pytest.mark.parametrize("name", ["mobilenet", "fbnet"])
def test_fixed_trial_reproduces_the_architecture(name):
    space = load_space(name)
    for params, arch in sample_many(space, 8, seed=7):
        again = space.sample(optuna.trial.FixedTrial(params))
        assert again == arch
        assert again.hash == arch.hash


def test_resolution_and_stem_channels_as_choices(tmp_path):
    path = tmp_path / "res.yaml"
    path.write_text(
        "name: res\ninput: {resolution: [24, 32]}\nstem: {channels: [8, 16]}\n"
        "stages:\n  - {name: a, stride: 1, depth: 1, width: 8, primitive: dwsep, kernel: 3}\n"
    )
    space = load_space(path)
    results = sample_many(space, 20)
    for params, arch in results:
        assert set(params) == {"resolution", "stem.channels"}
        assert arch.resolution == params["resolution"] and arch.stem_channels == params["stem.channels"]
        assert arch.head_width is None
    assert {a.resolution for _, a in results} == {24, 32}


def test_per_layer_space_with_independent_attributes(tmp_path):
    path = tmp_path / "pl.yaml"
    path.write_text(
        "name: pl\nstem: {channels: 16}\n"
        "stages:\n  - {name: a, stride: 1, depth: 3, width: 16, choose: per_layer,"
        " primitive: [mbconv, skip], kernel: [3, 5]}\n"
    )
    space = load_space(path)
    for params, arch in sample_many(space, 10):
        assert {k.split(".")[1] for k in params} == {"b0", "b1", "b2"}
        for i, block in enumerate(arch.stages[0].blocks):
            assert block.primitive == params[f"a.b{i}.primitive"]
            if block.primitive == "skip":
                assert block == type(block)(primitive="skip")
                assert f"a.b{i}.kernel" not in params
            else:
                assert block.kernel == params[f"a.b{i}.kernel"]
                assert block.expansion == 1 and block.se is False and block.activation == "relu"


def test_stage_overrides_block_choices(tmp_path):
    path = tmp_path / "ovr.yaml"
    path.write_text(
        "name: o\nstem: {channels: 16}\nblock_choices: {primitive: mbconv, kernel: [3, 5], expansion: 6}\n"
        "stages:\n"
        "  - {name: a, stride: 1, depth: 1, width: 16}\n"
        "  - {name: b, stride: 2, depth: 1, width: 24, kernel: 7, expansion: [1, 3]}\n"
    )
    space = load_space(path)
    assert space.stages[0].block["kernel"] == (3, 5) and space.stages[0].block["expansion"] == (6,)
    assert space.stages[1].block["kernel"] == (7,) and space.stages[1].block["expansion"] == (1, 3)


def test_known_primitives():
    assert {"mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck", "skip"} <= set(known_primitives())
    assert primitive_attributes("dwsep") == {"kernel", "se", "activation"}
    assert primitive_attributes("skip") == frozenset()


# ---------------------------------------------------------------- errors: file:line: field: problem

BASE = """\
name: t
stem:
  channels: 16
ops:
  a: {primitive: skip}
  b: {primitive: mbconv, kernel: 3, expansion: 3}
stages:
  - {name: s1, stride: 1, depth: 1, width: 16, op: [a, b]}
  - name: s2
    stride: 2
    depth: [1, 2]
    width: [16, 24]
    kernel: [3, 5]
head:
  width: 64
  dropout: 0.1
"""


def test_base_error_fixture_is_valid(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    space = load_space(path)
    assert space.stages[1].block["kernel"] == (3, 5)


# (name, text, line, field path, fragment of the problem)
ERROR_CASES = [
    ("missing_stages", "name: t\nstem:\n  channels: 16\n", 1, "stages", "missing"),
    ("empty_stages", "name: t\nstem: {channels: 16}\nstages: []\n", 3, "stages", "at least one"),
    ("width_mult8", BASE.replace("width: [16, 24]", "width: [16, 20]"), 12, "stages[1].width[1]", "multiple"),
    ("stride3", BASE.replace("stride: 2", "stride: 3"), 10, "stages[1].stride", "stride"),
    (
        "primitive",
        BASE.replace("kernel: [3, 5]", "primitive: [mbconv, bogus]"),
        13,
        "stages[1].primitive[1]",
        "bogus",
    ),
    ("activation", BASE.replace("kernel: [3, 5]", "activation: swish"), 13, "stages[1].activation", "swish"),
    ("top_key", BASE + "extra: 1\n", 17, "extra", "unknown field"),
    ("stage_key", BASE.replace("kernel: [3, 5]", "kernal: [3, 5]"), 13, "stages[1].kernal", "unknown field"),
    ("empty_choices", BASE.replace("kernel: [3, 5]", "kernel: []"), 13, "stages[1].kernel", "empty"),
    ("repeated", BASE.replace("kernel: [3, 5]", "kernel: [3, 5, 3]"), 13, "stages[1].kernel", "repeated"),
    ("undefined_op", BASE.replace("op: [a, b]", "op: [a, c]"), 8, "stages[0].op[1]", "'c'"),
    ("kernel_even", BASE.replace("kernel: [3, 5]", "kernel: [3, 4]"), 13, "stages[1].kernel[1]", "odd"),
    ("dropout", BASE.replace("dropout: 0.1", "dropout: 1.5"), 16, "head.dropout", "1.5"),
    (
        "op_kernel_even",
        BASE.replace("kernel: 3, expansion", "kernel: 2, expansion"),
        6,
        "ops.b.kernel",
        "odd",
    ),
    ("stem_width", BASE.replace("channels: 16", "channels: 12"), 3, "stem.channels", "multiple"),
    (
        "head_key",
        BASE.replace("  dropout: 0.1", "  dropout: 0.1\n  pool: max"),
        17,
        "head.pool",
        "unknown field",
    ),
]


@pytest.mark.parametrize("name, text, line, field, problem", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_name_file_line_and_field(tmp_path, name, text, line, field, problem):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(NasError) as info:
        load_space(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: {field}: "), msg
    assert problem in msg


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("name: t\nstem: {channels: 16\nstages: []\n")
    with pytest.raises(NasError) as info:
        load_space(path)
    msg = str(info.value)
    assert re.match(rf"{re.escape(str(path))}:3: invalid YAML", msg), msg


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_non_mapping_top_level(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(NasError) as info:
        load_space(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "mapping" in msg


def test_error_in_nested_list_item_points_at_item_line(tmp_path):
    text = BASE.replace("width: [16, 24]", "width:\n      - 16\n      - 21")
    path = tmp_path / "item.yaml"
    path.write_text(text)
    with pytest.raises(NasError) as info:
        load_space(path)
    assert str(info.value).startswith(f"{path}:14: stages[1].width[1]: ")


def test_duplicate_stage_names_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(BASE.replace("name: s2", "name: s1"))
    with pytest.raises(NasError, match=r"stages: stage names must be unique"):
        load_space(path)


# ---------------------------------------------------------------- regressions of bugs found in review


def test_stage_primitive_overrides_default_op(tmp_path):
    path = tmp_path / "ovr_op.yaml"
    path.write_text(
        "name: t\nstem: {channels: 16}\nops:\n  a: {primitive: skip}\nblock_choices:\n  op: [a]\n"
        "stages:\n  - {name: s1, stride: 1, depth: 1, width: 16, primitive: mbconv, kernel: 5}\n"
    )
    try:
        space = load_space(path)
    except NasError:
        return  # rejecting the ambiguous stage is an acceptable fix too
    block = space.sample(optuna.trial.FixedTrial({})).stages[0].blocks[0]
    assert block.primitive == "mbconv" and block.kernel == 5


def test_error_in_block_choices_points_at_block_choices(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text(
        "name: t\nstem: {channels: 16}\nblock_choices:\n  kernel: [3, 4]\n"
        "stages:\n  - {name: s1, stride: 1, depth: 1, width: 16}\n"
    )
    with pytest.raises(NasError) as info:
        load_space(path)
    assert str(info.value).startswith(f"{path}:4: block_choices.kernel")


def test_stage_name_cannot_collide_with_parameter_names(tmp_path):
    path = tmp_path / "collide.yaml"
    path.write_text(
        "name: t\nstem: {channels: 16}\nstages:\n  - {name: head, stride: 1, depth: 1, width: [16, 24]}\n"
        "head: {width: [256, 512]}\n"
    )
    try:
        space = load_space(path)
    except NasError:
        return
    for _, arch in sample_many(space, 5):
        assert arch.stages[0].width in (16, 24) and arch.head_width in (256, 512)
