"""Benchmark (issue 4): what Pareto-aware early stopping (`--rungs`) saved, and whether it lost
Pareto-optimal candidates.

    python benchmarks/early_stopping.py [RUN_DIR ...]   # default: the search_efficiency runs with rungs

For every candidate a run stopped at a rung, trains it to the end with the run's own recipe, data and
seed (what it would have scored had it not been stopped) and checks whether it would have joined the
run's final Pareto front. Saved training: the epochs the stopped candidates did not train, as a share
of the epochs all trained candidates would have needed. Writes results/benchmarks/early_stopping.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_training import CACHE, EFFICIENCY, ROOT, train_cached  # noqa: E402
from search_efficiency import last_rung  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run directories (default: the search_efficiency runs with rungs)"
    )
    args = parser.parse_args()
    from nas._io import cpu_model, read_json, write_json_atomic
    from nas.search._results import dominates
    from nas.search._study import COMPLETE, STOPPED_EARLY, load_run_study

    missing = [
        str(r) for r in args.runs if not (r / "config.json").is_file() or not (r / "study.db").is_file()
    ]
    if missing:
        print(f"error: not a nas run directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    runs = args.runs or sorted(
        p
        for p in EFFICIENCY.glob("*-seed*")
        if (p / "study.db").exists()
        and read_json(p / "config.json", "run configuration")["search"].get("rungs")
    )
    if not runs:
        print(
            "error: no runs with --rungs given or found (run benchmarks/search_efficiency.py)",
            file=sys.stderr,
        )
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    per_run = []
    for run in runs:
        config = read_json(run / "config.json", "run configuration")
        search, recipe = config["search"], config["recipe"]
        study = load_run_study(run)
        trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("duplicate_of") is None]
        stopped = [t for t in trials if t.user_attrs.get("status") == STOPPED_EARLY]
        complete = [t for t in trials if t.user_attrs.get("status") == COMPLETE]
        jobs = {
            t.number: CACHE
            / f"full-{recipe['epochs']}ep-seed{search['seed']}-{t.user_attrs['arch_hash']}.json"
            for t in stopped
        }
        by_number = {t.number: t for t in stopped}
        train_cached(
            {p: (by_number[n].user_attrs["architecture"], recipe, search["seed"]) for n, p in jobs.items()},
            search,
        )
        front = [(t.values[0], t.user_attrs["latency_ms"]) for t in complete]
        rows, lost = [], 0
        for t in stopped:
            acc, lat = read_json(jobs[t.number], "cached training")["accuracy"], t.user_attrs["latency_ms"]
            joins = not any(dominates(p, (acc, lat)) for p in front)
            lost += joins
            rows.append(
                {
                    "trial": t.number,
                    "latency_ms": lat,
                    "rung_accuracy": t.user_attrs.get("rung_accuracy"),
                    "full_accuracy": acc,
                    "would_join_final_front": joins,
                }
            )
        epochs = recipe["epochs"]
        skipped = sum(epochs - last_rung(t.user_attrs) for t in stopped)
        per_run.append(
            {
                "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
                "rungs": search.get("rungs"),
                "trained_candidates": len(stopped) + len(complete),
                "stopped_early": len(stopped),
                "epochs_saved": skipped,
                "share_of_training_saved": round(skipped / (epochs * (len(stopped) + len(complete))), 3),
                "stopped_that_would_have_joined_the_front": lost,
                "stopped": rows,
            }
        )
        print(
            f"{run.name}: stopped {len(stopped)} of {len(stopped) + len(complete)}, saved "
            f"{per_run[-1]['share_of_training_saved']:.1%} of training epochs, would-have-been-Pareto {lost}"
        )
    report = {
        "benchmark": "early_stopping",
        "command": "python benchmarks/early_stopping.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_model(),
        "how": "each stopped candidate trained to the end with its run's recipe, data and seed; 'would join' = "
        "not dominated by the run's final front",
        "runs": per_run,
        "total_stopped": sum(r["stopped_early"] for r in per_run),
        "total_lost_pareto_candidates": sum(r["stopped_that_would_have_joined_the_front"] for r in per_run),
    }
    write_json_atomic(ROOT / "results" / "benchmarks" / "early_stopping.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
