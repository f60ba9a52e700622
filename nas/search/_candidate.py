"""A candidate in flight through the driver, and the progress the driver reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import optuna

from nas.space import Architecture


@dataclass
class Candidate:
    trial: optuna.trial.Trial
    arch: Architecture
    started: float = field(default_factory=time.perf_counter)
    onnx: bytes | None = None
    resume: bytes | None = None  # training state paused at the last rung (multi-fidelity)
    attrs: dict[str, Any] = field(default_factory=dict)  # becomes the trial's user_attrs when told


@dataclass
class Progress:
    """What the progress bar shows; the ledger calls `update` after every finished trial."""

    total: int
    done: int = 0
    feasible: int = 0
    pareto: int = 0
    update: Callable[["Progress"], None] = lambda p: None
