"""The functions that run on workers. They raise on failure; the driver turns that into a failed trial."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from nas.builder import build_model
from nas.errors import NasError
from nas.evaluate import Trainer, TrainingResult, count_costs, resolve_device, zero_cost_scores
from nas.onnx_io import export_onnx
from nas.space import Architecture

DEFAULT_GPU_SHARE = 0.25  # proxy trainings of small networks leave a GPU mostly idle: four share one


def training_placement(device: str, gpus_per_trial: float | None, gpus: float) -> tuple[str, float]:
    """Where trainings run and the GPU share each asks the scheduler for: (device, share).

    `gpus`: the GPUs the workers have (a Ray cluster's GPU resources). `device` as `resolve_device` takes it;
    `gpus_per_trial` None is DEFAULT_GPU_SHARE on CUDA, 0 on the CPU. A share without a GPU to give is a user
    error (SearchConfig refuses one with --device cpu)."""
    resolved = resolve_device(device, gpus)
    if gpus_per_trial is None:
        return resolved, DEFAULT_GPU_SHARE if resolved == "cuda" else 0.0
    if gpus_per_trial > 0 and gpus <= 0:
        raise NasError(
            f"--gpus-per-trial {gpus_per_trial:g}: there is no GPU here or in the Ray cluster; leave it out "
            "(or 0) to train on the CPU"
        )
    return resolved, float(gpus_per_trial)


def task_resources(fn: Callable, args: tuple, gpus_per_trial: float) -> dict[str, float]:
    """What one task asks the scheduler for: one CPU, and a training (also when `with_plugins` runs it) its GPU
    share. Preparing, scoring and measuring candidates stay on the CPU."""
    task = args[1] if fn is with_plugins and len(args) > 1 else fn
    if task is train_candidate and gpus_per_trial > 0:
        return {"num_cpus": 1, "num_gpus": gpus_per_trial}
    return {"num_cpus": 1}


def warm_up() -> int:
    """Nothing but this module's imports (torch and the package: seconds), run once on each worker as Ray
    starts, so that they happen while the driver prepares the search instead of delaying the first tasks.
    Returns the worker's process id."""
    return os.getpid()


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
    onnx_bytes = export_untrained(arch, num_classes, seed, model)
    return {
        "params": costs.params,
        "macs": costs.macs,
        "onnx": onnx_bytes,
        "seconds": time.perf_counter() - start,
    }


def export_untrained(arch: Architecture, num_classes: int, seed: int, model: Any = None) -> bytes:
    """The untrained network's ONNX graph, to measure its latency (the fast exporter); `model`: the network
    already built from these arguments, if any."""
    model = model if model is not None else build_model(arch, num_classes, seed=seed)
    return export_onnx(model, arch.resolution, fast=True)


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
