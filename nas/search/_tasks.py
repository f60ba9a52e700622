"""The functions that run on workers. They raise on failure; the driver turns that into a failed trial."""

from __future__ import annotations

import time
from typing import Any

from nas.builder import build_model
from nas.evaluate import count_costs
from nas.evaluate._training import Trainer, TrainingResult
from nas.onnx_io import export_onnx
from nas.space import Architecture


def prepare_candidate(arch: Architecture, num_classes: int, seed: int, need_onnx: bool) -> dict[str, Any]:
    """Build the untrained network, count its costs, and export it for latency measurement."""
    start = time.perf_counter()
    model = build_model(arch, num_classes, seed=seed)
    costs = count_costs(model, arch.resolution)
    onnx_bytes = export_onnx(model, arch.resolution, fast=True) if need_onnx else None
    return {"params": costs.params, "macs": costs.macs, "onnx": onnx_bytes, "seconds": time.perf_counter() - start}


def train_candidate(trainer: Trainer, arch: Architecture, dataset: Any, seed: int) -> TrainingResult:
    return trainer.train(arch, dataset, seed)
