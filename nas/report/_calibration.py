"""The calibration figure of a hybrid search: what the model predicted before each device measurement.

In `--latency hybrid` every trained candidate is measured on the device after the model, refitted on
the measurements before it, predicted it (`latency_predicted_ms`, `latency_calibrated_on` in trials.csv):
each point is a held-out prediction, so the figure shows the model's error as the search went on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from nas.records import TrialRecord

WINDOW = 5  # the running error is the MAPE of the last WINDOW measurements


def calibration_points(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials measured on the device after a prediction, in the order the model saw them."""
    points = [
        t
        for t in trials
        if t.latency_source == "device"
        and t.latency_predicted_ms is not None
        and t.latency_calibrated_on is not None
        and t.duplicate_of is None
    ]
    return sorted(points, key=lambda t: (t.latency_calibrated_on, t.number))


def relative_errors(points: Sequence[TrialRecord]) -> np.ndarray:
    """|predicted - measured| / measured of each point, in percent."""
    predicted = np.array([t.latency_predicted_ms for t in points], dtype=float)
    measured = np.array([t.latency_ms for t in points], dtype=float)
    return np.abs(predicted - measured) / measured * 100


def calibration_figure(points: Sequence[TrialRecord], profile: str) -> Figure:
    """Left: predicted against measured (the calibration curve), coloured by how many measurements the
    model had been refitted on. Right: each prediction's error and the running MAPE, in measurement order."""
    predicted = np.array([t.latency_predicted_ms for t in points], dtype=float)
    measured = np.array([t.latency_ms for t in points], dtype=float)
    order = np.array([t.latency_calibrated_on for t in points], dtype=float)
    errors = relative_errors(points)
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    scatter = left.scatter(measured, predicted, c=order, cmap="viridis", s=22)
    top = max(measured.max(), predicted.max()) * 1.05
    left.plot([0, top], [0, top], color="#555555", linewidth=1, label="predicted = measured")
    left.set_xlim(0, top)
    left.set_ylim(0, top)
    left.set_xlabel("measured on the device (ms)")
    left.set_ylabel("predicted before measuring (ms)")
    left.legend(fontsize=8, loc="upper left")
    fig.colorbar(scatter, ax=left, label="device measurements the model was refitted on")
    right.plot(order, errors, "o", color="#4c72b0", markersize=4, label="one prediction")
    running = [errors[max(0, i - WINDOW + 1) : i + 1].mean() for i in range(len(errors))]
    right.plot(order, running, color="#c44e52", label=f"MAPE of the last {WINDOW}")
    right.set_xlabel("device measurements the model was refitted on")
    right.set_ylabel("prediction error (% of the measurement)")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8, loc="upper right")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Online calibration of the {profile} latency model ({len(points)} device measurements)")
    fig.tight_layout()
    return fig
