"""Slice evaluation of an exported model: clean validation data, corruption slices and user slices.

Each slice reports n, accuracy with its 95% Wilson interval, the expected calibration error (15 bins),
per-class accuracy and the most confused class pairs. A slice is flagged *thin* when it has fewer than
`THIN_N` images or its interval is wider than +-`THIN_HALF_WIDTH`: its accuracy is too uncertain to
rank models on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas._io import read_json, write_json_atomic
from nas.errors import NasError
from nas.validate._corruptions import FAMILIES, check_family, check_severity, corrupt
from nas.validate._data import EvalImages, evaluation_images, read_user_slices
from nas.validate._exit_rates import SliceExits
from nas.validate._onnx import OnnxClassifier
from nas.validate._stats import slice_statistics

THIN_N = 100
THIN_HALF_WIDTH = 0.1
DEFAULT_SEVERITIES = (1, 3, 5)


def _thin_reason(n: int, ci: list[float]) -> str | None:
    if n < THIN_N:
        return f"n = {n} < {THIN_N}"
    half = (ci[1] - ci[0]) / 2
    if half > THIN_HALF_WIDTH:
        return f"95% CI half-width {half:.3f} > {THIN_HALF_WIDTH}"
    return None


@dataclass
class SliceReport:
    """The result of `evaluate_slices`; `to_dict()` is its JSON form."""

    model: str
    precision: str
    classes: tuple[str, ...]
    data: str
    seed: int
    slices: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    exits: dict | None = None  # a model with early exits: its stages, thresholds, cumulative latencies

    @property
    def clean(self) -> dict:
        return self.slices[0]

    @property
    def worst(self) -> dict:
        """The least accurate slice other than the clean one (the clean one if there is no other)."""
        others = [s for s in self.slices if s["kind"] != "clean"] or self.slices
        return min(others, key=lambda s: s["accuracy"])

    def slice(self, name: str) -> dict:
        for s in self.slices:
            if s["name"] == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict:
        corrupted = [s["accuracy"] for s in self.slices if s["kind"] == "corruption"]
        return {
            "model": self.model,
            "precision": self.precision,
            "classes": list(self.classes),
            "data": self.data,
            "seed": self.seed,
            "thin_rule": f"n < {THIN_N} or 95% CI half-width > {THIN_HALF_WIDTH}",
            "clean_accuracy": self.clean["accuracy"],
            "mean_corrupted_accuracy": float(np.mean(corrupted)) if corrupted else None,
            "worst_slice": self.worst["name"],
            "worst_slice_accuracy": self.worst["accuracy"],
            "thin_slices": [s["name"] for s in self.slices if s["thin"]],
            "seconds": round(self.seconds, 3),
            **({"exits": self.exits} if self.exits is not None else {}),
            "slices": self.slices,
        }

    def write_json(self, path: str | Path) -> Path:
        return write_json_atomic(Path(path), self.to_dict())

    def table(self):
        from nas.validate._render import slice_table

        return slice_table(self.to_dict())

    def print(self, console=None) -> None:
        from nas.validate._render import print_report

        print_report(self.to_dict(), console)

    def figure(self):
        from nas.validate._render import slice_figure

        return slice_figure(self.to_dict())

    def write_plot(self, path: str | Path) -> Path:
        from nas.validate._render import save_figure

        return save_figure(self.figure(), path)


def _slice_entry(name: str, kind: str, logits: np.ndarray, labels: np.ndarray, classes, **extra) -> dict:
    stats = slice_statistics(logits, labels, classes)
    reason = _thin_reason(stats["n"], stats["ci95"])
    return {"name": name, "kind": kind, **extra, **stats, "thin": reason is not None, "thin_reason": reason}


def evaluate_slices(
    onnx_path: str | Path,
    dataset_or_source="builtin",
    *,
    families=tuple(FAMILIES),
    severities=DEFAULT_SEVERITIES,
    seed: int = 0,
    max_images: int | None = None,
    user_slices: str | os.PathLike | None = None,
    split: str = "val",
    val_fraction: float = 0.1,
    threads: int = 1,
) -> SliceReport:
    """Evaluate an exported ONNX model on clean data, corruption slices and optional user slices.

    The model is run with ONNX Runtime and fed only per its `nas.preprocessing` metadata.
    `dataset_or_source`: an `ImageDataset` (its validation split) or anything `nas.load_dataset`
    accepts (`split="val"`: the validation split made with `val_fraction` and `seed`, as a search
    with that seed made it; `split="all"`: every image, for a held-out folder). `max_images`: a seeded
    random subset. `user_slices`: a folder `<condition>/<class>/*.jpg`, one slice per condition.
    """
    start = time.perf_counter()
    families = tuple(check_family(f, "families") for f in families)
    severities = tuple(check_severity(s, "severities") for s in severities)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NasError(f"seed must be a non-negative integer, got {seed!r}")
    model = OnnxClassifier(onnx_path, threads=threads)
    exits = SliceExits.open(onnx_path, threads=threads)  # early exits: a broken cascade fails here, first
    data = evaluation_images(
        dataset_or_source,
        model.classes,
        split=split,
        val_fraction=val_fraction,
        seed=seed,
        max_images=max_images,
    )
    report = SliceReport(str(onnx_path), model.precision, model.classes, data.name, int(seed))
    report.slices.append(
        _slice_entry("clean", "clean", model.logits(data.images), data.labels, model.classes)
    )
    for family in families:
        for severity in severities:
            x = corrupt(data.images, family, severity, seed)
            report.slices.append(
                _slice_entry(
                    f"{family}@{severity}",
                    "corruption",
                    model.logits(x),
                    data.labels,
                    model.classes,
                    family=family,
                    severity=severity,
                )
            )
    if user_slices is not None:
        for user in read_user_slices(user_slices, model.classes):
            report.slices.append(
                _slice_entry(
                    f"user:{user.name}",
                    "user",
                    model.logits(user.images),
                    user.labels,
                    model.classes,
                    folder=str(Path(user_slices) / user.name),
                )
            )
    if exits is not None:  # early exits: where each slice's images leave the cascade
        report.exits = exits.describe()
        _add_exit_rates(report, exits, data, families, severities, seed, user_slices, model)
    clean = report.clean["accuracy"]
    for s in report.slices:
        s["drop"] = clean - s["accuracy"]
    report.seconds = time.perf_counter() - start
    return report


def _add_exit_rates(report, exits, data, families, severities, seed, user_slices, model) -> None:
    """Each slice's exit rates, from the same images as its accuracy (corruptions redrawn with the seed)."""
    pre, by_name = model.preprocessing, {s["name"]: s for s in report.slices}
    by_name["clean"]["exits"] = exits.for_slice(data.images, data.labels, pre)
    for family in families:
        for severity in severities:
            x = corrupt(data.images, family, severity, seed)
            by_name[f"{family}@{severity}"]["exits"] = exits.for_slice(x, data.labels, pre)
    if user_slices is not None:
        for user in read_user_slices(user_slices, model.classes):
            by_name[f"user:{user.name}"]["exits"] = exits.for_slice(user.images, user.labels, pre)


def load_slice_report(path: str | Path) -> dict:
    """A slice report JSON written by `SliceReport.write_json` (as a dict)."""
    path = Path(path)
    data = read_json(path, "slice report")
    if not isinstance(data, dict) or not isinstance(data.get("slices"), list):
        raise NasError(f"{path}: not a slice report (no 'slices' list)")
    return data


__all__ = ["EvalImages", "SliceReport", "evaluate_slices", "load_slice_report"]
