"""Exit rates per slice of a model with early exits: where its cascade lets each slice's images leave.

A slice the network finds hard should leave late (lower confidence at the early exits), and then costs
more: the expected latency per slice, from the cumulative latencies the export recorded, says how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.runtime import ExitCascade, read_exits_metadata
from nas.validate._onnx import preprocess


class SliceExits:
    """The cascade of an exported model with exits, evaluated slice by slice (`for_slice`)."""

    def __init__(self, onnx_path: str | Path, meta: dict, threads: int = 1):
        self.meta = meta
        self.cascade = ExitCascade(onnx_path, threads=threads)
        latency = meta.get("expected_latency") or {}
        self.cumulative_ms = latency.get("cumulative_ms")

    @classmethod
    def open(cls, onnx_path: str | Path, threads: int = 1) -> "SliceExits | None":
        """None for a model without early exits."""
        meta = read_exits_metadata(onnx_path)
        return None if meta is None else cls(onnx_path, meta, threads)

    def for_slice(self, images: np.ndarray, labels: np.ndarray, pre: dict, batch_size: int = 256) -> dict:
        predictions, taken = [], []
        for start in range(0, len(images), batch_size):
            out = self.cascade.run(preprocess(images[start : start + batch_size], pre))
            predictions.append(out.prediction)
            taken.append(out.exit_taken)
        prediction, exit_taken = np.concatenate(predictions), np.concatenate(taken)
        exits = len(self.cascade.sessions)
        rates = [float(np.mean(exit_taken == k)) for k in range(exits)]
        entry = {
            "rates": rates,
            "mean_exit": float(np.mean(exit_taken)),
            "cascade_accuracy": float(np.mean(prediction == labels)),
        }
        if self.cumulative_ms is not None:
            entry["expected_latency_ms"] = float(np.dot(rates, self.cumulative_ms))
        return entry

    def describe(self) -> dict:
        return {
            "stages": self.meta.get("stages", []),
            "thresholds": list(self.cascade.thresholds),
            "cumulative_ms": self.cumulative_ms,
        }
