"""The functions that run on workers. They raise on failure; the driver turns that into a failed trial."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from nas.builder import build_model
from nas.evaluate import Trainer, TrainingResult, count_costs, zero_cost_scores
from nas.onnx_io import export_onnx
from nas.space import Architecture


def with_plugins(plugins: Sequence[str], task: Callable, *args: Any) -> Any:
    """`task(*args)` in a process that has loaded `plugins` and the installed ones first (once per process:
    a plugin registers the primitives that the task's architecture may use)."""
    from nas.plugins import load_plugins

    load_plugins(plugins)
    return task(*args)


def prepare_candidate(arch: Architecture, num_classes: int, seed: int) -> dict[str, Any]:
    """Build the untrained network, count its costs and export it to measure its latency: the cheap
    objectives, known before any training. (A predicted latency needs neither the export nor this task:
    the driver composes the graph features and the costs from the architecture's parts.)"""
    start = time.perf_counter()
    model = build_model(arch, num_classes, seed=seed)
    costs = count_costs(model, arch.resolution)
    onnx_bytes = export_onnx(model, arch.resolution, fast=True)
    return {
        "params": costs.params,
        "macs": costs.macs,
        "onnx": onnx_bytes,
        "seconds": time.perf_counter() - start,
    }


def score_candidate(
    arch: Architecture, num_classes: int, seed: int, dataset: Any, score: str
) -> dict[str, Any]:
    """The training-free `score` of the untrained network on a batch of `dataset` (pre-screening)."""
    start = time.perf_counter()
    value = zero_cost_scores(arch, dataset, num_classes=num_classes, seed=seed, scores=(score,))[score]
    return {"score": value, "seconds": time.perf_counter() - start}


def train_candidate(
    trainer: Trainer,
    arch: Architecture,
    dataset: Any,
    seed: int,
    stop_after: int | None = None,
    resume: bytes | None = None,
) -> TrainingResult:
    """`stop_after`/`resume`: pause at and resume from a multi-fidelity rung (`ProxyTrainer.train`); a
    custom trainer without them still works when neither is used."""
    if stop_after is None and resume is None:
        return trainer.train(arch, dataset, seed)
    return trainer.train(arch, dataset, seed, stop_after=stop_after, resume=resume)
