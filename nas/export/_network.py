"""One trained network (not from a search's Pareto set, such as a hand-designed baseline) as a model
folder exactly as `nas export` writes one: model.onnx with its preprocessing metadata, spec.json naming the
run it belongs to, metrics.json and model_card.md, so `nas train` trains it and the card measures it."""

from __future__ import annotations

from pathlib import Path

import torch

from nas.export._folder import write_model_folder
from nas.export._run import ExportedModel, _run_identity
from nas.space import Architecture
from nas.validate import write_model_card


def export_network(
    folder: str | Path,
    model: torch.nn.Module,
    arch: Architecture,
    num_classes: int,
    preprocessing: dict,
    metrics: dict,
    *,
    run_dir: str | Path,
    spec: dict | None = None,
) -> ExportedModel:
    """Write `model` (trained weights) into `folder`. `metrics` needs what the model card reads:
    `proxy_accuracy`, `params`, `macs` (and, as an export has them, `profile`, `latency_ms`, `training`)."""
    folder = Path(folder)
    onnx_path, spec_path, metrics_path, diff = write_model_folder(
        folder,
        model.to(memory_format=torch.contiguous_format).eval(),
        arch,
        num_classes,
        preprocessing,
        metrics,
        spec={"exported_from": _run_identity(Path(run_dir)), **(spec or {})},
    )
    card = write_model_card(folder)  # measures x86-cpu latency of the exported model, as nas export does
    return ExportedModel(folder, onnx_path, spec_path, metrics_path, card, diff)
