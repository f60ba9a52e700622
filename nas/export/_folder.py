"""One exported model folder: model.onnx (dynamic batch, the preprocessing, architecture and metrics in its
metadata), spec.json and metrics.json. `nas export` and `nas train` both write it here, so a deployed
model reads like an exported one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nas._io import write_atomic, write_json_atomic
from nas.onnx_io import check_against_torch, export_onnx, read_metadata
from nas.space import Architecture

ONNX_NAME = "model.onnx"
# In metrics.json, written last: a digest of what the folder's export was made from (`mark_exported`).
EXPORTED_AS = "exported_as"


def write_model_folder(
    folder: Path,
    model: torch.nn.Module,
    arch: Architecture,
    num_classes: int,
    preprocessing: dict,
    metrics: dict,
    *,
    metadata: dict[str, str] | None = None,
    spec: dict | None = None,
) -> tuple[Path, Path, Path, float]:
    """Export `model` (eval mode) into `folder`; returns the paths of model.onnx, spec.json, metrics.json and
    the ONNX-vs-torch difference.

    The export is checked against torch before anything is written; spec.json is written before model.onnx,
    so a killed export leaves a folder that says what it holds. `metadata` and `spec` add entries to the
    ONNX metadata and to spec.json.
    """
    preprocessing = {**preprocessing, "input_shape": ["batch", 3, arch.resolution, arch.resolution]}
    onnx_bytes = export_onnx(
        model,
        arch.resolution,
        dynamic_batch=True,
        doc_string=f"nas architecture {arch.hash}: {arch.summary()}",
        metadata={
            "nas.preprocessing": json.dumps(preprocessing),
            "nas.architecture": arch.to_json(),
            "nas.metrics": json.dumps(metrics),
            **(metadata or {}),
        },
    )
    diff = check_against_torch(model, onnx_bytes, arch.resolution)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path, spec_path, metrics_path = folder / ONNX_NAME, folder / "spec.json", folder / "metrics.json"
    _unmark(metrics_path)  # first: an export cut short from here on is never taken for the one before
    write_json_atomic(
        spec_path,
        {
            "arch_hash": arch.hash,
            "architecture": arch.to_dict(),
            "num_classes": num_classes,
            "preprocessing": preprocessing,
            "onnx": onnx_path.name,
            **(spec or {}),
        },
    )
    write_atomic(onnx_path, onnx_bytes)
    write_json_atomic(metrics_path, {**metrics, "onnx_vs_torch_max_abs_diff": diff})
    return onnx_path, spec_path, metrics_path, diff


def read_preprocessing(onnx_path: str | Path | bytes) -> dict:
    """The preprocessing recorded in an exported model's metadata (KeyError when it has none)."""
    return json.loads(read_metadata(onnx_path)["nas.preprocessing"])


def finished_export(folder: Path, exported_as: str) -> dict | None:
    """The metrics of `folder` when an export of exactly `exported_as` finished there (its mark, written last,
    is in metrics.json and model.onnx is there), else None: then the same export again would write the same
    files, and can be skipped (the ONNX export alone takes about 10 s for a `mobilenet` network)."""
    if not (folder / ONNX_NAME).is_file():
        return None
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get(EXPORTED_AS) == exported_as else None


def _unmark(metrics_path: Path) -> None:
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(metrics, dict) and EXPORTED_AS in metrics:
        write_json_atomic(metrics_path, {k: v for k, v in metrics.items() if k != EXPORTED_AS})


def mark_exported(folder: Path, exported_as: str) -> None:
    """Record in metrics.json that the export of `exported_as` finished: the export's last write (and
    `write_model_folder` removes the mark before its first), so a folder whose export was cut short has no
    mark and is exported again."""
    path = folder / "metrics.json"
    write_json_atomic(path, {**json.loads(path.read_text()), EXPORTED_AS: exported_as})
