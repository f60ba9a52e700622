"""An export folder for a network with early exits: its segments and the calibrated thresholds.

The folder's usual model.onnx (the whole network to its final exit) is written first, then the segments
(`exit_segment_K.onnx`), then model.onnx again with the `nas.exits` metadata that names them with their
thresholds: a killed export leaves a plain model, never a model.onnx naming a missing segment.
`nas.runtime.ExitCascade(folder)` runs the cascade.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from nas._io import read_json, write_atomic, write_json_atomic
from nas.exits import SEGMENT_NAME, check_segments, export_segments
from nas.export._folder import ONNX_NAME, write_model_folder
from nas.runtime import EXITS_KEY
from nas.space import Architecture


def export_cascade(
    folder: str | Path,
    model: torch.nn.Module,
    arch: Architecture,
    num_classes: int,
    preprocessing: dict,
    calibration: dict,
    metrics: dict,
    expected_latency: dict | None = None,
) -> Path:
    """Write the early-exit network `model` (trained; `calibration`: `Calibration.to_dict()`) into `folder`
    as model.onnx + spec.json + metrics.json + its segments; returns model.onnx."""
    folder = Path(folder)
    model = model.to(memory_format=torch.contiguous_format).eval()  # as trained: channels_last
    write_model_folder(folder, model, arch, num_classes, preprocessing, metrics)
    add_exit_segments(folder, model, arch, calibration, expected_latency)
    return folder / ONNX_NAME


def add_exit_segments(
    folder: Path, model: torch.nn.Module, arch: Architecture, calibration: dict, expected_latency: dict | None
) -> dict:
    """Add the segments and thresholds to an export folder that holds `model`'s model.onnx and spec.json."""
    model = model.to(memory_format=torch.contiguous_format).eval()
    graphs = export_segments(model, arch.resolution)
    diff = check_segments(model, graphs, arch.resolution)  # before anything is written
    names = [SEGMENT_NAME.format(k) for k in range(len(graphs))]
    meta = {
        "segments": names,
        "stages": list(arch.exits),
        **calibration,
        "expected_latency": expected_latency,
        "segments_vs_torch_max_abs_diff": diff,
    }
    for name, graph in zip(names, graphs):
        write_atomic(folder / name, graph)
    proto = onnx.load(str(folder / ONNX_NAME))
    entry = next((e for e in proto.metadata_props if e.key == EXITS_KEY), None) or proto.metadata_props.add()
    entry.key, entry.value = EXITS_KEY, json.dumps(meta)
    write_atomic(folder / ONNX_NAME, proto.SerializeToString())
    spec_path = folder / "spec.json"
    write_json_atomic(spec_path, {**read_json(spec_path, "spec file"), "exits": meta})
    return meta
