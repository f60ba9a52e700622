"""Benchmark: the shipped `x86-cpu` model on this machine, before and after calibration here.

The shipped model was fitted on another machine. This measures 80 random `mobilenet` networks here
(seed 1) and their blocks with the profile's protocol, in one pass, and splits the networks alternately:
it calibrates on 40 as `nas profile calibrate --networks-only` does (also on the first 10 and 20 of
them), on the 40 and the blocks they introduced as `nas profile calibrate` does, and fits a model afresh
on those graphs (no prior) for comparison; it checks every model on the other 40 networks: MAPE, share
within +-10%, Kendall tau, and the 90% interval's coverage. Interleaving matters on a shared virtual
machine, whose speed can drift by tens of percent within minutes. Run it with nothing else on the CPU
(latency measurements).

    .venv/bin/python benchmarks/latency_calibration.py [--runs 3]   # writes results/benchmarks/latency_calibration.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, run_main, write_result  # noqa: E402
from benchmarks._paired import paired_latencies, paired_pass, reference_network  # noqa: E402
from nas.latency import (  # noqa: E402
    bundle_groups,
    calibrated_with_held_out,
    conformal_interval,
    error_metrics,
    fit_latency_model,
    load_profile,
    machine_signature,
    measure_bundle,
    measure_latency,
    measurement_samples,
    write_bundle,
)

BENCHMARK = Benchmark(cost="full", seconds=400)  # --runs 2; latency_calibration.json: 198 s for --runs 1
NETWORKS = 40


def measured(folder: Path, settings) -> tuple[list, list, list, list, list]:
    """80 random networks and their blocks measured in one pass; the networks split alternately into
    calibration and evaluation ones, so a drift of the machine's speed during the run hits both alike.
    Returns (calibration networks, [(block, index of the calibration network that introduced it)],
    evaluation networks, the evaluation networks measured again after the pass): blocks first seen in an
    evaluation network are measured (in order, for the same drift) but unused; coverage blocks (not from
    any network) get a group of their own. The second measurement is the measurements' own agreement,
    the best any model of them can do. Last, two passes over the evaluation networks paired with a
    reference network (`benchmarks/_paired.py`): measurements from which the machine's slow phases cancel."""
    bundle = write_bundle("mobilenet", folder / "bundle", networks=2 * NETWORKS, seed=1, blocks=True)
    entries = json.loads((bundle / "bundle.json").read_text())["models"]
    samples = measurement_samples(measure_bundle(bundle, settings))
    calibration, blocks, evaluation, again = [], [], [], []
    for entry, group, sample in zip(entries, bundle_groups(bundle), samples, strict=True):
        kind = entry["kind"]
        if kind == "network":
            (calibration if group % 2 == 0 else evaluation).append(sample)
            if group % 2:
                again.append(bundle / entry["path"])
        elif group >= 2 * NETWORKS:  # a coverage block: no network introduced it
            blocks.append((sample, group))
        elif group % 2 == 0:
            blocks.append((sample, group // 2))
    remeasured = [measure_latency(path, settings).median_ms for path in again]
    reference = reference_network(again, [y for _, y in evaluation])
    paired = paired_latencies([paired_pass(again, reference, settings) for _ in range(2)])
    return calibration, blocks, evaluation, remeasured, paired


def scores(model, samples, interval=None) -> dict:
    predicted = np.array([model.predict(f) for f, _ in samples])
    truth = np.array([y for _, y in samples])
    result = error_metrics(predicted, truth)
    if interval is not None:
        ratio = truth / predicted
        result["inside_interval"] = float(np.mean((ratio >= interval.low) & (ratio <= interval.high)))
    return result


def calibrated_row(profile, subset: list, evaluation: list, networks: int, groups=None) -> dict:
    """Calibrate on `subset` (its first `networks` are networks) as `calibrate_profile` does; the
    interval from the held-out networks only, each predicted without its group (its own blocks)."""
    model, held_out = calibrated_with_held_out(profile.latency_model, subset, groups)
    truth = np.array([y for _, y in subset])
    is_network = np.arange(len(subset)) < networks
    interval = conformal_interval(truth[is_network] / held_out[is_network])
    return {
        "networks": networks,
        "graphs": len(subset),
        "held_out_mape": error_metrics(held_out[is_network], truth[is_network])["mape"],
        "interval": [interval.low, interval.high],
        "interval_level": interval.level,
        **scores(model, evaluation, interval),
    }


def one_run(profile) -> dict:
    with tempfile.TemporaryDirectory(prefix="nas-bench-calibration-") as folder:
        calibration, blocks, evaluation, remeasured, paired = measured(Path(folder), profile.measurement)
    first = [y for _, y in evaluation]
    paired_truth = [(features, float(y)) for (features, _), y in zip(evaluation, np.mean(paired, axis=0))]
    rows = {
        "measured again": {"networks": NETWORKS, **error_metrics(remeasured, first)},
        "paired, measured again": {"networks": NETWORKS, **error_metrics(paired[1], paired[0])},
        "shipped": {"networks": 0, **scores(profile.latency_model, evaluation)},
    }
    for n in (10, 20, NETWORKS):
        rows[f"calibrated on {n}"] = calibrated_row(profile, calibration[:n], evaluation, n)
    groups = list(range(NETWORKS)) + [group for _, group in blocks]
    graphs = calibration + [sample for sample, _ in blocks]
    rows[f"calibrated on {NETWORKS} + blocks"] = calibrated_row(profile, graphs, evaluation, NETWORKS, groups)
    rows[f"calibrated on {NETWORKS} + blocks, vs paired"] = calibrated_row(
        profile, graphs, paired_truth, NETWORKS, groups
    )
    direct = fit_latency_model(graphs)
    rows[f"fitted afresh on {NETWORKS} + blocks"] = {
        "networks": NETWORKS,
        "graphs": len(graphs),
        **scores(direct, evaluation),
    }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=2, help="independent runs, one after another (default: %(default)s)"
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
        "with the calibration networks and their blocks (one bundle of 80 networks, seed 1, split alternately), "
        "per run; 'measured again': those networks measured a second time after the pass, scored against the "
        "first measurement (the measurements' own agreement); 'paired': the evaluation networks measured in two "
        "more passes, each between two measurements of a reference network and divided by their geometric "
        "mean (benchmarks/_paired.py), so that the machine's slow phases cancel; 'vs paired': a model scored "
        "against the mean of those two passes",
        "runs": runs,
    }
    write_result("latency_calibration", result, started=start)
    return 0


if __name__ == "__main__":
    run_main(main)
