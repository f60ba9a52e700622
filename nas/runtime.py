"""Run an early-exit network (exported by `nas.exits.export_cascade`) with ONNX Runtime and numpy alone.

An exit cascade is one ONNX graph per segment: segment k takes the previous segment's features (the first
takes the image) and returns `features` and its exit's `logits`; the last returns `logits` only. An image
leaves at the first exit whose confidence (largest softmax probability) reaches that exit's threshold, so
an easy image pays only the segments up to its exit. The thresholds, the segment files and the input
preprocessing are in the metadata of the folder's `model.onnx` (`nas.exits`, `nas.preprocessing`).

This module imports no torch: a device that only runs models needs onnxruntime, onnx and numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.errors import NasError

EXITS_KEY = "nas.exits"  # model.onnx metadata: {"segments": [...], "thresholds": [...], "stages": [...], ...}
NEVER = 2.0  # a threshold no softmax probability reaches: that exit lets every image through


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def leaves(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Which images leave at an exit: its confidence, the largest softmax probability, reaches the threshold."""
    return probabilities.max(1) >= threshold


def route(probabilities: list[np.ndarray], thresholds: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The cascade's rule on every exit's probabilities (N x classes each, earliest first): (prediction, exit
    index) per image. The one statement of when an image leaves; calibration and the runtime both use it."""
    if len(thresholds) != len(probabilities) - 1:
        raise ValueError(
            f"{len(probabilities)} exits need {len(probabilities) - 1} thresholds, got {thresholds}"
        )
    n = len(probabilities[-1])
    exit_taken = np.full(n, len(probabilities) - 1, dtype=np.int64)
    prediction = probabilities[-1].argmax(1)
    undecided = np.ones(n, dtype=bool)
    for k, threshold in enumerate(thresholds):
        leave = undecided & leaves(probabilities[k], threshold)
        exit_taken[leave] = k
        prediction[leave] = probabilities[k][leave].argmax(1)
        undecided &= ~leave
    return prediction, exit_taken


@dataclass(frozen=True)
class CascadeOutput:
    prediction: np.ndarray  # class index per image
    exit_taken: np.ndarray  # 0 = first exit ... len(segments) - 1 = final exit
    confidence: np.ndarray  # the largest softmax probability at the exit taken


def read_exits_metadata(model_path: str | Path) -> dict | None:
    """The `nas.exits` metadata of an exported model.onnx, or None when it has no early exits."""
    import onnx

    path = Path(model_path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise NasError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    raw = {entry.key: entry.value for entry in proto.metadata_props}.get(EXITS_KEY)
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
        segments, thresholds = list(meta["segments"]), [float(t) for t in meta["thresholds"]]
    except (ValueError, KeyError, TypeError):
        raise NasError(f"{path}: metadata {EXITS_KEY} is not valid (segments, thresholds)") from None
    if len(thresholds) != len(segments) - 1:
        raise NasError(
            f"{path}: metadata {EXITS_KEY}: {len(segments)} segments need {len(segments) - 1} thresholds"
        )
    return meta


class ExitCascade:
    """The segments of an exported early-exit network, run image by image group: each segment runs only on
    the images still undecided. `model_path`: the export folder's model.onnx (or the folder)."""

    def __init__(self, model_path: str | Path, threads: int = 1, thresholds: list[float] | None = None):
        import onnxruntime as ort

        path = Path(model_path)
        path = path / "model.onnx" if path.is_dir() else path
        meta = read_exits_metadata(path)
        if meta is None:
            raise NasError(f"{path}: has no early exits (no {EXITS_KEY} metadata)")
        self.stages = list(meta.get("stages", []))
        self.thresholds = [float(t) for t in (meta["thresholds"] if thresholds is None else thresholds)]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.sessions = []
        for name in meta["segments"]:
            segment = path.parent / name
            if not segment.is_file():
                raise NasError(f"{path}: segment {name} named in its {EXITS_KEY} metadata is missing")
            self.sessions.append(
                ort.InferenceSession(str(segment), sess_options=options, providers=["CPUExecutionProvider"])
            )

    def exit_probabilities(self, x: np.ndarray) -> list[np.ndarray]:
        """Every exit's probabilities for every image (all segments run: for calibration and reports)."""
        out = []
        for session in self.sessions:
            results = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x})))
            out.append(softmax(results["logits"]))
            x = results.get("features")
        return out

    def run(self, x: np.ndarray) -> CascadeOutput:
        """Preprocessed images (N x 3 x H x W float32) -> prediction and exit taken per image."""
        n = len(x)
        prediction = np.zeros(n, dtype=np.int64)
        exit_taken = np.zeros(n, dtype=np.int64)
        confidence = np.zeros(n, dtype=np.float32)
        alive = np.arange(n)
        last = len(self.sessions) - 1
        for k, session in enumerate(self.sessions):
            names = [o.name for o in session.get_outputs()]
            results = dict(zip(names, session.run(None, {"input": x})))
            p = softmax(results["logits"])
            conf = p.max(1)
            leave = leaves(p, self.thresholds[k]) if k < last else np.ones(len(alive), dtype=bool)
            prediction[alive[leave]] = p[leave].argmax(1)
            exit_taken[alive[leave]] = k
            confidence[alive[leave]] = conf[leave]
            alive = alive[~leave]
            if not len(alive):
                break
            x = np.ascontiguousarray(results["features"][~leave])
        return CascadeOutput(prediction, exit_taken, confidence)
