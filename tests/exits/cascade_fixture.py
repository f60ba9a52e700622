"""A small untrained network with two early exits, exported as a cascade: shared by the exits, runtime and
validate tests. Its thresholds are set between observed confidences so every exit takes some images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXITS_SPACE = """\
name: tiny-exits
input: {resolution: 16}
stem: {channels: 8, kernel: 3, stride: 1, activation: relu}
block_choices: {primitive: [mbconv, dwsep], kernel: 3, expansion: 2, se: false, activation: relu}
stages:
  - {name: a, stride: 2, depth: 1, width: 8}
  - {name: b, stride: 2, depth: 1, width: 16}
  - {name: c, stride: 1, depth: 1, width: 16}
head: {width: 32, activation: relu}
exits: {a: [false, true], b: true}
"""

PREPROCESSING = {
    "input_name": "input",
    "input_shape": ["batch", 3, 16, 16],
    "dtype": "float32",
    "layout": "NCHW",
    "channel_order": "RGB",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "classes": ["red", "green"],
}


def exits_architecture(tmp: Path, with_a: bool = True):
    from nas.space import load_space

    path = tmp / "tiny-exits.yaml"
    path.write_text(EXITS_SPACE)

    class Trial:
        def suggest_categorical(self, name, options):
            return with_a if name == "exits.a" else options[0]

    return load_space(path).sample(Trial())


def make_cascade_folder(tmp: Path):
    """(folder, model, arch, preprocessed images, thresholds) of a cascade exported into tmp/cascade."""
    import json

    import torch

    from nas.builder import build_model
    from nas.export import add_exit_segments
    from nas.onnx_io import export_onnx

    arch = exits_architecture(tmp)
    model = build_model(arch, 2, seed=0).eval()
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        confidences = [torch.softmax(o, 1).max(1).values.numpy() for o in model.forward_exits(x)]
    thresholds = [_between(c) for c in confidences[:-1]]
    calibration = {"thresholds": thresholds, "shares": [0.4, 0.3, 0.3], "max_drop_points": 0.5}
    expected = {"cumulative_ms": [0.1, 0.2, 0.4]}
    folder = tmp / "cascade"
    folder.mkdir()  # an export folder as `nas export` leaves it (TorchScript exporter here: seconds less)
    metadata = {"nas.preprocessing": json.dumps(PREPROCESSING), "nas.architecture": arch.to_json()}
    export_onnx(model, 16, path=folder / "model.onnx", dynamic_batch=True, metadata=metadata, fast=True)
    (folder / "spec.json").write_text(json.dumps({"architecture": arch.to_dict(), "num_classes": 2}))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    add_exit_segments(folder, model, arch, calibration, expected)
    return folder, model, arch, x.numpy(), thresholds


def _between(confidence: np.ndarray) -> float:
    """A threshold halfway between two observed confidences near the 40th percentile (no float ties)."""
    values = np.unique(confidence)
    i = int(0.4 * (len(values) - 1))
    return float((values[i] + values[i + 1]) / 2)
