"""Evaluators: cheap objectives known before training (costs, latency) and the expensive one (proxy accuracy)."""

from nas.evaluate._costs import Costs, count_costs
from nas.evaluate._training import (
    ProxyTrainer,
    Trainer,
    TrainingRecipe,
    TrainingResult,
    evaluate_accuracy,
    preprocessing_spec,
)

__all__ = ["Costs", "count_costs", "ProxyTrainer", "Trainer", "TrainingRecipe", "TrainingResult", "evaluate_accuracy", "preprocessing_spec"]
