"""`Architecture` -> `torch.nn.Module`."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nas.blocks import build_block, conv_bn
from nas.space import Architecture


class Network(nn.Module):
    """stem -> stages of blocks -> [1x1 head conv] -> global average pool -> dropout -> classifier."""

    def __init__(self, arch: Architecture, num_classes: int):
        super().__init__()
        self.arch = arch
        self.stem = conv_bn(
            3, arch.stem_channels, arch.stem_kernel, arch.stem_stride, act=arch.stem_activation
        )
        stages, c_in = [], arch.stem_channels
        for stage in arch.stages:
            blocks = []
            for i, block in enumerate(stage.blocks):
                blocks.append(build_block(block, c_in, stage.width, stage.stride if i == 0 else 1))
                c_in = stage.width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        if arch.head_width:
            self.head = conv_bn(c_in, arch.head_width, act=arch.head_activation)
            c_in = arch.head_width
        else:
            self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(arch.dropout)
        self.classifier = nn.Linear(c_in, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.stages(self.stem(x))))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def build_model(arch: Architecture, num_classes: int, seed: int | None = None) -> Network:
    """Build the network; with `seed`, its initial weights are reproducible."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Network(arch, num_classes)
    return Network(arch, num_classes)


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
    for stage in arch.stages:
        for i, block in enumerate(stage.blocks):
            stride = stage.stride if i == 0 else 1
            parts.append(
                (
                    ("block", block, c_in, stage.width, stride, size),
                    lambda b=block, c=c_in, w=stage.width, s=stride: build_block(b, c, w, s),
                    (1, c_in, size, size),
                )
            )
            size, c_in = _out_size(size, stride), stage.width

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
