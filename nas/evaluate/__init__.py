"""Evaluators: cheap objectives known before training (costs, zero-cost scores) and the expensive one
(proxy accuracy after a short training run, `Trainer`), with the one training loop (`fit`) and the input
preprocessing every model is trained and validated with (`Preprocessing`)."""

from nas.evaluate._costs import CostCounter, Costs, count_costs
from nas.evaluate._memory import Memory, MemoryCounter, graph_memory
from nas.evaluate._training import (
    DEVICES,
    Preprocessing,
    ProxyTrainer,
    Trainer,
    TrainingRecipe,
    TrainingResult,
    autocast_dtype,
    describe_device,
    evaluate_accuracy,
    fit,
    preprocessing_spec,
    resolve_device,
)
from nas.evaluate._zero_cost import ALL as ZERO_COST_SCORES
from nas.evaluate._zero_cost import score_batch, zero_cost_scores

__all__ = [
    "CostCounter",
    "Costs",
    "count_costs",
    "Memory",
    "MemoryCounter",
    "graph_memory",
    "Preprocessing",
    "ProxyTrainer",
    "Trainer",
    "TrainingRecipe",
    "TrainingResult",
    "DEVICES",
    "autocast_dtype",
    "describe_device",
    "resolve_device",
    "evaluate_accuracy",
    "fit",
    "preprocessing_spec",
    "ZERO_COST_SCORES",
    "score_batch",
    "zero_cost_scores",
]
