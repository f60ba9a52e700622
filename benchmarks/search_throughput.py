"""Benchmark: the default search end to end.

Records trials per hour and the fraction of worker time spent outside training (export, latency
measurement, Ray start-up, bookkeeping and idle workers at phase boundaries), target <= 10% (issue 18).

    python benchmarks/search_throughput.py            # writes results/benchmarks/search_throughput.json
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import nas  # noqa: E402
from benchmarks._harness import RUNS, Benchmark, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="full", seconds=409)  # search_throughput.json benchmark_seconds
ENGINE_SETTINGS = {
    "sampler": "nsga2",
    "population": 8,
    "prescreen": 1,
    "prescreen_score": "naswot",
    "latency_budget_ms": None,  # every sampled candidate trains
}
TRIALS = 24


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    parser.add_argument(
        "--driver",
        choices=("auto", "batch"),
        default="auto",
        help="auto: the driver nas.search chooses (measured latency: the steady driver, workers frozen while "
        "the driver measures); batch: the batch driver (a barrier at each batch's end), to compare",
    )
    args = parser.parse_args()

    run_dir = RUNS / "search_throughput"
    shutil.rmtree(run_dir, ignore_errors=True)
    start, started_at = time.perf_counter(), time.time()
    # What the first call of nas.search imports (torch, optuna, the package), imported here instead, inside the
    # timed search all the same, so the start-up's share of it is known.
    importlib.import_module("nas.search._api")
    imports = time.perf_counter() - start
    # The engine's own overhead with the default settings, written out so a later change of the package's
    # defaults cannot change what this measures (pre-screening's cost: benchmarks/search_efficiency.py).
    executor = barrier_executor(args.workers) if args.driver == "batch" else None
    try:
        result = nas.search(
            trials=args.trials, workers=args.workers, out=str(run_dir), executor=executor, **ENGINE_SETTINGS
        )
    finally:
        if executor is not None:
            executor.close()
    wall = time.perf_counter() - start
    first_ask, last_tell = ask_and_tell_span(run_dir)
    exported = nas.export_run(run_dir)
    with open(run_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    config = json.loads((run_dir / "config.json").read_text())

    def total(column: str) -> float:
        return sum(float(r[column]) for r in rows if r.get(column) not in (None, ""))

    workers = args.workers or os.cpu_count()
    train = total("train_seconds")
    evaluate = total("eval_seconds") if rows and "eval_seconds" in rows[0] else 0.0
    worker_seconds = wall * workers
    report = {
        "driver": args.driver,
        "settings": config["search"],
        "recipe": config["recipe"],
        "trials": result.finished,
        "complete": result.complete,
        "infeasible": result.infeasible,
        "failed": result.failed,
        "pareto_size": len(result.pareto),
        "workers": workers,
        "wall_seconds": round(wall, 1),
        "trials_per_hour": round(result.finished / wall * 3600, 1),
        "train_seconds": round(train, 1),
        "fraction_outside_training": round(1 - train / worker_seconds, 4),
        "target_fraction_outside_training": 0.10,
        "definition": "1 - (sum of training-loop seconds over trials) / (search wall time x workers); "
        "everything else counts as outside training: validation, build, cost counts, ONNX export, "
        "latency measurement (workers frozen or idle), Ray start-up, dataset loading, bookkeeping, "
        "idle workers",
        "breakdown_seconds": {
            "validation": round(evaluate, 1),
            "prepare (build + cost counts + ONNX export, on workers)": round(total("prepare_seconds"), 1),
            "latency measurement (driver; workers frozen or idle)": round(total("latency_seconds"), 1),
            "start-up before the first ask (Ray, dataset, study; wall)": round(first_ask - started_at, 1),
            "of which the driver's imports (torch, optuna, the package; wall)": round(imports, 1),
            "after the last tell (outputs, Ray shut-down; wall)": round(started_at + wall - last_tell, 1),
        },
        "pareto": [
            {k: p[k] for k in ("trial", "accuracy", "latency_ms", "params", "macs", "summary")}
            for p in result.pareto
        ],
        "exported_onnx": len(exported),
        "export_max_abs_diff_vs_torch": max(e.max_abs_diff for e in exported),
        "latency_remeasured_quiet": remeasured(exported, config["search"]["profile"]),
    }
    write_result("search_throughput", report, started=start, out=args.out)
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "trials",
                    "pareto_size",
                    "wall_seconds",
                    "trials_per_hour",
                    "fraction_outside_training",
                )
            },
            indent=2,
        )
    )
    return 0


def barrier_executor(workers: int | None):
    """The local Ray executor, with workers that say they cannot be frozen: `nas.search` then runs the batch
    driver (its Ray starts before the dataset loads, where nas.search's own starts after: same work)."""
    from nas.search import RayExecutor

    class BarrierExecutor(RayExecutor):
        def local_raylet_pid(self):
            return None

    return BarrierExecutor(workers=workers)


def remeasured(exported, profile_name: str) -> dict:
    """Each exported network's latency measured again now, with no training anywhere, against what the
    search measured (workers frozen, or idle at a barrier): ratio = search / quiet."""
    from nas.latency import load_profile, measure_latency

    protocol = load_profile(profile_name).measurement
    ratios = {}
    for e in exported:
        metrics = json.loads(e.metrics.read_text())
        quiet = measure_latency(e.onnx.read_bytes(), protocol).median_ms
        ratios[str(metrics["trial"])] = round(metrics["latency_ms"] / quiet, 4)
    values = list(ratios.values())
    return {
        "ratio_search_to_quiet": ratios,
        "mean_abs_deviation": round(sum(abs(v - 1) for v in values) / len(values), 4) if values else None,
    }


def ask_and_tell_span(run_dir) -> tuple[float, float]:
    """(epoch seconds) when the first trial was asked and the last one told, by the study's clock."""
    from nas.search import load_run_study

    trials = load_run_study(run_dir).get_trials(deepcopy=False)
    return (
        min(t.datetime_start.timestamp() for t in trials if t.datetime_start),
        max(t.datetime_complete.timestamp() for t in trials if t.datetime_complete),
    )


if __name__ == "__main__":
    run_main(main)
