"""Benchmark: a robust search on the built-in real images, against the plain search's front.

    python benchmarks/robust_search.py      # ~3 min; writes results/benchmarks/robust_search.json

Runs `nas search --robust-weight 0.5` (12 trials) and records, for every trained candidate, clean and
mean-corrupted validation accuracy, the worst slice, and what the corrupted evaluation cost.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, repo_path, run_main, write_result  # noqa: E402
from nas.records import Attr, TrialStatus  # noqa: E402

BENCHMARK = Benchmark(cost="full", seconds=128)  # robust_search.json wall_seconds


def main() -> int:
    import nas

    run_dir = RUNS / "robust_search"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    result = nas.search(
        trials=12,
        latency_budget_ms=None,
        robust_weight=0.5,
        out=str(run_dir),
        sampler="nsga2",
        population=8,
        prescreen=1,
        prescreen_score="naswot",
    )  # as measured: every sampled candidate trains
    wall = time.perf_counter() - start
    with open(run_dir / "trials.csv") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r[Attr.STATUS] == TrialStatus.COMPLETE and not r[Attr.DUPLICATE_OF]
        ]
    if not rows:
        raise SystemExit(
            f"no candidate was trained: see failure_reason in {repo_path(run_dir / 'trials.csv')}"
        )
    report = {
        "settings": {
            "trials": 12,
            "robust_weight": 0.5,
            "epochs": 4,
            "train_subset": 2500,
            "dataset": "builtin",
        },
        "wall_seconds": round(wall, 1),
        "robust_seconds_mean": round(sum(float(r["robust_seconds"]) for r in rows) / len(rows), 3),
        "train_seconds_mean": round(sum(float(r["train_seconds"]) for r in rows) / len(rows), 3),
        "trials": [
            {
                k: r[k]
                for k in (
                    "number",
                    "accuracy",
                    "clean_accuracy",
                    "corrupted_accuracy",
                    "worst_slice",
                    "worst_slice_accuracy",
                    "latency_ms",
                    "summary",
                )
            }
            for r in rows
        ],
        "pareto": [
            {k: p[k] for k in ("trial", "accuracy", "clean_accuracy", "corrupted_accuracy", "latency_ms")}
            for p in result.pareto
        ],
    }
    write_result("robust_search", report, started=start)
    print(
        json.dumps(
            {k: report[k] for k in ("wall_seconds", "robust_seconds_mean", "train_seconds_mean", "pareto")},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    run_main(main)
