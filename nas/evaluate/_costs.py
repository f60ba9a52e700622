"""Parameters and MACs of a candidate: what fvcore counts, counted directly where the network is known.

fvcore counts one multiply-accumulate as one "flop" and reports zero for element-wise operations
(activations, the residual add, the SE multiply), so `macs` is the MAC count of convolutions and
linear layers only. It is a cheap objective: known before any training.

fvcore traces the network with the TorchScript tracer (about 0.15 s for a `mobilenet` candidate), which
made counting a third of a candidate's preparation. The built-in networks do all their multiplications
in `nn.Conv1d`, `nn.Conv2d` and `nn.Linear` modules, so one forward pass with a hook on each gives the
same counts in milliseconds (tests check both agree on every primitive and attention). A network with a
module the direct count does not know (a plugin's primitive, whose forward may multiply in any way) is
counted by fvcore.

Both counts are additive over a network's parts (`nas.builder.network_parts`), so a search counts each
distinct part once (`CostCounter`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

_MAC_OPS = {"conv", "linear", "addmm", "matmul", "bmm", "einsum"}
_MAC_MODULES = (nn.Conv1d, nn.Conv2d, nn.Linear)
# Modules whose own forward multiplies nothing: their MACs are those of the modules above inside them.
_NO_MAC_MODULES = (
    nn.Sequential,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Flatten,
    nn.AdaptiveAvgPool2d,
)


@dataclass(frozen=True)
class Costs:
    params: int
    macs: int


def count_costs(model: nn.Module, resolution: int, input_shape: tuple[int, ...] | None = None) -> Costs:
    """Params and conv/linear MACs of `model` on one 3 x `resolution` x `resolution` image (or `input_shape`),
    as fvcore counts them."""
    was_training = model.training
    model.eval()
    try:
        example = torch.zeros(*(input_shape or (1, 3, resolution, resolution)))
        macs = _direct_macs(model, example) if _directly_countable(model) else _fvcore_macs(model, example)
    finally:
        model.train(was_training)
    return Costs(params=sum(p.numel() for p in model.parameters()), macs=macs)


def _directly_countable(model: nn.Module) -> bool:
    """Every module is a MAC module, one that multiplies nothing, or a built-in network part whose forward
    multiplies only through those (`nas.builder`)."""
    from nas import builder

    parts = (
        builder.Network,
        builder.Primitive,
        builder.SqueezeExcite,
        builder.EfficientChannelAttention,
        builder.CoordinateAttention,
        builder.ChannelShuffle,
    )
    known = (*_MAC_MODULES, *_NO_MAC_MODULES, *parts)
    return all(type(module) in known for module in model.modules())


def _direct_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Conv and linear MACs of one forward pass, from each call's output shape (fvcore's formulas: a
    convolution costs output elements x input channels per group x kernel elements, a linear layer input
    elements x output features)."""
    macs = 0

    def conv(module, _inputs, output):
        nonlocal macs
        kernel = 1
        for size in module.kernel_size:
            kernel *= size
        macs += output.numel() * (module.in_channels // module.groups) * kernel

    def linear(module, inputs, _output):
        nonlocal macs
        macs += inputs[0].numel() * module.out_features

    hooks = [
        module.register_forward_hook(linear if isinstance(module, nn.Linear) else conv)
        for module in model.modules()
        if isinstance(module, _MAC_MODULES)
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return int(macs)


def _fvcore_macs(model: nn.Module, example: torch.Tensor) -> int:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, example)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    # Batch norm folds into the conv at export and pooling is negligible: keep conv and linear MACs only.
    return int(sum(n for op, n in analysis.by_operator().items() if op in _MAC_OPS))


class CostCounter:
    """`count_costs` of an `Architecture`'s network without building it whole: the sum of its parts'
    counts, each distinct part counted once (equal to counting the built network; tested)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self._cache: dict[tuple, Costs] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def costs(self, arch) -> Costs:
        from nas.builder import network_parts

        params = macs = 0
        for key, build, shape in network_parts(arch, self.num_classes):
            if key not in self._cache:
                self._cache[key] = count_costs(build(), shape[-1], input_shape=shape)
            params, macs = params + self._cache[key].params, macs + self._cache[key].macs
        return Costs(params=params, macs=macs)
