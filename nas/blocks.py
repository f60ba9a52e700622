"""The efficient primitives, registered by name.

Extension point: subclass `Primitive`, decorate it with `@register_primitive("name", attributes)`,
and the name becomes usable in space files. Every block maps (c_in, c_out, stride) -> a module; the
search space decides the attributes (kernel, expansion, groups, se, activation).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nas.space import BlockSpec
from nas.space._primitives import declare_primitive

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

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = make_divisible(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle, so grouped 1x1 convs exchange information between groups."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Primitive(nn.Module):
    """Base class of blocks: `body` computes the block; the identity shortcut is added when shapes match."""

    residual_allowed = True

    def __init__(self, c_in: int, c_out: int, stride: int, spec: BlockSpec):
        super().__init__()
        self.use_residual = self.residual_allowed and stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


_REGISTRY: dict[str, type[Primitive]] = {}


def register_primitive(name: str, attributes: set[str]):
    """Class decorator: make a `Primitive` subclass available to search spaces under `name`."""

    def decorate(cls: type[Primitive]) -> type[Primitive]:
        declare_primitive(name, attributes)
        _REGISTRY[name] = cls
        return cls

    return decorate


def build_block(spec: BlockSpec, c_in: int, c_out: int, stride: int) -> nn.Module:
    return _REGISTRY[spec.primitive](c_in, c_out, stride, spec)


def registered_primitives() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def _optional_se(channels: int, spec: BlockSpec) -> list[nn.Module]:
    return [SqueezeExcite(channels)] if spec.se else []


@register_primitive("mbconv", {"kernel", "expansion", "se", "activation"})
class MBConv(Primitive):
    """Inverted residual (MobileNetV2/V3): 1x1 expand -> kxk depthwise -> [SE] -> 1x1 project."""

    def __init__(self, c_in, c_out, stride, spec):
        super().__init__(c_in, c_out, stride, spec)
        mid = make_divisible(c_in * spec.expansion)
        expand = [conv_bn(c_in, mid, act=spec.activation)] if spec.expansion != 1 else []
        mid = mid if expand else c_in
        self.body = nn.Sequential(
            *expand,
            conv_bn(mid, mid, spec.kernel, stride, groups=mid, act=spec.activation),
            *_optional_se(mid, spec),
            conv_bn(mid, c_out),
        )


@register_primitive("fused_mbconv", {"kernel", "expansion", "se", "activation"})
class FusedMBConv(Primitive):
    """Fused-MBConv (EfficientNetV2): one dense kxk conv replaces expand + depthwise; faster on CPUs at low width."""

    def __init__(self, c_in, c_out, stride, spec):
        super().__init__(c_in, c_out, stride, spec)
        if spec.expansion == 1:
            self.body = nn.Sequential(
                conv_bn(c_in, c_out, spec.kernel, stride, act=spec.activation), *_optional_se(c_out, spec)
            )
        else:
            mid = make_divisible(c_in * spec.expansion)
            self.body = nn.Sequential(
                conv_bn(c_in, mid, spec.kernel, stride, act=spec.activation),
                *_optional_se(mid, spec),
                conv_bn(mid, c_out),
            )


@register_primitive("dwsep", {"kernel", "se", "activation"})
class DepthwiseSeparable(Primitive):
    """Depthwise-separable conv (MobileNetV1): kxk depthwise -> [SE] -> 1x1 pointwise, no shortcut."""

    residual_allowed = False

    def __init__(self, c_in, c_out, stride, spec):
        super().__init__(c_in, c_out, stride, spec)
        self.body = nn.Sequential(
            conv_bn(c_in, c_in, spec.kernel, stride, groups=c_in, act=spec.activation),
            *_optional_se(c_in, spec),
            conv_bn(c_in, c_out, act=spec.activation),
        )


@register_primitive("shuffle_bottleneck", {"kernel", "expansion", "groups", "se", "activation"})
class ShuffleBottleneck(Primitive):
    """Grouped 1x1 bottleneck with channel shuffle (ShuffleNet; HW-NAS-Bench's FBNet ConvBlock).

    1x1 conv (groups g) -> act -> [shuffle if g > 1] -> kxk depthwise -> [SE] -> 1x1 conv (groups g).
    Unlike `mbconv`, the first 1x1 conv is kept at expansion 1, exactly as HW-NAS-Bench measured it.
    """

    def __init__(self, c_in, c_out, stride, spec):
        super().__init__(c_in, c_out, stride, spec)
        g = spec.groups
        mid = int(round(c_in * spec.expansion))
        mid += (-mid) % g
        shuffle = [ChannelShuffle(g)] if g > 1 else []
        self.body = nn.Sequential(
            conv_bn(c_in, mid, groups=g, act=spec.activation),
            *shuffle,
            conv_bn(mid, mid, spec.kernel, stride, groups=mid, act=spec.activation),
            *_optional_se(mid, spec),
            conv_bn(mid, c_out, groups=g),
        )


@register_primitive("skip", set())
class Skip(Primitive):
    """No block: the identity, or 1x1 conv + BN + ReLU when the shape changes (as in FBNet)."""

    residual_allowed = False

    def __init__(self, c_in, c_out, stride, spec):
        super().__init__(c_in, c_out, stride, spec)
        same = stride == 1 and c_in == c_out
        self.body = nn.Identity() if same else conv_bn(c_in, c_out, 1, stride, act="relu")
