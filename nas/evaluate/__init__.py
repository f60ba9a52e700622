"""Evaluators: cheap objectives known before training (costs, latency) and the expensive one (proxy accuracy)."""

from nas.evaluate._costs import CostCounter, Costs, count_costs
from nas.evaluate._deploy import deploy_train
from nas.evaluate._training import (
    ProxyTrainer,
    Trainer,
    TrainingRecipe,
    TrainingResult,
    evaluate_accuracy,
    preprocessing_spec,
)
from nas.evaluate._zero_cost import ALL as ZERO_COST_SCORES
from nas.evaluate._zero_cost import score_batch, zero_cost_scores

__all__ = [
    "CostCounter",
    "Costs",
    "count_costs",
    "ProxyTrainer",
    "Trainer",
    "TrainingRecipe",
    "TrainingResult",
    "evaluate_accuracy",
    "preprocessing_spec",
    "ZERO_COST_SCORES",
    "score_batch",
    "zero_cost_scores",
    "deploy_train",
]
