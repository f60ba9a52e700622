"""`Architecture` -> `torch.nn.Module`, and the layers every primitive is made of.

A block is the body its primitive's declaration builds (`nas.space.declare_primitive`), wrapped in a
`Primitive` that adds the identity shortcut when the declaration allows it and the shapes match.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from nas.space import Architecture, BlockSpec, get_primitive

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def conv_bn(
    c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: str | None = None
) -> nn.Sequential:
    """Conv (no bias) -> BN [-> activation]: the unit every primitive is made of."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(activation(act))
    return nn.Sequential(*layers)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor` without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excitation: channel attention with a hard-sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4, sized_for: int | None = None):
        super().__init__()
        self.sized_for = sized_for or channels
        hidden = make_divisible(self.sized_for / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al. 2020): channel attention without a bottleneck, a 1D convolution across the pooled
    channels (kernel odd, growing with log2 of the channels) and a sigmoid gate; k parameters."""

    def __init__(self, channels: int, sized_for: int | None = None):
        super().__init__()
        self.sized_for = sized_for or channels
        k = int(abs((math.log2(self.sized_for) + 1) / 2))
        k = k if k % 2 else k + 1
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.pool(x).flatten(1).unsqueeze(1))  # over N x 1 x C: the channels as a sequence
        return x * self.gate(y).transpose(1, 2).unsqueeze(-1)


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al. 2021): pools along each spatial axis, a shared 1x1 conv + BN +
    Hardswish over both, then one sigmoid gate per axis, so the attention keeps where along H and W."""

    def __init__(self, channels: int, reduction: int = 32, sized_for: int | None = None):
        super().__init__()
        self.sized_for = sized_for or channels
        mid = max(8, self.sized_for // reduction)
        self.reduce = conv_bn(channels, mid, act="hardswish")
        self.conv_h = nn.Conv2d(mid, channels, 1)
        self.conv_w = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pooled_h = x.mean(3, keepdim=True)  # N x C x H x 1
        pooled_w = x.mean(2, keepdim=True).transpose(2, 3)  # N x C x W x 1
        y_h, y_w = torch.split(self.reduce(torch.cat([pooled_h, pooled_w], dim=2)), [h, w], dim=2)
        return x * self.gate(self.conv_h(y_h)) * self.gate(self.conv_w(y_w.transpose(2, 3)))


_ATTENTION: dict[object, Callable[[int], nn.Module]] = {
    True: SqueezeExcite,
    "eca": EfficientChannelAttention,
    "coord": CoordinateAttention,
}


def optional_se(channels: int, spec: BlockSpec) -> list[nn.Module]:
    """The attention the block's `se` names (true: SqueezeExcite, "eca", "coord"), or [] for false: spliced
    into a primitive's Sequential. Its inner layers are sized for `spec.attention_width` when a pruning
    left fewer channels than it was built for (`sized_for`), else for `channels`."""
    return [_ATTENTION[spec.se](channels, sized_for=spec.attention_width)] if spec.se else []


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle, so grouped 1x1 convs exchange information between groups."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Primitive(nn.Module):
    """A block: `body` computes it; the identity shortcut is added when `use_residual`."""

    def __init__(self, name: str, body: nn.Module, use_residual: bool):
        super().__init__()
        self.primitive = name
        self.body = body
        self.use_residual = use_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


def build_block(spec: BlockSpec, c_in: int, c_out: int, stride: int) -> Primitive:
    """The block `spec` from its primitive's declaration."""
    declaration = get_primitive(spec.primitive)
    body = declaration.build(c_in, c_out, stride, spec)
    return Primitive(spec.primitive, body, declaration.residual and stride == 1 and c_in == c_out)


class Network(nn.Module):
    """stem -> stages of blocks -> [1x1 head conv] -> global average pool -> dropout -> classifier."""

    def __init__(self, arch: Architecture, num_classes: int):
        super().__init__()
        self.arch = arch
        self.stem = conv_bn(
            3, arch.stem_channels, arch.stem_kernel, arch.stem_stride, act=arch.stem_activation
        )
        stages: list[list[Primitive]] = [[] for _ in arch.stages]
        c_in = arch.stem_channels
        for index, block, c_in, c_out, stride in block_layout(arch):
            stages[index].append(build_block(block, c_in, c_out, stride))
            c_in = c_out
        self.stages = nn.Sequential(*(nn.Sequential(*blocks) for blocks in stages))
        if arch.head_width:
            self.head = conv_bn(c_in, arch.head_width, act=arch.head_activation)
            c_in = arch.head_width
        else:
            self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(arch.dropout)
        self.classifier = nn.Linear(c_in, num_classes)
        if arch.exits:  # only then: a network without exits keeps its modules and state_dict keys
            self.exits = nn.ModuleDict(
                {name: ExitHead(stage_channels(arch)[name], num_classes) for name in arch.exits}
            )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The final exit's logits (the whole network; early-exit heads, if any, are not run)."""
        x = self.pool(self.head(self.stages(self.stem(x))))
        return self.classifier(self.dropout(torch.flatten(x, 1)))

    def forward_exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The logits of every exit, earliest first, the final exit last (joint training, calibration)."""
        outputs = []
        x = self.stem(x)
        for spec, stage in zip(self.arch.stages, self.stages):
            x = stage(x)
            if spec.name in self.arch.exits:
                outputs.append(self.exits[spec.name](x))
        x = self.pool(self.head(x))
        outputs.append(self.classifier(self.dropout(torch.flatten(x, 1))))
        return outputs


class ExitHead(nn.Module):
    """An early exit: global average pool + linear classifier on a stage's output."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


def stage_channels(arch: Architecture) -> dict[str, int]:
    """Each stage's output channels (its last block's)."""
    channels = {}
    for index, _, _, c_out, _ in block_layout(arch):
        channels[arch.stages[index].name] = c_out
    return channels


def build_model(arch: Architecture, num_classes: int, seed: int | None = None) -> Network:
    """Build the network; with `seed`, its initial weights are reproducible."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Network(arch, num_classes)
    return Network(arch, num_classes)


def block_layout(arch: Architecture):
    """(stage index, block, c_in, c_out, stride) of every block in order: the one statement of how channels
    flow. A block outputs its stage's width, unless a pruning left it fewer (`block.channels`)."""
    c_in = arch.stem_channels
    for index, stage in enumerate(arch.stages):
        for i, block in enumerate(stage.blocks):
            c_out = block.channels or stage.width
            yield index, block, c_in, c_out, stage.stride if i == 0 else 1
            c_in = c_out


def _out_size(size: int, stride: int) -> int:
    return -(-size // stride)  # every part pads k // 2 with odd kernels: ceil(size / stride)


def network_parts(
    arch: Architecture, num_classes: int
) -> list[tuple[tuple, Callable[[], nn.Module], tuple[int, ...]]]:
    """The network as independent parts (stem, every block, head with pool and classifier): (key, build,
    input shape) each. Anything additive over the network (graph features, params, MACs) is the sum over
    its parts, and a space reuses the same part (same key) across many candidates, so callers cache per
    key; tests check the sums against the whole network."""
    size, channels = arch.resolution, arch.stem_channels
    parts = [
        (
            ("stem", channels, arch.stem_kernel, arch.stem_stride, arch.stem_activation, size),
            lambda: conv_bn(3, channels, arch.stem_kernel, arch.stem_stride, act=arch.stem_activation),
            (1, 3, size, size),
        )
    ]
    size = _out_size(size, arch.stem_stride)
    c_in = channels
    for _, block, c_in, c_out, stride in block_layout(arch):
        parts.append(
            (
                ("block", block, c_in, c_out, stride, size),
                lambda b=block, c=c_in, w=c_out, s=stride: build_block(b, c, w, s),
                (1, c_in, size, size),
            )
        )
        size, c_in = _out_size(size, stride), c_out

    def head(c=c_in):
        conv = conv_bn(c, arch.head_width, act=arch.head_activation) if arch.head_width else nn.Identity()
        return nn.Sequential(
            conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(arch.head_width or c, num_classes)
        )

    parts.append(
        (
            ("head", arch.head_width, arch.head_activation, c_in, size, num_classes),
            head,
            (1, c_in, size, size),
        )
    )
    return parts


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
