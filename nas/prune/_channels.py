"""Whole-channel removal from a built `Network`, and the `Architecture` that rebuilds what is left.

torch-pruning's dependency graph finds which layers share a channel (a convolution's outputs, its batch
norm, the next layer's inputs, every block joined by a residual add, the attention that gates them) and
removes a channel from all of them at once. A `Cut` is one such group with the channels to remove; before it
is applied its effect is known twice, cheaply: the architecture it leaves (to price it with a latency model)
and the loss without those channels (zeroing the group's batch-norm outputs is removing them: every
activation maps 0 to 0 and no convolution has a bias).

A grouped (not depthwise) convolution keeps its groups equal: a cut removes the same positions from
every group (`_periodic`), as torch-pruning's grouped-convolution handler assumes. Inside a
`shuffle_bottleneck` the channel shuffle reorders the inner channels, which torch-pruning's graph
passes through unchanged; the indices after the shuffle are mapped here (`_shuffled`), and the positions
are chosen so that the grouped convolution after the shuffle loses the same positions in every group too.

Only groups inside the built-in primitives are cut, never the channels an ECA attention runs its 1D
convolution along, nor an attention's inner layers (the spec keeps the width they were sized for,
`BlockSpec.attention_width`), and never a cut that would add or remove a shortcut: a block has an
identity path exactly when stride 1 and equal channel counts, so the rebuilt network would differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from nas.builder import (
    ChannelShuffle,
    CoordinateAttention,
    EfficientChannelAttention,
    SqueezeExcite,
    block_layout,
)
from nas.space import Architecture

BUILTIN_PRIMITIVES = frozenset({"mbconv", "fused_mbconv", "dwsep", "shuffle_bottleneck", "skip"})
_ATTENTIONS = (SqueezeExcite, EfficientChannelAttention, CoordinateAttention)
MIN_CHANNELS = 8


@dataclass
class Cut:
    """Remove `channels` (indices in the root convolution's outputs) from the group of `root`."""

    name: str  # the root convolution's module path
    before: int
    after: int
    group: object  # torch_pruning Group with the indices to remove
    arch: Architecture  # what the network is once cut


class ChannelPruner:
    """The dependency graph of `model` (a `nas.builder.Network`) and the cuts it allows."""

    def __init__(self, model: nn.Module, arch: Architecture):
        import torch_pruning as tp

        self.tp = tp
        self.model = model.eval()
        self.arch = arch
        example = torch.zeros(1, 3, arch.resolution, arch.resolution)
        self.graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        self.importance = tp.importance.GroupMagnitudeImportance(p=2)
        self.names = {module: name for name, module in model.named_modules()}
        self._inner = _attention_inner_layers(model)
        self._foreign = _foreign_modules(model, arch)
        self._after_shuffle = _after_shuffle(model)
        self._base = arch  # the architecture as given: what `architecture` describes changes against
        self._base_widths = self._widths()

    def cuts(self) -> list[Cut]:
        """Every allowed cut: each prunable group down to the next lower multiple of 8, the one below, and
        three quarters of its channels (so a wide group needs few steps)."""
        cuts = []
        ignored = [self.model.classifier, *self._inner]
        for group in self.graph.get_all_groups(ignored_layers=ignored, root_module_types=(nn.Conv2d,)):
            if not self._allowed(group):
                continue
            root = group[0].dep.target.module
            before = len(group[0].idxs)
            period = self._period(group, before)
            if period is None:
                continue
            importance = self.importance(group)
            for after in _steps(before):
                if (before - after) % period:
                    continue
                removed = _periodic(importance, period, before - after)
                cut_group = self._shuffled(
                    self.graph.get_pruning_group(root, group[0].dep.handler, removed), before
                )
                arch = self.architecture(_channels_after(cut_group, self.graph))
                if arch is not None:
                    cuts.append(Cut(self.names[root], before, after, cut_group, arch))
        return cuts

    def apply(self, cut: Cut) -> None:
        cut.group.prune()
        self.arch = cut.arch

    def masked(self, cut: Cut):
        """A context in which the model computes as if `cut` were applied (its batch-norm outputs zeroed)."""
        zeroed = {}
        for item in cut.group:
            module = item.dep.target.module
            if isinstance(module, nn.BatchNorm2d):
                zeroed.setdefault(module, set()).update(item.idxs)
        return _ZeroChannels({m: sorted(i) for m, i in zeroed.items()})

    def architecture(self, channels: dict[nn.Module, int] | None = None) -> Architecture | None:
        """The architecture of the model with each convolution's outputs as `channels` says (else as they
        are); None when a block would gain or lose its identity path."""
        channels = channels or {}
        widths = self._widths(channels)
        stem, c_in, stages, index = widths["stem"], widths["stem"], [], 0
        for stage_spec, stage in zip(self._base.stages, self.model.stages):
            blocks = []
            for spec, block in zip(stage_spec.blocks, stage):
                c_out, inner = widths["blocks"][index]
                changed = (c_in, inner) != (self._base_in(index), self._base_widths["blocks"][index][1])
                blocks.append(
                    replace(
                        spec,
                        channels=None if c_out == stage_spec.width else c_out,
                        expanded=inner if changed and inner is not None else spec.expanded,
                        attention_width=_attention_width(
                            block.body, lambda conv: channels.get(conv, conv.out_channels)
                        ),
                    )
                )
                c_in, index = c_out, index + 1
            stages.append(replace(stage_spec, blocks=tuple(blocks)))
        arch = replace(self._base, stem_channels=stem, stages=tuple(stages), head_width=widths["head"])
        for (_, _, a_in, a_out, stride), (_, _, b_in, b_out, _) in zip(
            block_layout(self._base), block_layout(arch)
        ):
            if stride == 1 and (a_in == a_out) != (b_in == b_out):
                return None
        return arch

    def _widths(self, channels: dict[nn.Module, int] | None = None) -> dict:
        """The stem's, head's and every block's (output, inner) channel counts, with `channels` applied."""
        channels = channels or {}

        def out(conv: nn.Conv2d) -> int:
            return channels.get(conv, conv.out_channels)

        stem = out(self.model.stem[0])
        blocks, c_in = [], stem
        for stage in self.model.stages:
            for block in stage:
                units = _conv_units(block.body)
                c_out = out(units[-1]) if units else c_in
                first = units[0] if units else None
                inner = out(first) if len(units) > 1 and first.groups != first.in_channels else None
                blocks.append((c_out, inner))
                c_in = c_out
        head = out(self.model.head[0]) if self._base.head_width else None
        return {"stem": stem, "blocks": blocks, "head": head}

    def _base_in(self, index: int) -> int:
        return self._base_widths["blocks"][index - 1][0] if index else self._base_widths["stem"]

    def _allowed(self, group) -> bool:
        for item in group:
            module = item.dep.target.module
            if module in self._foreign:
                return False
            if isinstance(module, nn.Conv1d):  # ECA's convolution runs along the channels: they stay
                return False
        return True

    def _period(self, group, channels: int) -> int | None:
        """How many equal segments of the group's channels a cut removes the same positions from: the
        least common multiple of its grouped convolutions' groups, squared for the inner channels of a
        shuffle (the grouped convolutions on both sides see them in another order); None when the
        channels do not split so."""
        period = 1
        for item in group:
            module = item.dep.target.module
            if isinstance(module, nn.Conv2d) and 1 < module.groups < module.in_channels:
                inner = module in self._after_shuffle and self._is_inner(item)
                period = math.lcm(period, module.groups**2 if inner else module.groups)
        return period if channels % period == 0 else None

    def _is_inner(self, item) -> bool:
        """`item` (after a shuffle) prunes the shuffled inner channels, not the block's output channels."""
        module = item.dep.target.module
        last_conv = self._after_shuffle[module][1]
        return module is not last_conv or not self.graph.is_out_channel_pruning_fn(item.dep.handler)

    def _shuffled(self, group, channels: int):
        """`group` with the indices of the layers after a channel shuffle mapped through it (torch-pruning
        passes them through unchanged); a group without a shuffle is returned as it is."""
        from torch_pruning._helpers import GroupItem

        for index, item in enumerate(group):
            module = item.dep.target.module
            if module in self._after_shuffle and self._is_inner(item):
                groups = self._after_shuffle[module][0]
                group[index] = GroupItem(item.dep, sorted(_shuffle(i, groups, channels) for i in item.idxs))
        return group


def _periodic(importance: torch.Tensor, period: int, removed: int) -> list[int]:
    """`removed` channel indices, the same positions in each of `period` equal segments: the positions of
    least summed importance."""
    channels = importance.numel()
    width = channels // period
    per_position = importance.reshape(period, width).sum(dim=0)
    positions = torch.argsort(per_position).tolist()[: removed // period]
    return sorted(segment * width + p for segment in range(period) for p in positions)


def _shuffle(index: int, groups: int, channels: int) -> int:
    """Where `ChannelShuffle(groups)` moves channel `index` of `channels`."""
    per_group = channels // groups
    return (index % per_group) * groups + index // per_group


def _after_shuffle(model: nn.Module) -> dict[nn.Module, tuple[int, nn.Module]]:
    """Every module after a `ChannelShuffle` in a block's body -> (the shuffle's groups, the body's last
    convolution)."""
    found = {}
    for body in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        units = list(body)
        shuffles = [i for i, unit in enumerate(units) if isinstance(unit, ChannelShuffle)]
        if not shuffles:
            continue
        last = _conv_units(body)[-1]
        groups = units[shuffles[0]].groups
        for unit in units[shuffles[0] + 1 : -1]:  # the depthwise convolution, the attention
            found.update({module: (groups, last) for module in unit.modules()})
        found[last] = (groups, last)  # its inputs only: its outputs (and batch norm) are the block's
    return found


def _steps(before: int) -> list[int]:
    top = (before - 1) // MIN_CHANNELS * MIN_CHANNELS
    quarter = int(0.75 * before) // MIN_CHANNELS * MIN_CHANNELS
    return sorted({c for c in (top, top - MIN_CHANNELS, quarter) if MIN_CHANNELS <= c < before}, reverse=True)


def _attention_inner_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose outputs are an attention's own inner width (kept as sized)."""
    inner = []
    for module in model.modules():
        if isinstance(module, SqueezeExcite):
            inner.append(module.fc1)
        elif isinstance(module, CoordinateAttention):
            inner.append(module.reduce[0])
    return inner


def _foreign_modules(model: nn.Module, arch: Architecture) -> set[nn.Module]:
    """The modules of blocks of other (user) primitives: a cut never changes them."""
    foreign = set()
    for stage_spec, stage in zip(arch.stages, model.stages):
        for spec, block in zip(stage_spec.blocks, stage):
            if spec.primitive not in BUILTIN_PRIMITIVES:
                foreign.update(block.modules())
    return foreign


def _conv_units(body: nn.Module) -> list[nn.Conv2d]:
    """The block's main convolutions in order (each `conv_bn`'s), not those inside its attention."""
    if isinstance(body, nn.Sequential) and body and isinstance(body[0], nn.Conv2d):
        return [body[0]]  # the body is one conv_bn (skip with a projection)
    if not isinstance(body, nn.Sequential):
        return []
    return [unit[0] for unit in body if isinstance(unit, nn.Sequential) and isinstance(unit[0], nn.Conv2d)]


def _attention_width(body: nn.Module, out) -> int | None:
    """The width an attention was sized for, when it now gates fewer channels."""
    if not isinstance(body, nn.Sequential):
        return None
    previous = None
    for unit in body:
        if isinstance(unit, _ATTENTIONS):
            return None if out(previous) == unit.sized_for else unit.sized_for
        if isinstance(unit, nn.Sequential) and isinstance(unit[0], nn.Conv2d):
            previous = unit[0]
    return None


def _channels_after(group, graph) -> dict[nn.Module, int]:
    """Each convolution's output count once `group` is removed."""
    channels = {}
    for item in group:
        module = item.dep.target.module
        if isinstance(module, nn.Conv2d) and graph.is_out_channel_pruning_fn(item.dep.handler):
            channels[module] = module.out_channels - len(item.idxs)
    return channels


class _ZeroChannels:
    def __init__(self, zeroed: dict[nn.Module, list[int]]):
        self.zeroed = zeroed
        self.handles = []

    def __enter__(self):
        for module, idxs in self.zeroed.items():
            self.handles.append(module.register_forward_hook(_zero_hook(idxs)))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def _zero_hook(idxs: list[int]):
    def hook(module, inputs, output):
        output = output.clone()
        output[:, idxs] = 0
        return output

    return hook
