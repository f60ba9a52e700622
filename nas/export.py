"""Pareto set -> deployable files: a trained ONNX model (dynamic batch), its spec JSON and its metrics.

The exact input preprocessing travels with every model (ONNX metadata and spec JSON), so the model can
be run on new images without reading this code. Each export is checked against PyTorch in ONNX Runtime.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.builder import build_model
from nas.errors import NasError
from nas.onnx_io import export_onnx
from nas._io import read_json, write_atomic, write_json_atomic
from nas.search._driver import load_checkpoint
from nas.space import Architecture
from nas.validate import write_model_card

MAX_ABS_DIFF = 1e-3  # ONNX Runtime vs PyTorch logits on random input
_EXPORT_DIR = re.compile(r"^\d\d_[0-9a-f]{12}$")


@dataclass(frozen=True)
class ExportedModel:
    directory: Path
    onnx: Path
    spec: Path
    metrics: Path
    model_card: Path
    max_abs_diff: float


def export_run(run_dir: str | Path, out: str | Path | None = None) -> list[ExportedModel]:
    """Export every Pareto-optimal architecture of a finished (or running) search."""
    run_dir = Path(run_dir)
    pareto_path, config_path = run_dir / "pareto.json", run_dir / "config.json"
    for path in (pareto_path, config_path):
        if not path.is_file():
            raise NasError(f"{run_dir}: not a nas run directory (missing {path.name})")
    pareto, config = read_json(pareto_path, "pareto file"), read_json(config_path, "run configuration")
    if not pareto["pareto"]:
        raise NasError(f"{run_dir}: no completed trial to export yet")
    out = Path(out) if out else run_dir / "export"
    if out.exists() and not out.is_dir():
        raise NasError(f"{out}: is a file; choose another --out folder")
    for record in pareto["pareto"]:
        if not (run_dir / record["checkpoint"]).is_file():
            raise NasError(f"{run_dir}: checkpoint of trial {record['trial']} missing ({record['checkpoint']})")
    out.mkdir(parents=True, exist_ok=True)
    current = {f"{rank:02d}_{Architecture.from_dict(r['architecture']).hash}" for rank, r in enumerate(pareto["pareto"])}
    for stale in out.iterdir():  # exports of an earlier front (a resumed search moves the front)
        if stale.is_dir() and _EXPORT_DIR.match(stale.name) and stale.name not in current:
            shutil.rmtree(stale)
    preprocessing = pareto["preprocessing"]
    num_classes = len(preprocessing["classes"])
    exported = []
    for rank, record in enumerate(pareto["pareto"]):
        arch = Architecture.from_dict(record["architecture"])
        model = build_model(arch, num_classes)
        model.load_state_dict(load_checkpoint(run_dir, record["checkpoint"]))
        model.eval()
        target = out / f"{rank:02d}_{arch.hash}"
        target.mkdir(exist_ok=True)
        metrics = {
            "trial": record["trial"],
            "profile": pareto["profile"],
            "dataset": pareto["dataset"],
            "proxy_accuracy": record["accuracy"],
            "accuracy_objective": pareto.get("accuracy_objective", "clean validation accuracy"),
            "clean_accuracy": record.get("clean_accuracy"),
            "corrupted_accuracy": record.get("corrupted_accuracy"),
            "latency_ms": record["latency_ms"],
            "latency_spread": record["latency_spread"],
            "params": record["params"],
            "macs": record["macs"],
            "macs_note": "fvcore counts multiply-accumulates of conv/linear layers; activations, adds and SE multiplies count 0",
            "training": config.get("recipe"),
        }
        preprocessing = {**preprocessing, "input_shape": ["batch", 3, arch.resolution, arch.resolution]}
        metadata = {
            "nas.preprocessing": json.dumps(preprocessing),
            "nas.architecture": arch.to_json(),
            "nas.metrics": json.dumps(metrics),
        }
        onnx_path = target / "model.onnx"
        onnx_bytes = export_onnx(model, arch.resolution, dynamic_batch=True, metadata=metadata)
        diff = _compare_with_torch(model, onnx_bytes, arch.resolution)  # checked before anything is written
        write_atomic(onnx_path, onnx_bytes)
        spec_path, metrics_path = target / "spec.json", target / "metrics.json"
        write_json_atomic(spec_path, {"arch_hash": arch.hash, "architecture": arch.to_dict(), "num_classes": num_classes,
                                      "preprocessing": preprocessing, "onnx": onnx_path.name})
        write_json_atomic(metrics_path, {**metrics, "onnx_vs_torch_max_abs_diff": diff})
        card = write_model_card(target)  # measures x86-cpu latency of the exported model (~0.3-1 s)
        exported.append(ExportedModel(target, onnx_path, spec_path, metrics_path, card, diff))
    return exported


def _compare_with_torch(model: torch.nn.Module, onnx_bytes: bytes, resolution: int, batch: int = 3) -> float:
    """Run a batch through both; a mismatch is a bug in export, never silently shipped."""
    import onnxruntime as ort

    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX export disagrees with PyTorch: max |diff| = {diff:.2e} > {MAX_ABS_DIFF}")
    return diff


def read_preprocessing(onnx_path: str | Path) -> dict[str, Any]:
    """The preprocessing recorded in an exported model's metadata."""
    from nas.onnx_io import read_metadata

    return json.loads(read_metadata(onnx_path)["nas.preprocessing"])
