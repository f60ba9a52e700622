"""Benchmark: what Pareto-aware early stopping (`--rungs`) saved, and whether it lost
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

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, read_json, repo_path, run_main, write_result  # noqa: E402
from benchmarks.long_training import CACHE, EFFICIENCY, train_cached  # noqa: E402
from benchmarks.search_efficiency import last_rung  # noqa: E402
from nas.records import Attr, TrialStatus  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=500,  # estimate: 32 stopped candidates x ~30 s of training, 2 workers
    needs=("search_efficiency",),
    data=("results/benchmark-runs/search_efficiency", "../shared/data/cifar10/train"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run directories (default: the search_efficiency runs with rungs)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    from nas.search import dominates, load_run_study

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
        trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(Attr.DUPLICATE_OF) is None]
        stopped = [t for t in trials if t.user_attrs.get(Attr.STATUS) == TrialStatus.STOPPED_EARLY]
        complete = [t for t in trials if t.user_attrs.get(Attr.STATUS) == TrialStatus.COMPLETE]
        jobs = {
            t.number: CACHE
            / f"full-{recipe['epochs']}ep-seed{search['seed']}-{t.user_attrs['arch_hash']}.json"
            for t in stopped
        }
        by_number = {t.number: t for t in stopped}
        train_cached(
            {
                p: (by_number[n].user_attrs[Attr.ARCHITECTURE], recipe, search["seed"])
                for n, p in jobs.items()
            },
            search,
        )
        front = [(t.values[0], t.user_attrs[Attr.LATENCY_MS]) for t in complete]
        rows, lost = [], 0
        for t in stopped:
            acc, lat = read_json(jobs[t.number], "cached training")["accuracy"], t.user_attrs[Attr.LATENCY_MS]
            joins = not any(dominates(p, (acc, lat)) for p in front)
            lost += joins
            rows.append(
                {
                    "trial": t.number,
                    "latency_ms": lat,
                    "rung_accuracy": t.user_attrs.get(Attr.RUNG_ACCURACY),
                    "full_accuracy": acc,
                    "would_join_final_front": joins,
                }
            )
        epochs = recipe["epochs"]
        skipped = sum(epochs - last_rung(t.user_attrs) for t in stopped)
        per_run.append(
            {
                "run": repo_path(run),
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
        "how": "each stopped candidate trained to the end with its run's recipe, data and seed; 'would join' = "
        "not dominated by the run's final front",
        "runs": per_run,
        "total_stopped": sum(r["stopped_early"] for r in per_run),
        "total_lost_pareto_candidates": sum(r["stopped_that_would_have_joined_the_front"] for r in per_run),
    }
    write_result("early_stopping", report, started=start)
    return 0


if __name__ == "__main__":
    run_main(main)
