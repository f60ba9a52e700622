"""The built-in primitives, one declaration each, declared exactly as a user's primitive is.

Each function builds the block's body from (c_in, c_out, stride, spec); the search space decides the
attributes (kernel, expansion, groups, se, activation); a pruned block's `spec.expanded` replaces the inner
channel count its expansion gives. This module imports torch only when a block
is built, so the search space reads these declarations without torch. The layers they are made of
(`conv_bn`, `SqueezeExcite`, ...) live in `nas.builder` and are re-exported here on first use.
"""

from __future__ import annotations

from nas._lazy import lazy_exports
from nas.space import declare_primitive

_EXPORTS = {
    "nas.builder": (
        "ChannelShuffle",
        "Primitive",
        "SqueezeExcite",
        "activation",
        "build_block",
        "conv_bn",
        "make_divisible",
    )
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS, globals())


@declare_primitive("mbconv", {"kernel", "expansion", "se", "activation"}, short="MB")
def mbconv(c_in, c_out, stride, spec):
    """Inverted residual (MobileNetV2/V3): 1x1 expand -> kxk depthwise -> [SE] -> 1x1 project."""
    from torch import nn

    from nas.builder import conv_bn, make_divisible, optional_se

    mid = spec.expanded or make_divisible(c_in * spec.expansion)
    expand = [conv_bn(c_in, mid, act=spec.activation)] if spec.expansion != 1 else []
    mid = mid if expand else c_in
    return nn.Sequential(
        *expand,
        conv_bn(mid, mid, spec.kernel, stride, groups=mid, act=spec.activation),
        *optional_se(mid, spec),
        conv_bn(mid, c_out),
    )


@declare_primitive("fused_mbconv", {"kernel", "expansion", "se", "activation"}, short="FMB")
def fused_mbconv(c_in, c_out, stride, spec):
    """Fused-MBConv (EfficientNetV2): one dense kxk conv replaces expand + depthwise; faster on CPUs at low width."""
    from torch import nn

    from nas.builder import conv_bn, make_divisible, optional_se

    if spec.expansion == 1:
        return nn.Sequential(
            conv_bn(c_in, c_out, spec.kernel, stride, act=spec.activation), *optional_se(c_out, spec)
        )
    mid = spec.expanded or make_divisible(c_in * spec.expansion)
    return nn.Sequential(
        conv_bn(c_in, mid, spec.kernel, stride, act=spec.activation),
        *optional_se(mid, spec),
        conv_bn(mid, c_out),
    )


@declare_primitive("dwsep", {"kernel", "se", "activation"}, short="DS", residual=False)
def dwsep(c_in, c_out, stride, spec):
    """Depthwise-separable conv (MobileNetV1): kxk depthwise -> [SE] -> 1x1 pointwise, no shortcut."""
    from torch import nn

    from nas.builder import conv_bn, optional_se

    return nn.Sequential(
        conv_bn(c_in, c_in, spec.kernel, stride, groups=c_in, act=spec.activation),
        *optional_se(c_in, spec),
        conv_bn(c_in, c_out, act=spec.activation),
    )


@declare_primitive("shuffle_bottleneck", {"kernel", "expansion", "groups", "se", "activation"}, short="SB")
def shuffle_bottleneck(c_in, c_out, stride, spec):
    """Grouped 1x1 bottleneck with channel shuffle (ShuffleNet; HW-NAS-Bench's FBNet ConvBlock).

    1x1 conv (groups g) -> act -> [shuffle if g > 1] -> kxk depthwise -> [SE] -> 1x1 conv (groups g).
    Unlike `mbconv`, the first 1x1 conv is kept at expansion 1, exactly as HW-NAS-Bench measured it.
    """
    from torch import nn

    from nas.builder import ChannelShuffle, conv_bn, optional_se

    g = spec.groups
    mid = int(round(c_in * spec.expansion))
    mid = spec.expanded or mid + (-mid) % g
    shuffle = [ChannelShuffle(g)] if g > 1 else []
    return nn.Sequential(
        conv_bn(c_in, mid, groups=g, act=spec.activation),
        *shuffle,
        conv_bn(mid, mid, spec.kernel, stride, groups=mid, act=spec.activation),
        *optional_se(mid, spec),
        conv_bn(mid, c_out, groups=g),
    )


@declare_primitive("skip", set(), short="SKIP", residual=False)
def skip(c_in, c_out, stride, spec):
    """No block: the identity, or 1x1 conv + BN + ReLU when the shape changes (as in FBNet)."""
    from torch import nn

    from nas.builder import conv_bn

    same = stride == 1 and c_in == c_out
    return nn.Identity() if same else conv_bn(c_in, c_out, 1, stride, act="relu")
