"""Channel cuts: every built-in primitive and attention, rebuilt from the pruned spec, is the cut network."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nas.builder import build_model
from nas.space import Architecture, BlockSpec, StageSpec

PRIMITIVES = [
    BlockSpec("mbconv", 3, 6.0, None, False, "relu"),
    BlockSpec("mbconv", 3, 1.0, None, False, "hardswish"),
    BlockSpec("fused_mbconv", 3, 3.0, None, False, "relu6"),
    BlockSpec("fused_mbconv", 3, 1.0, None, False, "relu"),
    BlockSpec("dwsep", 5, None, None, False, "relu"),
    BlockSpec("shuffle_bottleneck", 3, 3.0, 1, False, "relu"),
    BlockSpec("shuffle_bottleneck", 3, 3.0, 2, False, "relu"),
    BlockSpec("shuffle_bottleneck", 5, 1.0, 2, False, "relu"),
    BlockSpec("shuffle_bottleneck", 3, 2.0, 4, True, "relu"),
    BlockSpec("skip"),
]
ATTENTIONS = [True, "coord"]


def small(block: BlockSpec) -> Architecture:
    return Architecture(
        space="test",
        resolution=16,
        stem_channels=16,
        stem_kernel=3,
        stem_stride=1,
        stem_activation="relu",
        stages=(
            StageSpec("s1", 2, 32, (block, block)),
            StageSpec("s2", 2, 48, (block,)),
        ),
        head_width=64,
        head_activation="hardswish",
        dropout=0.0,
    )


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize(
    "block",
    PRIMITIVES + [replace(PRIMITIVES[0], se=se) for se in ATTENTIONS],
    ids=lambda b: f"{b.primitive}-e{b.expansion}-g{b.groups}-{b.se}",
)
def test_every_cut_rebuilds_from_its_spec_and_masking_predicts_it(block):
    from nas.prune._channels import ChannelPruner

    arch = small(block)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model = build_model(arch, num_classes=10, seed=0)
    pruner = ChannelPruner(model, arch)
    seen = set()
    while True:  # the first (smallest) cut of each group, in turn, each on what the previous left
        cut = next((c for c in pruner.cuts() if c.name not in seen), None)
        if cut is None:
            break
        seen.add(cut.name)
        with pruner.masked(cut):
            masked = _logits(model, x)
        pruner.apply(cut)
        assert pruner.arch.pruned or cut.name.startswith(("stem", "head"))
        rebuilt = build_model(Architecture.from_json(pruner.arch.to_json()), num_classes=10)
        rebuilt.load_state_dict(model.state_dict())  # strict: every name and shape
        assert torch.allclose(_logits(rebuilt, x), _logits(model, x), atol=1e-5)
        assert torch.allclose(masked, _logits(model, x), atol=1e-4)
    assert len(seen) >= 3, arch.summary()  # stem, head and at least one block group
    again = ChannelPruner(model, pruner.arch)  # a pruned network prunes again, from its own spec
    for cut in again.cuts()[:1]:
        again.apply(cut)
        build_model(again.arch, num_classes=10).load_state_dict(model.state_dict())


def test_eca_channels_stay_and_the_other_cuts_rebuild():
    from nas.prune._channels import ChannelPruner

    arch = small(replace(PRIMITIVES[0], se="eca"))  # its 1D convolution runs along the inner channels
    model = build_model(arch, num_classes=10, seed=0)
    pruner = ChannelPruner(model, arch)
    cuts = pruner.cuts()
    assert cuts and not any(c.name.endswith("body.0.0") for c in cuts)  # no block's inner width
    pruner.apply(cuts[-1])
    build_model(pruner.arch, num_classes=10).load_state_dict(model.state_dict())


def test_a_cut_that_would_add_a_shortcut_is_not_offered():
    from nas.prune._channels import ChannelPruner

    arch = small(PRIMITIVES[0])  # s1: stride 2 from 16 stem channels; stage widths 32, 48
    arch = replace(arch, stages=(replace(arch.stages[0], stride=1), arch.stages[1]))
    model = build_model(arch, num_classes=10, seed=0)
    cuts = ChannelPruner(model, arch).cuts()
    trunk = [c for c in cuts if c.arch.stages[0].blocks[0].channels is not None]
    assert trunk and all(c.after != 16 for c in trunk)  # 32 -> 16 would equal the stem: an identity path
    assert {c.after for c in trunk} == {24}  # 32 -> 24, and neither 16 nor (three quarters) 24 -> ... 16


def test_grouped_convolutions_lose_the_same_positions_in_every_group():
    from nas.prune._channels import ChannelPruner

    arch = small(PRIMITIVES[6])  # shuffle_bottleneck, groups 2: a shuffle between its grouped 1x1s
    model = build_model(arch, num_classes=10, seed=0)
    grouped = []
    for cut in ChannelPruner(model, arch).cuts():
        for item in cut.group:
            module = item.dep.target.module
            if isinstance(module, torch.nn.Conv2d) and 1 < module.groups < module.in_channels:
                out = cut.group._DG.is_out_channel_pruning_fn(item.dep.handler)
                size = (module.out_channels if out else module.in_channels) // module.groups
                per_group = [sorted(i % size for i in item.idxs if i // size == g) for g in range(2)]
                assert per_group[0] == per_group[1] and per_group[0], (cut.name, item.idxs)
                grouped.append(cut.name)
    inner = {name for name in grouped if name.endswith(("body.0.0", "body.2.0"))}
    assert inner and set(grouped) - inner  # the inner (shuffled) channels and the blocks' outputs
