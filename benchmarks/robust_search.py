"""Benchmark: a robust search (issue 5) on the built-in real images, against the plain search's front.

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

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    import nas
    from nas._io import cpu_model, write_json_atomic

    run_dir = ROOT / "results" / "benchmark-runs" / "robust_search"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    result = nas.search(
        trials=12,
        robust_weight=0.5,
        out=str(run_dir),
        sampler="nsga2",
        population=8,
        prescreen=1,
        prescreen_score="naswot",
    )  # as measured: every sampled candidate trains
    wall = time.perf_counter() - start
    with open(run_dir / "trials.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "complete" and not r["duplicate_of"]]
    if not rows:
        raise SystemExit(f"no candidate was trained: see failure_reason in {run_dir / 'trials.csv'}")
    report = {
        "benchmark": "robust_search",
        "command": "python benchmarks/robust_search.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_model(),
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
    write_json_atomic(ROOT / "results" / "benchmarks" / "robust_search.json", report)
    print(
        json.dumps(
            {k: report[k] for k in ("wall_seconds", "robust_seconds_mean", "train_seconds_mean", "pareto")},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
