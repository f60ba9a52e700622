"""`drift_report`: a model over a manifest ordered by its time column, window by window.

Windows are `window` consecutive images in time order (leftover images join the last window). The first
`reference_windows` windows are taken as in-distribution: they calibrate the label-free alarm (see
`DriftMonitor`), and every window is then checked. Accuracy per window (labels from the manifest) comes
with its 95% Wilson interval and the Cochran-Armitage trend test over all windows.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from nas._io import write_json_atomic
from nas.errors import NasError
from nas.validate._candidates import PreprocessingFlags, load_candidate
from nas.validate._drift import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_HELD_OUT_WINDOWS,
    STATISTICS,
    DriftMonitor,
    accuracy_trend,
    observe,
    split_reference,
    window_accuracy,
)
from nas.validate._manifest import read_manifest

MIN_REFERENCE_WINDOWS = 3


def _time_keys(manifest, column: str) -> list:
    """The column's values as numbers, or else as ISO 8601 date-times; anything else is an error."""
    values = [r[column] for r in manifest.rows]
    try:
        return [float(v) for v in values]
    except ValueError:
        pass
    keys = []
    for line, value in enumerate(values, start=2):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise NasError(
                f"{manifest.path}:{line}: time {value!r} in column {column!r} is neither a number nor an ISO 8601 "
                "date-time"
            ) from None
        keys.append(parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=None).timestamp())
    return keys


def window_bounds(n: int, window: int) -> list[tuple[int, int]]:
    """[start, end) of each window of `window` rows; leftover rows join the last window."""
    count = n // window
    bounds = [(k * window, (k + 1) * window) for k in range(count)]
    if bounds:
        bounds[-1] = (bounds[-1][0], n)
    return bounds


@dataclass
class DriftReport:
    """The result of `drift_report`; `to_dict()` is its JSON form."""

    model: str
    manifest: str
    time_column: str
    window: int
    calibration: dict
    trend: dict
    windows: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "manifest": self.manifest,
            "time_column": self.time_column,
            "window": self.window,
            "calibration": self.calibration,
            "trend": self.trend,
            "alarms": [w["index"] for w in self.windows if w["alarm"] and not w["reference"]],
            "seconds": round(self.seconds, 3),
            "windows": self.windows,
        }

    def write_json(self, path: str | Path) -> Path:
        return write_json_atomic(Path(path), self.to_dict())

    def print(self, console=None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = console or (Console() if sys.stdout.isatty() else Console(width=160))
        c = self.calibration
        table = Table(
            title=f"{self.model} over {self.manifest} by {self.time_column}, windows of {self.window}"
        )
        for column in ("window", "from", "to", "n", "acc %", "95% CI", *STATISTICS, "alarm"):
            table.add_column(column, justify="left" if column in ("from", "to", "alarm") else "right")
        for w in self.windows:
            table.add_row(
                str(w["index"]),
                w["from"],
                w["to"],
                str(w["n"]),
                f"{100 * w['accuracy']:.1f}",
                f"{100 * w['ci95'][0]:.1f}-{100 * w['ci95'][1]:.1f}",
                *(f"{w[s]:.3g}" for s in STATISTICS),
                "reference" if w["reference"] else (f"ALARM ({w['strongest']})" if w["alarm"] else ""),
                style="bold red"
                if w["alarm"] and not w["reference"]
                else ("dim" if w["reference"] else None),
            )
        console.print(table)
        t = self.trend
        console.print(
            f"accuracy trend: {t['direction']} ({t['test']} z = {t['z']:.2f}, p = {t['p_value']:.3g}); "
            f"alarm calibrated on {c['reference_windows']} reference windows: stated false-alarm rate "
            f"{100 * c['alpha']:.0f}%, measured {100 * c['held_out_false_alarm_rate']:.1f}% on "
            f"{c['held_out_windows']} held-out in-distribution windows",
            highlight=False,
        )


def drift_report(
    model,
    manifest,
    *,
    time_column: str,
    window: int,
    reference_windows: int | None = None,
    alpha: float = 0.05,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    preprocessing: PreprocessingFlags | None = None,
    threads: int = 1,
) -> DriftReport:
    """Accuracy per time window with a trend test and the label-free alarm (see the module docstring).

    `reference_windows`: how many leading windows are in-distribution (default: 30% of the windows, at
    least 3).
    """
    start = time.perf_counter()
    for name, value, low in (("window", window, 1), ("bootstrap", bootstrap, 20), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise NasError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise NasError(f"alpha must be a number between 0 and 1, got {alpha!r}")
    classifier, _ = load_candidate(model, preprocessing, threads)
    read = read_manifest(manifest, decode=False)
    read.check_column(time_column, "--time-column")
    labels = read.label_indices(classifier.classes)
    keys = _time_keys(read, time_column)
    bounds = window_bounds(len(read.rows), window)
    needed = (
        reference_windows
        if reference_windows is not None
        else max(MIN_REFERENCE_WINDOWS, math.ceil(0.3 * len(bounds)))
    )
    if isinstance(needed, bool) or not isinstance(needed, int) or needed < MIN_REFERENCE_WINDOWS:
        raise NasError(f"--reference-windows must be an integer >= {MIN_REFERENCE_WINDOWS}, got {needed!r}")
    if len(bounds) <= needed:
        raise NasError(
            f"{read.path}: {len(read.rows)} images make {len(bounds)} windows of {window}: need more than the "
            f"{needed} reference windows (a smaller --window or more images)"
        )
    order = np.argsort(np.asarray(keys), kind="stable")
    from nas.data import decode_image

    rows = [read.rows[i] for i in order]
    images = [decode_image(r["file"], f"{read.path} ({r['path']})") for r in rows]
    labels = labels[order]
    seen = observe(classifier, images)
    correct = seen.predicted == labels
    reference_end = bounds[needed - 1][1]
    reference, held_out_part = split_reference(reference_end, seed)
    monitor = DriftMonitor.calibrate(
        seen.take(reference), len(classifier.classes), window, alpha=alpha, bootstrap=bootstrap, seed=seed
    )
    held_out = monitor.false_alarm_rate(seen.take(held_out_part), window, seed=seed + 1)
    calibration = {
        "reference_windows": needed,
        "reference_images": reference_end,
        "alpha": alpha,
        "bootstrap_windows": bootstrap,
        "score_threshold": monitor.threshold,
        "statistic_thresholds": monitor.thresholds(),
        "held_out_false_alarm_rate": held_out,
        "held_out_windows": DEFAULT_HELD_OUT_WINDOWS,
        "split": "in-distribution images split (seeded): two thirds reference, one third held out",
    }
    windows = []
    for k, (lo, hi) in enumerate(bounds):
        index = np.arange(lo, hi)
        windows.append(
            {
                "index": k,
                "from": rows[lo][time_column],
                "to": rows[hi - 1][time_column],
                "reference": k < needed,
                **window_accuracy(correct[index]),
                **monitor.check(seen.take(index)),
            }
        )
    trend = accuracy_trend([w["correct"] for w in windows], [w["n"] for w in windows])
    report = DriftReport(str(model), str(read.path), time_column, window, calibration, trend, windows)
    report.seconds = time.perf_counter() - start
    return report
