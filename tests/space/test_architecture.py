"""Architecture / StageSpec / BlockSpec: plain immutable values with JSON round-trip and a stable hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.space import Architecture, BlockSpec, StageSpec

REPO = Path(__file__).resolve().parents[2]


def make_arch() -> Architecture:
    mb = BlockSpec(primitive="mbconv", kernel=5, expansion=6, se=True, activation="hardswish")
    dw = BlockSpec(primitive="dwsep", kernel=3, se=False, activation="relu")
    sh = BlockSpec(
        primitive="shuffle_bottleneck", kernel=3, expansion=1, groups=2, se=False, activation="relu6"
    )
    return Architecture(
        space="unit",
        resolution=32,
        stem_channels=16,
        stem_kernel=3,
        stem_stride=2,
        stem_activation="hardswish",
        stages=(
            StageSpec(name="s1", stride=1, width=16, blocks=(dw,)),
            StageSpec(name="s2", stride=2, width=24, blocks=(mb, mb)),
            StageSpec(name="s3", stride=2, width=40, blocks=(sh, BlockSpec(primitive="skip"))),
        ),
        head_width=256,
        head_activation="hardswish",
        dropout=0.1,
    )


# The canonical JSON of make_arch() and its hash, pinned: a change here silently renames every stored
# candidate (result files, caches, dedup across runs), so it must be deliberate.
KNOWN_HASH = "89f291d235ab"


def test_json_round_trip_gives_equal_value():
    arch = make_arch()
    again = Architecture.from_json(arch.to_json())
    assert again == arch
    assert again.hash == arch.hash
    assert isinstance(again.stages, tuple) and all(isinstance(s.blocks, tuple) for s in again.stages)
    assert isinstance(again.stages[1].blocks[0], BlockSpec)
    # dict round trip and an indented JSON as well
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert Architecture.from_json(arch.to_json(indent=2)) == arch
    # the value survives a trip through a real json.loads/json.dumps of the dict too
    assert Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch


def test_round_trip_keeps_none_attributes_and_depth():
    arch = make_arch()
    again = Architecture.from_json(arch.to_json())
    assert again.stages[0].blocks[0].expansion is None
    assert again.stages[2].blocks[1] == BlockSpec(primitive="skip")
    assert again.depth == arch.depth == 5
    assert [s.depth for s in again.stages] == [1, 2, 2]
    none_head = dataclasses.replace(arch, head_width=None)
    assert Architecture.from_json(none_head.to_json()).head_width is None


def test_to_json_is_canonical():
    arch = make_arch()
    text = arch.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True)
    # equal values built independently give identical JSON
    assert make_arch().to_json() == text


def test_hash_is_sha256_prefix_of_canonical_json():
    arch = make_arch()
    expected = hashlib.sha256(arch.to_json().encode()).hexdigest()[:12]
    assert arch.hash == expected
    assert len(arch.hash) == 12 and all(c in "0123456789abcdef" for c in arch.hash)


def test_hash_is_pinned():
    assert make_arch().hash == KNOWN_HASH


def test_hash_is_stable_across_processes():
    """Python's str hash is salted per process; the content hash must not be."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from nas.space import Architecture; "
        "print(Architecture.from_json(sys.stdin.read()).hash)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO)],
        input=make_arch().to_json(),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == make_arch().hash


def _variants(arch: Architecture):
    """One architecture per single-field change (top level, stage level, block level)."""
    top = {
        "space": "other",
        "resolution": 24,
        "stem_channels": 24,
        "stem_kernel": 5,
        "stem_stride": 1,
        "stem_activation": "relu",
        "head_width": 512,
        "head_activation": "relu",
        "dropout": 0.2,
        "exits": ("s2",),  # an early exit after s2
    }
    for name, value in top.items():
        yield f"top.{name}", dataclasses.replace(arch, **{name: value})
    yield "top.head_width=None", dataclasses.replace(arch, head_width=None)
    stage = arch.stages[1]
    stage_changes = {"name": "x2", "stride": 1, "width": 32, "blocks": stage.blocks[:1]}
    for name, value in stage_changes.items():
        stages = list(arch.stages)
        stages[1] = dataclasses.replace(stage, **{name: value})
        yield f"stage.{name}", dataclasses.replace(arch, stages=tuple(stages))
    yield "stages.order", dataclasses.replace(arch, stages=arch.stages[::-1])
    yield "stages.dropped", dataclasses.replace(arch, stages=arch.stages[:2])
    block = stage.blocks[1]
    block_changes = {
        "primitive": "fused_mbconv",
        "kernel": 7,
        "expansion": 3,
        "groups": 2,
        "se": False,
        "activation": "relu",
        "channels": 16,  # the channel counts a pruning leaves
        "expanded": 40,
        "attention_width": 48,
    }
    for name, value in block_changes.items():
        stages = list(arch.stages)
        stages[1] = dataclasses.replace(
            stage, blocks=(stage.blocks[0], dataclasses.replace(block, **{name: value}))
        )
        yield f"block.{name}", dataclasses.replace(arch, stages=tuple(stages))


def test_hash_changes_when_any_field_changes():
    arch = make_arch()
    seen = {arch.hash: "original"}
    for label, variant in _variants(arch):
        assert variant != arch, label
        assert variant.hash != arch.hash, f"hash unchanged after changing {label}"
        assert variant.hash not in seen or seen[variant.hash] == label, (label, seen[variant.hash])
        seen[variant.hash] = label
    # every field of every dataclass was covered by at least one variant
    covered = {label.split(".", 1)[1].split("=")[0] for label, _ in _variants(arch)}
    for cls in (Architecture, StageSpec, BlockSpec):
        missing = {f.name for f in dataclasses.fields(cls)} - covered - {"stages"}
        assert not missing, f"{cls.__name__} fields not covered: {missing}"


@pytest.mark.parametrize(
    "obj, field",
    [
        (make_arch(), "resolution"),
        (make_arch(), "stages"),
        (make_arch().stages[0], "width"),
        (make_arch().stages[0], "blocks"),
        (make_arch().stages[1].blocks[0], "kernel"),
        (BlockSpec(primitive="skip"), "primitive"),
    ],
)
def test_values_are_frozen(obj, field):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, None)


def test_values_are_hashable_and_containers_are_tuples():
    arch = make_arch()
    assert {arch, make_arch()} == {arch}
    assert hash(arch) == hash(make_arch())
    assert isinstance(arch.stages, tuple)
    # blocks are tuples, so a stage cannot be mutated through its block list either
    with pytest.raises((TypeError, AttributeError)):
        arch.stages[1].blocks.append(BlockSpec(primitive="skip"))  # type: ignore[attr-defined]


def test_from_dict_rejects_unknown_top_level_fields():
    data = make_arch().to_dict()
    data["colour"] = "blue"
    with pytest.raises(ValueError, match="colour"):
        Architecture.from_dict(data)
    with pytest.raises(ValueError, match="colour"):
        Architecture.from_json(json.dumps(data))


def test_from_dict_rejects_unknown_block_fields():
    data = make_arch().to_dict()
    data["stages"][0]["blocks"][0]["dilation"] = 2
    with pytest.raises(TypeError, match="dilation"):
        Architecture.from_dict(data)


def test_from_dict_rejects_missing_fields():
    data = make_arch().to_dict()
    del data["dropout"]
    with pytest.raises(TypeError, match="dropout"):
        Architecture.from_dict(data)


def test_from_dict_does_not_mutate_its_input():
    data = make_arch().to_dict()
    snapshot = json.dumps(data, sort_keys=True)
    Architecture.from_dict(data)
    assert json.dumps(data, sort_keys=True) == snapshot


def test_summary_is_one_line_and_reflects_blocks():
    arch = make_arch()
    text = arch.summary()
    assert isinstance(text, str) and text and "\n" not in text
    for stage in arch.stages:
        assert str(stage.width) in text
    stage = arch.stages[1]
    changed = dataclasses.replace(
        arch,
        stages=(
            arch.stages[0],
            dataclasses.replace(stage, blocks=(dataclasses.replace(stage.blocks[0], kernel=7),) * 2),
            arch.stages[2],
        ),
    )
    assert changed.summary() != text


def test_equal_architectures_have_equal_hash():
    arch = make_arch()
    stage = arch.stages[1]
    as_float = tuple(dataclasses.replace(b, expansion=float(b.expansion)) for b in stage.blocks)
    other = dataclasses.replace(
        arch, stages=(arch.stages[0], dataclasses.replace(stage, blocks=as_float), arch.stages[2])
    )
    assert other == arch
    assert other.hash == arch.hash
