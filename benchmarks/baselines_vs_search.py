"""Benchmark (issue 4, proxy fidelity only): hand-designed baselines against a search's Pareto front.

    python benchmarks/baselines_vs_search.py [RUN_DIR]   # default: the run of benchmarks/search_throughput.py

Trains the baselines with the run's own recipe and data (`nas baselines`), measures them on its profile,
and records, per baseline, whether a found network dominates it and by how much. This compares proxy
accuracies (short training), not deployment-trained ones: issue 4's "against hand design" benchmark
still needs both sides deployment-trained (`nas train`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from nas._io import cpu_model, read_json, write_json_atomic
    from nas.baselines import evaluate_baselines

    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results" / "benchmark-runs" / "search_throughput"
    start = time.perf_counter()
    baselines = evaluate_baselines(run_dir)
    front = read_json(run_dir / "pareto.json", "pareto file")["pareto"]
    rows = []
    for b in baselines:
        faster_and_better = [p for p in front if p["latency_ms"] <= b["latency_ms"] and p["accuracy"] >= b["accuracy"]]
        at_most_latency = [p for p in front if p["latency_ms"] <= b["latency_ms"]]
        best = max(at_most_latency, key=lambda p: p["accuracy"], default=None)
        at_least_acc = [p for p in front if p["accuracy"] >= b["accuracy"]]
        fastest = min(at_least_acc, key=lambda p: p["latency_ms"], default=None)
        rows.append({
            "baseline": b["name"], "accuracy": b["accuracy"], "latency_ms": b["latency_ms"], "params": b["params"],
            "dominated_by_found": bool(faster_and_better),
            "accuracy_gain_at_equal_or_lower_latency_points": None if best is None else round(100 * (best["accuracy"] - b["accuracy"]), 2),
            "speedup_at_equal_or_higher_accuracy": None if fastest is None else round(b["latency_ms"] / fastest["latency_ms"], 2),
        })
    report = {
        "benchmark": "baselines_vs_search",
        "command": "python benchmarks/baselines_vs_search.py" + (f" {sys.argv[1]}" if len(sys.argv) > 1 else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu_model(), "run_dir": str(run_dir),
        "fidelity": "proxy accuracy (the run's short training recipe) for both sides; latency on the run's profile",
        "seconds": round(time.perf_counter() - start, 1),
        "found_front": [{k: p[k] for k in ("trial", "accuracy", "latency_ms", "params", "summary")} for p in front],
        "baselines": rows,
    }
    write_json_atomic(ROOT / "results" / "benchmarks" / "baselines_vs_search.json", report)
    for r in rows:
        print(f"{r['baseline']:<24} acc {r['accuracy']:.3f} lat {r['latency_ms']:.3f} ms  dominated {r['dominated_by_found']}  "
              f"+{r['accuracy_gain_at_equal_or_lower_latency_points']} pts  x{r['speedup_at_equal_or_higher_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
