"""Benchmark: the shipped `x86-cpu` model on this machine, before and after calibration here.

The shipped model was fitted on another machine. This measures 80 random `mobilenet` networks here
(seed 1) with the profile's protocol, in one pass, and splits them alternately: it calibrates on 40 as
`nas profile calibrate` does (also on the first 10 and 20 of them), and checks every model on the other
40: MAPE, share within +-10%, Kendall tau, and the 90% interval's coverage. Interleaving matters on a
shared virtual machine, whose speed can drift by tens of percent within minutes. Run it with nothing
else on the CPU (latency measurements).

    .venv/bin/python benchmarks/latency_calibration.py [--runs 3]   # writes results/benchmarks/latency_calibration.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, run_main, write_result  # noqa: E402
from nas.latency import (  # noqa: E402  # noqa: E402  # noqa: E402
    calibrate_model,
    conformal_interval,
    error_metrics,
    leave_one_out,
    load_profile,
    machine_signature,
    measure_bundle,
    measurement_samples,  # noqa: E402
    write_bundle,
)

BENCHMARK = Benchmark(cost="cheap", seconds=99)  # latency_calibration.json "seconds"
NETWORKS = 40


def measured(folder: Path, settings) -> tuple[list, list]:
    """80 random networks measured in one pass, split alternately: the calibration and evaluation networks
    are measured interleaved, so a drift of the machine's speed during the run hits both alike."""
    bundle = write_bundle("mobilenet", folder / "bundle", networks=2 * NETWORKS, seed=1, blocks=False)
    samples = measurement_samples(measure_bundle(bundle, settings))
    return samples[0::2], samples[1::2]


def scores(model, samples, interval=None) -> dict:
    predicted = np.array([model.predict(f) for f, _ in samples])
    truth = np.array([y for _, y in samples])
    result = error_metrics(predicted, truth)
    if interval is not None:
        ratio = truth / predicted
        result["inside_interval"] = float(np.mean((ratio >= interval.low) & (ratio <= interval.high)))
    return result


def one_run(profile) -> dict:
    with tempfile.TemporaryDirectory(prefix="nas-bench-calibration-") as folder:
        calibration, evaluation = measured(Path(folder), profile.measurement)
    rows = {"shipped": {"networks": 0, **scores(profile.latency_model, evaluation)}}
    for n in (10, 20, NETWORKS):
        subset = calibration[:n]
        loo = leave_one_out(profile.latency_model, subset)
        interval = conformal_interval(np.array([y for _, y in subset]) / loo)
        model = calibrate_model(profile.latency_model, subset)
        rows[f"calibrated on {n}"] = {
            "networks": n,
            "loo_mape": error_metrics(loo, [y for _, y in subset])["mape"],
            "interval": [interval.low, interval.high],
            "interval_level": interval.level,
            **scores(model, evaluation, interval),
        }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="independent runs, one after another (default: %(default)s)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    profile = load_profile("x86-cpu")
    runs = []
    for run in range(args.runs):
        rows = one_run(profile)
        runs.append(rows)
        for name, row in rows.items():
            print(
                f"run {run + 1} {name:<18} MAPE {row['mape']:5.1f}%  within 10% {100 * row['within_10pct']:3.0f}%  "
                f"tau {row['kendall_tau']:.3f}"
                + (
                    f"  inside {row['interval_level']:.0%} interval {100 * row['inside_interval']:.0f}%"
                    if "inside_interval" in row
                    else ""
                )
            )
    result = {
        "signature": machine_signature(),
        "profile_machine": profile.machine,
        "evaluation": f"{NETWORKS} random mobilenet networks measured here with the profile's protocol, interleaved "
        "with the calibration networks (one bundle of 80, seed 1, split alternately), per run",
        "runs": runs,
    }
    write_result("latency_calibration", result, started=start)
    return 0


if __name__ == "__main__":
    run_main(main)
