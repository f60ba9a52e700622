"""Benchmark: the shipped `x86-cpu` model on this machine, before and after calibration here.

The shipped model was fitted on another machine. This measures 80 random `mobilenet` networks here
(seed 1) and their blocks with the profile's protocol in one pass, paired as `nas profile calibrate`
pairs them (`nas.latency.bundle_reference`, `measure_bundle(reference=...)`: each graph between two
measurements of the bundle's network of median MACs, read relative to them), and splits the networks
alternately: it calibrates on 40 as `nas profile calibrate --networks-only` does (also on the first 10
and 20 of them), on the 40 and the blocks they introduced as `nas profile calibrate` does, the same from
the pass's single (unpaired) medians as calibration did before pairing, and fits a model afresh on those
graphs (no prior) for comparison. It scores every model on the other 40 networks, measured in two more
paired passes with the same reference (`benchmarks/_paired.py`), against the mean of the two: MAPE, share
within +-10%, Kendall tau, and the 90% interval's coverage. All passes share one scale, the reference's
median over all of them, so that a drift of the machine's speed between passes is no error of scale.
Run it with nothing else on the CPU (latency measurements).

    .venv/bin/python benchmarks/latency_calibration.py [--runs 2]   # writes results/benchmarks/latency_calibration.json
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
from benchmarks._paired import paired_latencies, paired_pass  # noqa: E402
from nas.latency import (  # noqa: E402
    bundle_groups,
    bundle_reference,
    calibrated_with_held_out,
    conformal_interval,
    error_metrics,
    fit_latency_model,
    load_profile,
    machine_signature,
    measure_bundle,
    measurement_samples,
    reference_latencies,
    write_bundle,
)

BENCHMARK = Benchmark(cost="full", seconds=600)  # --runs 2; estimated: 1223 measurements a run (810: 198 s)
NETWORKS = 40


def measured(folder: Path, settings) -> dict:
    """80 random networks and their blocks measured in one paired pass; the networks split alternately into
    calibration and evaluation ones. Returns the calibration samples, paired (`paired`) and single
    (`single`) for the same graphs: the 40 calibration networks first, then (`blocks`) the blocks they
    introduced, with the group of each block (the index of its network; a coverage block, from no
    network, a group of its own); blocks first seen in an evaluation network are measured but unused.
    `evaluation`: the evaluation networks' (features, paired latency) from the same pass; `single_eval`
    their single medians; `truth`: two more paired passes over them, on the same scale."""
    bundle = write_bundle("mobilenet", folder / "bundle", networks=2 * NETWORKS, seed=1, blocks=True)
    entries = json.loads((bundle / "bundle.json").read_text())["models"]
    reference = bundle_reference(bundle)
    csv_path = measure_bundle(bundle, settings, reference=reference)
    groups = bundle_groups(bundle)
    evaluation_paths = [
        bundle / e["path"] for e, g in zip(entries, groups) if e["kind"] == "network" and g % 2
    ]
    truth = [paired_pass(evaluation_paths, bundle / reference, settings) for _ in range(2)]
    scale = float(np.median(reference_latencies(csv_path) + [ref for one in truth for _, ref in one]))
    paired = measurement_samples(csv_path, scale=scale)
    single = measurement_samples(csv_path, paired=False)
    calibration, blocks, evaluation, single_eval = [], [], [], []
    for index, (entry, group) in enumerate(zip(entries, groups, strict=True)):
        if entry["kind"] == "network":
            if group % 2 == 0:
                calibration.append(index)
            else:
                evaluation.append(paired[index])
                single_eval.append(single[index][1])
        elif group >= 2 * NETWORKS:  # a coverage block: no network introduced it
            blocks.append((index, group))
        elif group % 2 == 0:
            blocks.append((index, group // 2))
    order = calibration + [index for index, _ in blocks]
    return {
        "paired": [paired[i] for i in order],
        "single": [single[i] for i in order],
        "groups": list(range(NETWORKS)) + [group for _, group in blocks],
        "evaluation": evaluation,
        "single_eval": single_eval,
        "truth": [[median for median, _ in one] for one in truth],
        "truth_paired": paired_latencies(truth, scale),
        "reference": reference,
        "scale_ms": scale,
    }


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
        m = measured(Path(folder), profile.measurement)
    first, second = m["truth_paired"]
    truth = [(features, float(y)) for (features, _), y in zip(m["evaluation"], (first + second) / 2)]
    graphs, groups = m["paired"], m["groups"]
    rows = {
        "measured again": {"networks": NETWORKS, **error_metrics(m["truth"][0], m["single_eval"])},
        "paired, measured again": {"networks": NETWORKS, **error_metrics(second, first)},
        "paired calibration pass": {
            "networks": NETWORKS,
            **error_metrics([y for _, y in m["evaluation"]], [y for _, y in truth]),
        },
        "shipped": {"networks": 0, **scores(profile.latency_model, truth)},
    }
    for n in (10, 20, NETWORKS):
        rows[f"calibrated on {n}"] = calibrated_row(profile, graphs[:n], truth, n)
    rows[f"calibrated on {NETWORKS} + blocks"] = calibrated_row(profile, graphs, truth, NETWORKS, groups)
    rows[f"calibrated on {NETWORKS} + blocks, unpaired"] = calibrated_row(
        profile, m["single"], truth, NETWORKS, groups
    )
    rows[f"fitted afresh on {NETWORKS} + blocks"] = {
        "networks": NETWORKS,
        "graphs": len(graphs),
        **scores(fit_latency_model(graphs), truth),
    }
    return {"reference": m["reference"], "scale_ms": m["scale_ms"], "rows": rows}


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
        run_result = one_run(profile)
        runs.append(run_result)
        for name, row in run_result["rows"].items():
            print(
                f"run {run + 1} {name:<34} MAPE {row['mape']:5.1f}%  within 10% {100 * row['within_10pct']:3.0f}%  "
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
        "evaluation": f"{NETWORKS} random mobilenet networks measured here with the profile's protocol (one "
        "bundle of 80 networks and their blocks, seed 1, networks split alternately into calibration and "
        "evaluation ones), per run. Every pass is paired as `nas profile calibrate` pairs (each graph between "
        "two measurements of the bundle's network of median MACs, 'reference', its median over their geometric "
        "mean), all passes on one scale, the reference's median over all of them ('scale_ms'). Models are "
        "scored against the mean of two paired passes over the evaluation networks after the calibration pass. "
        "'measured again': the evaluation networks' single medians in the first of those passes against those "
        "of the calibration pass; 'paired, measured again': the second paired pass against the first; 'paired "
        "calibration pass': the evaluation networks' paired latencies in the calibration pass against the "
        "truth; 'calibrated on N': on the paired calibration networks only (--networks-only); '+ blocks': and "
        "their blocks (the default); ', unpaired': the same from the calibration pass's single medians",
        "runs": runs,
    }
    write_result("latency_calibration", result, started=start)
    return 0


if __name__ == "__main__":
    run_main(main)
