"""Benchmark: the x86-cpu latency model, fitted through the bundle flow and checked on held-out networks.

1. `nas profile bundle` (space mobilenet, seed 0): random whole networks plus their blocks;
2. `nas profile measure` with the x86-cpu protocol (ONNX Runtime, CPU EP, 1 thread, optimization ALL);
3. `nas profile fit`: writes the model into hardware_profiles/x86-cpu.yaml (latency stays `measured`;
   the model serves `--latency predicted` and the report's breakdowns);
4. a second bundle (seed 1, whole networks only, none seen in the fit) is measured and predicted.
Targets: MAPE <= 5%, >= 95% within +-10%, Kendall tau >= 0.9, prediction < 10 ms.

    python benchmarks/latency_x86.py     # ~5 min; writes results/benchmarks/latency_x86.json
    python benchmarks/latency_x86.py --reuse-measurements   # refit on the graphs measured last time
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import PROFILES, RUNS, Benchmark, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="full", seconds=300)  # estimate: bundling and measuring 250 networks


def main() -> int:
    started = time.perf_counter()
    from nas.latency import (
        MeasurementSettings,
        error_metrics,
        fit_profile,
        load_profile,
        measure_bundle,
        measurement_samples,
        write_bundle,
        write_profile,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-networks", type=int, default=150)
    parser.add_argument("--test-networks", type=int, default=100)
    parser.add_argument("--space", default="mobilenet")
    parser.add_argument(
        "--reuse-measurements",
        action="store_true",
        help="skip bundling and measuring; refit on the bundles measured by the last run",
    )
    args = parser.parse_args()

    work = RUNS / "latency_x86"
    fit_bundle, test_bundle = work / "fit", work / "test"
    # The x86-cpu protocol is defined here (this benchmark creates the profile), not read back from the
    # profile: a profile whose model a newer featurizer no longer reads must not block its own refit.
    settings = MeasurementSettings(round_ms=25.0)
    timings = {}
    if not args.reuse_measurements:
        shutil.rmtree(work, ignore_errors=True)
        start = time.perf_counter()
        write_bundle(args.space, fit_bundle, networks=args.fit_networks, seed=0)
        write_bundle(args.space, test_bundle, networks=args.test_networks, seed=1, blocks=False)
        timings["bundles_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        measure_bundle(fit_bundle, settings)
        measure_bundle(test_bundle, settings)
        timings["measure_s"] = round(time.perf_counter() - start, 1)
    fit_csv, test_csv = fit_bundle / "measurements.csv", test_bundle / "measurements.csv"
    fit_ids = {m["id"] for m in json.loads((fit_bundle / "bundle.json").read_text())["models"]}
    test_models = json.loads((test_bundle / "bundle.json").read_text())["models"]
    overlap = sum(m["id"] in fit_ids for m in test_models)

    start = time.perf_counter()
    profile = fit_profile(
        fit_csv,
        "x86-cpu",
        latency="measured",
        description="the local x86-64 CPU, measured with ONNX Runtime on the CPU execution provider, one "
        "intra-op thread; the fitted model predicts it (`--latency predicted`)",
    )
    data_dir = PROFILES / "data"
    shipped_csv = data_dir / "x86-cpu_measurements.csv"
    shutil.copyfile(fit_csv, shipped_csv)
    shutil.copyfile(fit_csv.with_name("measurements.meta.json"), data_dir / "x86-cpu_measurements.meta.json")
    profile["measurements"]["path"] = str(shipped_csv)
    profile["measurement"] = {
        k: getattr(settings, k) for k in ("warmup_runs", "rounds", "round_ms", "max_spread", "max_attempts")
    }
    write_profile(profile, PROFILES / "x86-cpu.yaml")
    timings["fit_s"] = round(time.perf_counter() - start, 1)

    fitted = load_profile("x86-cpu").latency_model
    samples = [s for s, m in zip(measurement_samples(test_csv), test_models) if m["id"] not in fit_ids]
    start = time.perf_counter()
    predicted = [fitted.predict(features) for features, _ in samples]
    predict_ms = (time.perf_counter() - start) / len(samples) * 1e3
    measured = [latency for _, latency in samples]
    held_out = error_metrics(predicted, measured)

    # Prediction cost from an architecture (what a screen of thousands pays): features composed from
    # cached per-part features; the first architectures pay for exporting their new parts.
    import optuna

    from nas.latency import ArchitectureFeaturizer
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, study = load_space(args.space), optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    archs = [space.sample(study.ask()) for _ in range(2000)]
    featurizer = ArchitectureFeaturizer(num_classes=10)
    start = time.perf_counter()
    for arch in archs[:1000]:
        fitted.predict(featurizer.features(arch))
    cold_ms = (time.perf_counter() - start) / 1000 * 1e3
    parts_after_1000 = len(featurizer)
    start = time.perf_counter()
    for arch in archs[1000:]:
        fitted.predict(featurizer.features(arch))
    warm_ms = (time.perf_counter() - start) / 1000 * 1e3

    report = {
        "measured": json.loads(fit_csv.with_name("measurements.meta.json").read_text())["measured"],
        "settings": settings.__dict__,
        "fit": {"graphs": profile["validation"]["n"], "cross_validation": profile["validation"]},
        "held_out": {
            **held_out,
            "networks": len(samples),
            "overlap_with_fit_excluded": overlap,
            "latency_range_ms": [min(measured), max(measured)],
        },
        "targets": {
            "mape_percent_max": 5.0,
            "within_10pct_min": 0.95,
            "kendall_tau_min": 0.9,
            "predict_ms_max": 10.0,
        },
        "predict_ms_per_network_from_features": round(predict_ms, 3),
        "predict_ms_per_architecture": {
            "first_1000_including_part_exports": round(cold_ms, 3),
            "next_1000": round(warm_ms, 3),
            "parts_cached_after_1000": parts_after_1000,
            "parts_cached_after_2000": len(featurizer),
        },
        "overhead_ms": fitted.overhead_ms,
        "timings": timings,
        "points": [{"measured_ms": m, "predicted_ms": p} for m, p in zip(measured, predicted)],
    }
    write_result("latency_x86", report, started=started)
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "fit",
                    "held_out",
                    "predict_ms_per_network_from_features",
                    "predict_ms_per_architecture",
                )
            },
            indent=1,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    run_main(main)
