"""Parameters and MACs of a candidate, counted by fvcore.

fvcore counts one multiply-accumulate as one "flop" and reports zero for element-wise operations
(activations, the residual add, the SE multiply), so `macs` is the MAC count of convolutions and
linear layers only. It is a cheap objective: known before any training.

Both counts are additive over a network's parts (`nas.builder.network_parts`), so a search counts each
distinct part once (`CostCounter`): a space reuses the same block at the same shape across many
candidates, and a whole-network count (one fvcore trace, about 60 ms) becomes a few part lookups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

_MAC_OPS = {"conv", "linear", "addmm", "matmul", "bmm", "einsum"}


@dataclass(frozen=True)
class Costs:
    params: int
    macs: int


def count_costs(model: nn.Module, resolution: int, input_shape: tuple[int, ...] | None = None) -> Costs:
    """Params and conv/linear MACs of `model` on one 3 x `resolution` x `resolution` image (or `input_shape`)."""
    from fvcore.nn import FlopCountAnalysis, parameter_count

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, torch.zeros(*(input_shape or (1, 3, resolution, resolution))))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        # Batch norm folds into the conv at export and pooling is negligible: keep conv and linear MACs only.
        macs = int(sum(n for op, n in analysis.by_operator().items() if op in _MAC_OPS))
    finally:
        model.train(was_training)
    return Costs(params=int(parameter_count(model)[""]), macs=macs)


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
