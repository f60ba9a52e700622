"""Evaluators: cheap objectives known before training (costs, zero-cost scores) and the expensive one
(proxy accuracy after a short training run, `Trainer`), with the one training loop (`fit`) and the input
preprocessing every model is trained and validated with (`Preprocessing`)."""

from typing import Any

from nas.evaluate._costs import CostCounter, Costs, count_costs
from nas.evaluate._training import (
    Preprocessing,
    ProxyTrainer,
    Trainer,
    TrainingRecipe,
    TrainingResult,
    evaluate_accuracy,
    fit,
    preprocessing_spec,
)
from nas.evaluate._zero_cost import ALL as ZERO_COST_SCORES
from nas.evaluate._zero_cost import score_batch, zero_cost_scores

__all__ = [
    "CostCounter",
    "Costs",
    "count_costs",
    "Preprocessing",
    "ProxyTrainer",
    "Trainer",
    "TrainingRecipe",
    "TrainingResult",
    "evaluate_accuracy",
    "fit",
    "preprocessing_spec",
    "ZERO_COST_SCORES",
    "score_batch",
    "zero_cost_scores",
]


def __getattr__(name: str) -> Any:
    """`deploy_train` belongs to `nas.export` (it trains and re-exports an exported model); the name
    forwards there for callers that still import it from here."""
    if name == "deploy_train":
        from nas.export import deploy_train

        return deploy_train
    raise AttributeError(f"module 'nas.evaluate' has no attribute {name!r}")
