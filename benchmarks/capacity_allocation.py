"""Benchmark: where Pareto-optimal networks put their capacity, compared with dominated ones.

    python benchmarks/capacity_allocation.py [RUN_DIR ...]   # default: every run of benchmarks/search_efficiency.py

Pools the trained (non-duplicate) trials of the given search runs; a trial is Pareto-optimal if it is on
its own run's front (accuracy vs x86-cpu latency), dominated otherwise. Per stage: mean width and depth,
mean kernel, SE share and primitive shares of the blocks, for both groups, plus each group's share of
blocks per primitive overall. Writes results/benchmarks/capacity_allocation.json and .png.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, figure_path, repo_path, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(
    cost="cheap",
    seconds=30,  # estimate: its result records no time (reads 9 runs, draws one figure)
    needs=("search_efficiency",),
    data=("results/benchmark-runs/search_efficiency",),
)
EFFICIENCY = RUNS / "search_efficiency"


def summarize(archs: list[dict], stages: list[str]) -> dict:
    from nas.report import allocation_values

    out = {}
    for stage in stages:
        v = allocation_values(archs, stage)
        blocks = len(v["primitive"])
        out[stage] = {
            "mean_width": round(sum(v["width"]) / len(v["width"]), 1) if v["width"] else None,
            "mean_depth": round(sum(v["depth"]) / len(v["depth"]), 2) if v["depth"] else None,
            "mean_kernel": round(sum(v["kernel"]) / len(v["kernel"]), 2) if v["kernel"] else None,
            "se_share": round(sum(v["se"]) / blocks, 3) if blocks else None,
            "primitive_share": {p: round(c / blocks, 3) for p, c in Counter(v["primitive"]).most_common()},
        }
    return out


def main() -> int:
    from nas.report import PARETO_COLOUR, allocation_figure, load_run

    start = time.perf_counter()
    runs = [Path(a) for a in sys.argv[1:]] or sorted(
        p for p in EFFICIENCY.glob("*-seed*") if (p / "study.db").exists()
    )
    if not runs:
        print(
            f"error: no search runs given and none under {repo_path(EFFICIENCY)} (run benchmarks/search_efficiency.py)",
            file=sys.stderr,
        )
        return 2
    pareto, dominated = [], []
    for run_dir in runs:
        run = load_run(run_dir)
        pareto += [t.architecture for t in run.pareto if t.architecture]
        dominated += [t.architecture for t in run.dominated if t.architecture]
    stages = [s["name"] for s in (pareto + dominated)[0]["stages"]]
    report = {
        "runs": [repo_path(r) for r in runs],
        "pareto_optimal": {"networks": len(pareto), "stages": summarize(pareto, stages)},
        "dominated": {"networks": len(dominated), "stages": summarize(dominated, stages)},
    }
    write_result("capacity_allocation", report, started=start)
    fig = allocation_figure(
        [
            (f"Pareto-optimal ({len(pareto)})", PARETO_COLOUR, pareto),
            (f"dominated ({len(dominated)})", "tab:gray", dominated),
        ],
        f"Capacity allocation over {len(runs)} search runs (real CIFAR-10, x86-cpu)",
    )
    fig.savefig(figure_path("capacity_allocation.png"), dpi=110)
    for stage in stages:
        p, d = report["pareto_optimal"]["stages"][stage], report["dominated"]["stages"][stage]
        print(
            f"{stage}: width {p['mean_width']} vs {d['mean_width']}, depth {p['mean_depth']} vs {d['mean_depth']}, "
            f"kernel {p['mean_kernel']} vs {d['mean_kernel']}, SE {p['se_share']} vs {d['se_share']}, "
            f"primitives {p['primitive_share']} vs {d['primitive_share']}"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
