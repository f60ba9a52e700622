"""Benchmark: --latency hybrid corrects a wrong latency model from 20 device measurements.

The local CPU stands in for the device (measured in this process with the x86-cpu profile's protocol,
`measure_on_device`, what a device node runs). The prior is the shipped x86-cpu model with every weight
scaled 2x. Per run, 120 random mobilenet networks are exported and measured in one pass, in random order;
the first 20 feed the search's online calibration (`nas.search.OnlineCalibration`, one measurement at a
time, as a hybrid search refits after each trained candidate), and the next 100 are predicted by:

- the refitted model (prior: the perturbed model, 20 measurements),
- the unperturbed shipped model, as it is,
- the perturbed model, as it is, and the unperturbed model refitted on the same 20 (for context).

Target: the refitted model's MAPE on the 100 is within 1.5x of the unperturbed model's. The stricter
ratio, to the unperturbed model refitted on the same 20, says whether the perturbation is forgotten
(1.0: the prior's error left no trace), also when the shipped model is itself off on this machine.
Every model is
scored against the same measurements, so a machine slowed down by other processes moves both MAPEs
alike; the load average is recorded. The networks are random, where a search measures the ones it trains.

    python benchmarks/hybrid_calibration.py [--runs 3]   # writes results/benchmarks/hybrid_calibration.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, BenchmarkError, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="full", seconds=1383)  # hybrid_calibration.json, under a load average of 10-20

PROFILE = "x86-cpu"
SCALE = 2.0
TARGET = 1.5
REFITTED = "refitted (prior: the weights x2)"
UNPERTURBED = "unperturbed shipped model"
PERTURBED = "perturbed model (weights x2), not refitted"
UNPERTURBED_REFITTED = "unperturbed model refitted on the same measurements"


class RandomChoices:
    """Samples a space uniformly (the `suggest_categorical` a space asks of an Optuna trial)."""

    def __init__(self, rng):
        self.rng = rng

    def suggest_categorical(self, name, choices):
        return choices[int(self.rng.integers(len(choices)))]


def perturbed(profile):
    """The profile with every weight of its model times SCALE (the overhead kept)."""
    from nas.latency import LatencyModel

    model = profile.latency_model
    scaled = LatencyModel(
        overhead_ms=model.overhead_ms, weights={c: SCALE * w for c, w in model.weights.items()}
    )
    return dataclasses.replace(profile, latency_model=scaled, name=f"{profile.name}-x{SCALE:g}")


def one_run(profile, seed: int, calibrate_on: int, evaluate_on: int) -> dict:
    import nas
    from nas.latency import ArchitectureFeaturizer, error_metrics, measure_on_device
    from nas.search import OnlineCalibration

    rng = np.random.default_rng(seed)
    space, featurizer = nas.load_space("mobilenet"), ArchitectureFeaturizer(10)
    archs = [space.sample(RandomChoices(rng)) for _ in range(calibrate_on + evaluate_on)]
    graphs = [nas.export_onnx(nas.build_model(a, 10, seed=seed), a.resolution, fast=True) for a in archs]
    features = [featurizer.features(a) for a in archs]
    load_before = os.getloadavg()
    measured = np.array([measure_on_device(g, profile.measurement)["median_ms"] for g in graphs])
    load_after = os.getloadavg()

    online, context = OnlineCalibration(perturbed(profile)), OnlineCalibration(profile)
    prospective = []  # each calibration network predicted before its measurement is added
    for f, ms in zip(features[:calibrate_on], measured[:calibrate_on]):
        prospective.append(abs(online.predict(f).latency_ms - ms) / ms * 100)
        online.add(f, ms)
        context.add(f, ms)
    held_out, truth = features[calibrate_on:], measured[calibrate_on:]

    def score(predict) -> dict:
        return error_metrics([predict(f) for f in held_out], truth)

    n = calibrate_on
    rows = {
        REFITTED: score(lambda f: online.predict(f).latency_ms),
        UNPERTURBED: score(profile.latency_model.predict),
        PERTURBED: score(perturbed(profile).latency_model.predict),
        UNPERTURBED_REFITTED: score(lambda f: context.predict(f).latency_ms),
    }
    ratio = rows[REFITTED]["mape"] / rows[UNPERTURBED]["mape"]
    strict = rows[REFITTED]["mape"] / rows[UNPERTURBED_REFITTED]["mape"]
    return {
        "seed": seed,
        "models": rows,
        "calibrated_on": n,
        "mape_ratio_refitted_to_unperturbed": ratio,
        "mape_ratio_refitted_to_unperturbed_refitted": strict,
        "meets_target": ratio <= TARGET,
        "prospective_error_pct": [round(e, 2) for e in prospective],
        "median_measured_ms": float(np.median(measured)),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def main() -> int:
    started = time.perf_counter()
    from nas.latency import load_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="independent runs (default: %(default)s)")
    parser.add_argument("--calibrate-on", type=int, default=20, help="measurements refitted on (default: 20)")
    parser.add_argument("--evaluate-on", type=int, default=100, help="networks scored (default: 100)")
    parser.add_argument("--out", help="write here instead of results/benchmarks/hybrid_calibration.json")
    args = parser.parse_args()
    if args.runs < 1 or args.calibrate_on < 1 or args.evaluate_on < 2:
        raise BenchmarkError("--runs and --calibrate-on must be at least 1, --evaluate-on at least 2")
    profile = load_profile(PROFILE)
    runs = []
    for run in range(args.runs):
        result = one_run(profile, run, args.calibrate_on, args.evaluate_on)
        runs.append(result)
        mapes = "  ".join(f"{name}: {row['mape']:.1f}%" for name, row in result["models"].items())
        print(f"run {run + 1}: ratio {result['mape_ratio_refitted_to_unperturbed']:.2f}  {mapes}", flush=True)
    ratios = [r["mape_ratio_refitted_to_unperturbed"] for r in runs]
    body = {
        "profile": PROFILE,
        "perturbation": f"every weight of the {PROFILE} model times {SCALE:g} (overhead kept)",
        "device": "this machine's CPU, measured in the benchmark's process with the profile's protocol",
        "calibrate_on": args.calibrate_on,
        "evaluate_on": args.evaluate_on,
        "target": f"refitted MAPE <= {TARGET:g} x the unperturbed model's MAPE on the same networks",
        "contention": "measured while other processes used this 2-core machine (a training job, other "
        "engineers' tests): see load_average_before_after; every model is scored on the same measurements",
        "runs": runs,
        "max_ratio": max(ratios),
        "max_ratio_to_unperturbed_refitted": max(
            r["mape_ratio_refitted_to_unperturbed_refitted"] for r in runs
        ),
        "meets_target": all(r["meets_target"] for r in runs),
    }
    write_result("hybrid_calibration", body, started=started, out=args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
