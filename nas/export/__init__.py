"""Deployable models: export a search's Pareto set (`export_run`) and train an exported architecture on
every training image, resumably, optionally distilled (`deploy_train`; several at once: `train_exports`).
Every model folder holds model.onnx, spec.json and metrics.json, with the exact input preprocessing recorded
(and model.tflite with `export_format="tflite"`, from the optional litert extra).
`load_checkpoint` reads a search's trained weights, as export does."""

from nas._io import load_checkpoint
from nas.export._checkpoint import STATE_FILE
from nas.export._deploy import DEPLOYED_SUFFIX, EpochDone, check_settings, deploy_train
from nas.export._exits import add_exit_segments, export_cascade
from nas.export._folder import read_preprocessing
from nas.export._litert import EXPORT_FORMATS, TFLITE_NAME, check_export_format
from nas.export._many import (
    BASELINES_FOLDER,
    TrainOutcome,
    baseline_exports,
    pareto_exports,
    train_command,
    train_exports,
)
from nas.export._network import ExportedModel, export_network
from nas.export._run import export_run
from nas.export._teacher import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE, distillation_loss, teacher_onnx
from nas.export._transfer import read_init

__all__ = [
    "BASELINES_FOLDER",
    "DEFAULT_KD_ALPHA",
    "DEFAULT_KD_TEMPERATURE",
    "DEPLOYED_SUFFIX",
    "EXPORT_FORMATS",
    "STATE_FILE",
    "TFLITE_NAME",
    "EpochDone",
    "ExportedModel",
    "TrainOutcome",
    "add_exit_segments",
    "baseline_exports",
    "check_export_format",
    "check_settings",
    "deploy_train",
    "distillation_loss",
    "export_cascade",
    "export_network",
    "export_run",
    "load_checkpoint",
    "pareto_exports",
    "read_init",
    "read_preprocessing",
    "teacher_onnx",
    "train_command",
    "train_exports",
]
