"""Parameters and MACs of a candidate, counted by fvcore.

fvcore counts one multiply-accumulate as one "flop" and reports zero for element-wise operations
(activations, the residual add, the SE multiply), so `macs` is the MAC count of convolutions and
linear layers only. It is a cheap objective: known before any training.
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


def count_costs(model: nn.Module, resolution: int) -> Costs:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        # Batch norm folds into the conv at export and pooling is negligible: keep conv and linear MACs only.
        macs = int(sum(n for op, n in analysis.by_operator().items() if op in _MAC_OPS))
    finally:
        model.train(was_training)
    return Costs(params=int(parameter_count(model)[""]), macs=macs)
