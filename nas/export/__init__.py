"""Deployable models: export a search's Pareto set (`export_run`) and train an exported architecture for
longer, optionally distilled (`deploy_train`). Every model folder holds model.onnx, spec.json and
metrics.json, with the exact input preprocessing recorded. `load_checkpoint` reads a search's trained
weights, as export does."""

from nas._io import load_checkpoint
from nas.export._deploy import DEPLOYED_SUFFIX, deploy_train, distillation_loss
from nas.export._folder import read_preprocessing
from nas.export._run import ExportedModel, export_run

__all__ = [
    "DEPLOYED_SUFFIX",
    "ExportedModel",
    "deploy_train",
    "distillation_loss",
    "export_run",
    "load_checkpoint",
    "read_preprocessing",
]
