"""One trained network (not from a search's Pareto set, such as a hand-designed baseline) as a model
folder exactly as `nas export` writes one: model.onnx with its preprocessing metadata, spec.json naming the
run it belongs to, metrics.json and model_card.md, so `nas train` trains it and the card measures it; with
the tflite format, model.tflite beside them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from nas._io import read_json, write_atomic, write_json_atomic
from nas.export._folder import ONNX_NAME, write_model_folder
from nas.export._litert import TFLITE_NAME, TfliteModel, check_export_format, convert_tflite, tflite_spec
from nas.space import Architecture
from nas.validate import CARD_FILE, write_model_card


@dataclass(frozen=True)
class ExportedModel:
    directory: Path
    onnx: Path
    spec: Path
    metrics: Path
    model_card: Path
    max_abs_diff: float
    tflite: Path | None = None  # with the tflite format
    tflite_max_abs_diff: float | None = None


def run_identity(run_dir: Path) -> dict[str, str]:
    """The run an export comes from: its directory, and a hash of its config.json (written once, when the
    search started), which stays the same when the run directory is moved or copied."""
    digest = hashlib.sha256((run_dir / "config.json").read_bytes()).hexdigest()[:16]
    return {"run_dir": str(run_dir.resolve()), "config_sha256": digest}


def write_export(
    folder: Path,
    model: torch.nn.Module,
    arch: Architecture,
    num_classes: int,
    preprocessing: dict,
    metrics: dict,
    spec: dict,
    export_format: str = "onnx",
) -> ExportedModel:
    """The model folder (`write_model_folder`) and its model card, as `nas export` writes each model.

    With `export_format="tflite"` the LiteRT model is converted and checked first (a failure writes nothing)
    and written beside model.onnx; without it, a model.tflite of an earlier export is removed, as it would
    no longer match the folder's spec.
    """
    tflite, tflite_entry = converted_if_asked(model, arch, preprocessing, export_format)
    onnx_path, spec_path, metrics_path, diff = write_model_folder(
        folder, model, arch, num_classes, preprocessing, metrics, spec={**spec, **tflite_entry}
    )
    tflite_path = place_tflite(folder, tflite, metrics_path)
    card = write_model_card(folder)  # measures x86-cpu latency of the exported model (~0.3-1 s)
    return ExportedModel(
        folder,
        onnx_path,
        spec_path,
        metrics_path,
        card,
        diff,
        tflite_path,
        tflite.max_abs_diff if tflite else None,
    )


def exported_model(folder: Path, metrics: dict, export_format: str) -> ExportedModel:
    """The `ExportedModel` of a folder that `write_export` finished writing before, from its `metrics`."""
    tflite = folder / TFLITE_NAME if export_format == "tflite" else None
    return ExportedModel(
        folder,
        folder / ONNX_NAME,
        folder / "spec.json",
        folder / "metrics.json",
        folder / CARD_FILE,
        metrics["onnx_vs_torch_max_abs_diff"],
        tflite,
        metrics.get("tflite_vs_torch_max_abs_diff") if tflite else None,
    )


def converted_if_asked(
    model: torch.nn.Module, arch: Architecture, preprocessing: dict, export_format: str
) -> tuple[TfliteModel | None, dict]:
    """The LiteRT model when `export_format` asks for one, converted and checked before anything is written
    (a failure writes nothing), and the spec.json entry that describes it ({} without one)."""
    if not check_export_format(export_format):
        return None, {}
    tflite = convert_tflite(model, arch.resolution)
    return tflite, {"tflite": tflite_spec(preprocessing, arch.resolution, tflite.converter)}


def place_tflite(folder: Path, tflite: TfliteModel | None, metrics_path: Path) -> Path | None:
    """model.tflite beside model.onnx, its check and conversion time in metrics.json; without one, the
    model.tflite of an earlier export goes, as it would no longer match the folder's spec."""
    path = folder / TFLITE_NAME
    if tflite is None:
        path.unlink(missing_ok=True)
        return None
    write_atomic(path, tflite.data)
    written = read_json(metrics_path, "metrics file")
    extra = {
        "tflite_vs_torch_max_abs_diff": tflite.max_abs_diff,
        "tflite_conversion_s": round(tflite.seconds, 1),
    }
    write_json_atomic(metrics_path, {**written, **extra})
    return path


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
    export_format: str = "onnx",
) -> ExportedModel:
    """Write `model` (trained weights) into `folder`. `metrics` needs what the model card reads:
    `proxy_accuracy`, `params`, `macs` (and, as an export has them, `profile`, `latency_ms`, `training`).
    `export_format="tflite"`: model.tflite too (needs the litert extra)."""
    return write_export(
        Path(folder),
        model.to(memory_format=torch.contiguous_format).eval(),
        arch,
        num_classes,
        preprocessing,
        metrics,
        spec={"exported_from": run_identity(Path(run_dir)), **(spec or {})},
        export_format=export_format,
    )
