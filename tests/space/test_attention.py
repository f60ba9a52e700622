"""Attention choices beside squeeze-excitation: `se: [false, true, eca, coord]`, with old spaces, old run
directories and the hashes of existing architectures unchanged."""

from __future__ import annotations

import optuna
import pytest
import torch

from nas.builder import CoordinateAttention, EfficientChannelAttention, build_block, build_model
from nas.errors import NasError
from nas.evaluate import graph_memory
from nas.onnx_io import check_against_torch, export_onnx
from nas.space import ATTENTIONS, Architecture, BlockSpec, load_space

ATTENTION_SPACE = """\
name: attention
input: {resolution: 16}
stem: {channels: 16, kernel: 3, stride: 1, activation: relu}
block_choices:
  primitive: [mbconv, fused_mbconv, dwsep, shuffle_bottleneck]
  kernel: 3
  expansion: [1, 3]
  groups: 2
  se: [false, true, eca, coord]
  activation: relu
stages:
  - {name: a, stride: 1, depth: [1, 2], width: [16]}
  - {name: b, stride: 2, depth: [1], width: [24, 32]}
head: {width: null, activation: relu, dropout: 0.0}
"""


@pytest.fixture
def attention_space(tmp_path):
    path = tmp_path / "attention.yaml"
    path.write_text(ATTENTION_SPACE)
    return load_space(str(path))


def _sampled_hashes(space, seed=7, n=5):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()).hash for _ in range(n)]


def test_existing_architectures_keep_their_hashes():
    # Sampled from the built-in spaces before attention choices existed: the same trials, the same hashes.
    assert _sampled_hashes(load_space("mobilenet")) == [
        "1ab8baf163a2",
        "545a21c65070",
        "eda0347f9269",
        "2c1bdb472511",
        "dc1ba95e8225",
    ]
    assert _sampled_hashes(load_space("fbnet")) == [
        "ef8afbc47c4e",
        "4e6908338b1d",
        "53da0c2579a5",
        "b97d131c0367",
        "cd17bbc459fd",
    ]


def test_a_space_offers_attention_choices(attention_space):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        arch = attention_space.sample(study.ask())
        for stage in arch.stages:
            seen.update(block.se for block in stage.blocks)
        assert Architecture.from_json(arch.to_json()) == arch
    assert seen == {False, True, "eca", "coord"}
    labels = Architecture.from_dict(
        {
            **arch.to_dict(),
            "stages": [
                {
                    "name": "a",
                    "stride": 1,
                    "width": 16,
                    "blocks": [{"primitive": "dwsep", "kernel": 3, "se": se}],
                }
                for se in (True, "eca", "coord")
            ],
        }
    ).summary()
    assert labels == "DSk3se*1@16 DSk3eca*1@16 DSk3ca*1@16"


@pytest.mark.parametrize("value", ["maybe", 1, "ECA"])
def test_an_unknown_attention_is_one_line(tmp_path, value):
    path = tmp_path / "bad.yaml"
    path.write_text(ATTENTION_SPACE.replace("se: [false, true, eca, coord]", f"se: [false, {value}]"))
    with pytest.raises(
        NasError, match=r"bad.yaml:\d+: block_choices.se\[1\]: must be true, false, eca or coord"
    ):
        load_space(str(path))


def test_eca_kernel_grows_with_the_channels():
    assert [EfficientChannelAttention(c).conv.kernel_size[0] for c in (16, 48, 256, 1024)] == [3, 3, 5, 5]
    assert sum(p.numel() for p in EfficientChannelAttention(48).parameters()) == 3


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("primitive", ["mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck"])
def test_every_primitive_builds_exports_and_runs_each_attention(primitive, attention):
    spec = BlockSpec(primitive, kernel=3, expansion=3.0, groups=2, se=attention, activation="relu")
    block = build_block(spec, 16, 16, 1).eval()
    kind = EfficientChannelAttention if attention == "eca" else CoordinateAttention
    assert any(isinstance(m, kind) for m in block.modules())
    x = torch.randn(2, 16, 8, 8)
    assert block(x).shape == x.shape
    onnx_bytes = export_onnx(block, 0, fast=True, input_shape=(1, 16, 8, 8))
    assert graph_memory(onnx_bytes).peak_activation_bytes > 0


def test_a_network_with_attention_exports_like_torch(attention_space):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    arch = next(
        a
        for a in (attention_space.sample(study.ask()) for _ in range(100))
        if {b.se for s in a.stages for b in s.blocks} >= {"eca", "coord"}
    )
    model = build_model(arch, 10, seed=0).eval()
    onnx_bytes = export_onnx(model, arch.resolution, dynamic_batch=True)  # as `nas export` does
    assert check_against_torch(model, onnx_bytes, arch.resolution) < 1e-4


def test_latency_features_compose_and_profiles_refuse_what_they_never_measured(attention_space):
    from nas.latency import ArchitectureFeaturizer, check_space_coverage, graph_features, load_profile

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    featurizer = ArchitectureFeaturizer(10)
    for _ in range(3):  # every ONNX operator of the attentions has a latency kind; parts compose exactly
        arch = attention_space.sample(study.ask())
        whole = graph_features(export_onnx(build_model(arch, 10), arch.resolution, fast=True))
        composed = featurizer.features(arch)
        assert set(composed.kinds) == set(whole.kinds)
        for kind in whole.kinds:
            assert composed.kinds[kind] == pytest.approx(whole.kinds[kind]), kind
    # No shipped profile measured a sigmoid: predicting refuses, naming the attention that produces it.
    with pytest.raises(NasError) as refused:
        check_space_coverage(attention_space, load_profile("jetson-tx2"))
    message = str(refused.value)
    assert "\n" not in message and "activation_sigmoid" in message and "se coord/eca" in message, message
