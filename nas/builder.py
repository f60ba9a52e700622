"""`Architecture` -> `torch.nn.Module`."""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks import build_block, conv_bn
from nas.space import Architecture


class Network(nn.Module):
    """stem -> stages of blocks -> [1x1 head conv] -> global average pool -> dropout -> classifier."""

    def __init__(self, arch: Architecture, num_classes: int):
        super().__init__()
        self.arch = arch
        self.stem = conv_bn(3, arch.stem_channels, arch.stem_kernel, arch.stem_stride, act=arch.stem_activation)
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
