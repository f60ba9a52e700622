"""Benchmark: a few-shot profile of this machine from 10 networks, chosen or random, on real measurements.

The corpus benchmark (latency_corpus.py) checks the few-shot fit on devices measured by others. This one
measures a device here: `fbnet` networks (the space the latency-corpus devices cover) exported and
measured twice with ONNX Runtime on this CPU with the `x86-cpu` profile's protocol, a runtime none of
the corpus devices used (how well the two passes agree bounds any model). Each draw takes a pool of half
the measured networks, fits the few-shot model (`nas.latency.fit_few_shot_predictions`, the corpus
profiles as the prior) on 10 of them, chosen as `nas profile bundle` chooses them (`design_few_shot` on
the corpus devices' predictions) or drawn at random from the same pool, and scores it on every network
but those 10: Spearman, MAPE, and how often the 90% interval holds the measurement. For reference, the
few-shot fit and a direct fit (`fit_latency_model`) on the whole pool, tested on the other half. Run it
with nothing else on the CPU (latency measurements).

    .venv/bin/python benchmarks/few_shot_local.py [--networks 150] [--draws 20]

writes results/benchmarks/few_shot_local.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._corpus_fits import mape, spearman, summary  # noqa: E402
from benchmarks._harness import RUNS, Benchmark, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(
    cost="full", seconds=400
)  # estimated: 150 fbnet networks measured, then seconds of fits
K = 10
CACHE = RUNS / "few_shot_local"


def measured_networks(networks: int, settings) -> tuple[list, np.ndarray, np.ndarray]:
    """(features, latency ms of a first pass, of a second pass) of `networks` random fbnet networks (seed 1)
    measured here twice, one pass after the other. The bundles and their measurements are kept in
    results/benchmark-runs/few_shot_local/; a finished pass is reused (delete the folder to measure again)."""
    from nas.latency import measure_bundle, measurement_samples, write_bundle

    passes = []
    for name in ("first", "second"):
        bundle = CACHE / f"fbnet-{networks}-{name}"
        if not (bundle / "bundle.json").is_file():
            shutil.rmtree(bundle, ignore_errors=True)
            write_bundle("fbnet", bundle, networks=networks, seed=1, blocks=False, few_shot=False)
        meta = bundle / "measurements.meta.json"
        finished = meta.is_file() and json.loads(meta.read_text()).get("finished")
        csv_path = bundle / "measurements.csv" if finished else measure_bundle(bundle, settings)
        passes.append(measurement_samples(csv_path, paired=False))
    features = [f for f, _ in passes[0]]
    return features, np.array([y for _, y in passes[0]]), np.array([y for _, y in passes[1]])


def scored(fit, q: np.ndarray, y: np.ndarray, rest: np.ndarray) -> tuple[float, float, float]:
    p = fit.predict(q[rest])
    half = fit.interval_log_halfwidth
    inside = (y[rest] >= p * np.exp(-half)) & (y[rest] <= p * np.exp(half))
    return spearman(p, y[rest]), mape(p, y[rest]), float(inside.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=150, help="fbnet networks measured (default: 150)")
    parser.add_argument("--draws", type=int, default=20, help="pools of half the networks (default: 20)")
    args = parser.parse_args()
    started = time.perf_counter()
    from nas.latency import (
        corpus_profiles,
        design_few_shot,
        fit_few_shot_predictions,
        fit_latency_model,
        load_profile,
        machine_signature,
        prior_matrix,
    )

    profile = load_profile("x86-cpu")
    features, first, second = measured_networks(args.networks, profile.measurement)
    y = np.sqrt(first * second)  # the two passes' geometric mean: half of each pass's noise
    corpus = corpus_profiles()
    q = prior_matrix([p.latency_model for p in corpus], features)
    rows = {"chosen": [], "random": [], "few-shot, whole pool": [], "direct, whole pool": []}
    for draw in range(args.draws):
        rng = np.random.default_rng([1, draw])
        pool = rng.permutation(len(y))[: len(y) // 2]
        picks = {"chosen": pool[design_few_shot(q[pool], K, seed=draw)], "random": pool[:K]}
        for name, meas in picks.items():
            rest = np.setdiff1d(np.arange(len(y)), meas)
            rows[name].append(scored(fit_few_shot_predictions(q[meas], y[meas]), q, y, rest))
        rest = np.setdiff1d(np.arange(len(y)), pool)
        rows["few-shot, whole pool"].append(scored(fit_few_shot_predictions(q[pool], y[pool]), q, y, rest))
        direct = fit_latency_model([(features[i], y[i]) for i in pool])
        p = np.array([direct.predict(features[i]) for i in rest])
        rows["direct, whole pool"].append((spearman(p, y[rest]), mape(p, y[rest]), float("nan")))
    report = {
        "space": "fbnet (10 classes)",
        "networks": len(y),
        "latency_ms": summary(y),
        "measurement": "ONNX Runtime on this machine, the x86-cpu profile's protocol (single medians), two "
        "passes; every latency below is the geometric mean of the two",
        "passes_agree": {"spearman": spearman(first, second), "mape": mape(second, first)},
        "machine_signature": machine_signature(),
        "prior": f"the {len(corpus)} latency-corpus profiles",
        "k": K,
        "draws": args.draws,
        "pool": f"{len(y) // 2} of the measured networks per draw; chosen / random: tested on every network "
        f"but the {K}; 'whole pool' rows: fitted on all the pool (few-shot, or a direct fit_latency_model) and "
        "tested on the other half",
        "results": {
            name: {
                "spearman": summary([r[0] for r in values]),
                "mape": summary([r[1] for r in values]),
                "interval_coverage_90": summary([r[2] for r in values])
                if name != "direct, whole pool"
                else None,
            }
            for name, values in rows.items()
        },
    }
    write_result("few_shot_local", report, started=started)
    for name, entry in report["results"].items():
        print(
            f"{name:22s} spearman {entry['spearman']['mean']:.3f} ({entry['spearman']['std']:.3f})  "
            f"MAPE {entry['mape']['mean']:.1f}%"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
