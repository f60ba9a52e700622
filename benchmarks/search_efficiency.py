"""Benchmark: Pareto hypervolume against compute for random search, NSGA-II, and NSGA-II with
multi-fidelity rungs (and pre-screening), over several seeds, on real CIFAR-10 images.

    python benchmarks/search_efficiency.py [--data ../shared/data/cifar10/train] [--methods random,nsga2,...]
                                           [--seeds 0,1,2] [--trials 24]

Each (method, seed) is one search in results/benchmark-runs/search_efficiency/METHOD-seedSEED; a run that
already finished is reused (re-running resumes). Accuracy is the proxy accuracy on the seed's own
stratified 10% validation split (5,000 images); latency is the x86-cpu profile's *predicted* latency from a
frozen copy of its model, so all runs see the same deterministic latency (measured latency would drift with
the load of this shared 2-core machine). Compute is the time the trials spent: preparation (costs, export,
pre-screening scores) and latency (on the driver), rung trainings and the final training and evaluation.
Hypervolume: accuracy x ms dominated by the front, bounded by accuracy 0 and a fixed reference latency.
Writes results/benchmarks/search_efficiency.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import _harness  # noqa: E402
from benchmarks._harness import (
    PROFILES,
    SHARED_DATA,
    Benchmark,
    figure_path,
    repo_path,
    run_main,
    write_result,
)  # noqa: E402
from nas.records import Attr, TrialStatus  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=7600,  # search_efficiency.json: wall_s of the default methods' runs
    data=("../shared/data/cifar10/train",),
)
RUNS = _harness.RUNS / "search_efficiency"
REFERENCE_LATENCY_MS = 0.5
METHODS = {  # explicit settings, so a later change of the package's defaults cannot change a run
    "random": {
        "sampler": "random",
        "population": 8,
        "prescreen": 1,
        "prescreen_score": "naswot",
        "rungs": (),
        "latency_budget_ms": None,
    },
    "nsga2": {
        "sampler": "nsga2",
        "population": 8,
        "prescreen": 1,
        "prescreen_score": "naswot",
        "rungs": (),
        "latency_budget_ms": None,
    },
    "nsga2+rungs": {
        "sampler": "nsga2",
        "population": 8,
        "prescreen": 1,
        "prescreen_score": "naswot",
        "rungs": (1, 2),
        "stop_margin": 0,
        "latency_budget_ms": None,
    },
    "nsga2+rungs+prescreen": {
        "sampler": "nsga2",
        "population": 8,
        "prescreen": 3,
        "prescreen_score": "naswot",
        "rungs": (1, 2),
        "stop_margin": 0,
        "latency_budget_ms": None,
    },
    # The hypervolume counts nothing slower than the reference latency: the budget a user would set.
    "random+budget": {
        "sampler": "random",
        "population": 8,
        "prescreen": 1,
        "prescreen_score": "naswot",
        "rungs": (),
        "latency_budget_ms": REFERENCE_LATENCY_MS,
    },
    "nsga2+budget+prescreen4": {
        "sampler": "nsga2",
        "population": 8,
        "prescreen": 4,
        "prescreen_score": "naswot",
        "rungs": (),
        "latency_budget_ms": REFERENCE_LATENCY_MS,
    },
    "nsga2+budget+prescreen4+rung2": {
        "sampler": "nsga2",
        "population": 8,
        "prescreen": 4,
        "prescreen_score": "naswot",
        "rungs": (2,),
        "stop_margin": None,
        "latency_budget_ms": REFERENCE_LATENCY_MS,
    },
    # Batches of 4 (population 4; 2 workers): EHVI chooses after 4 and 8 trainings within half of random's compute.
    "random+budget+ehvi8+batch4": {
        "sampler": "random",
        "population": 4,
        "prescreen": 8,
        "prescreen_score": "ehvi",
        "rungs": (),
        "latency_budget_ms": REFERENCE_LATENCY_MS,
    },
    # The package's defaults: the budget derived from the (frozen) profile's model, 0.51 ms on this space.
    "random+autobudget+ehvi8+batch4": {
        "sampler": "random",
        "population": 4,
        "prescreen": 8,
        "prescreen_score": "ehvi",
        "rungs": (),
        "latency_budget_ms": "auto",
    },
    "random+ehvi8+batch4": {
        "sampler": "random",
        "population": 4,
        "prescreen": 8,
        "prescreen_score": "ehvi",
        "rungs": (),
        "latency_budget_ms": None,
    },  # the same without a latency budget: EHVI's reference is the slowest seen
    "tpe+budget": {
        "sampler": "tpe",
        "population": 8,
        "prescreen": 1,
        "prescreen_score": "naswot",
        "rungs": (),
        "latency_budget_ms": REFERENCE_LATENCY_MS,
    },
}
# Runs of an earlier version of the package, summarized when their directories exist but never re-run: the
# current code would run something else under the same settings.
_SCORED_ALL = (
    "measured at commit f77f937 as {}, when preparation scored every proposal with NASWOT (since cbe5107 "
    "only candidates that can still be trained are scored: the same choices, less preparation)"
)
_EXPORTED = (
    "measured at commit 9fcf94b as {}, when preparation exported every candidate to predict its latency "
    "from the ONNX graph (since cf9e0f7 the driver composes the same features from the architecture's parts: "
    "the same latencies and choices, less preparation)"
)
_WHOLE_COSTS = (
    "measured at commit 9f5c073 as {}, when every proposal's params and MACs were counted on a worker by "
    "one fvcore trace of the whole network before the latency filter (since then the driver counts each "
    "distinct part of the network once, only for candidates within the budget: the same counts and choices, "
    "less preparation)"
)
HISTORICAL = {
    "random+budget+ehvi8costs": "measured at commit 77b43eb as random+budget+ehvi8 (batches of 8), when the "
    "EHVI accuracy model saw the log costs only (NASWOT joined it later)",
    "random+budget+ehvi8+batch4+scoredall": _SCORED_ALL.format("random+budget+ehvi8+batch4"),
    "random+ehvi8+batch4+scoredall": _SCORED_ALL.format("random+ehvi8+batch4"),
    "random+budget+ehvi8+batch4+export": _EXPORTED.format("random+budget+ehvi8+batch4"),
    "random+ehvi8+batch4+export": _EXPORTED.format("random+ehvi8+batch4"),
    "random+budget+ehvi8+batch4+wholecosts": _WHOLE_COSTS.format("random+budget+ehvi8+batch4"),
    "random+ehvi8+batch4+wholecosts": _WHOLE_COSTS.format("random+ehvi8+batch4"),
}
# The methods of the table in docs/benchmarks.md; the two plain-dominance rung methods above belong to an older
# latency model (CHANGELOG.md) and run only when named.
DEFAULT_METHODS = (
    "random",
    "nsga2",
    "random+budget",
    "nsga2+budget+prescreen4",
    "nsga2+budget+prescreen4+rung2",
    "random+budget+ehvi8+batch4",
    "random+ehvi8+batch4",
    "tpe+budget",
)
_COMPUTE = (
    Attr.PREPARE_SECONDS,
    Attr.LATENCY_SECONDS,
    Attr.RUNG_SECONDS,
    Attr.TRAIN_SECONDS,
    Attr.EVAL_SECONDS,
)
_BEFORE_TRAINING = (
    Attr.PREPARE_SECONDS,
    Attr.LATENCY_SECONDS,
)  # costs, export and scores; then latency, on the driver


def frozen_profile() -> Path:
    """The x86-cpu latency model as it was when the benchmark started: refitting the shipped profile later
    must not change the latencies of runs that resume."""
    import yaml

    path = RUNS / "x86-cpu-frozen.yaml"
    if not path.exists():
        data = yaml.safe_load((PROFILES / "x86-cpu.yaml").read_text())
        data.pop("measurements", None)
        data.pop("machine", None)  # the model as it is, on any machine: no calibration for this one
        data["name"] = "x86-cpu-frozen"
        RUNS.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_one(method: str, seed: int, trials: int, data: str, profile: Path) -> Path:
    import nas

    out = RUNS / f"{method}-seed{seed}"
    nas.search(
        space="mobilenet",
        profile=str(profile),
        latency="predicted",
        dataset=data,
        trials=trials,
        seed=seed,
        out=str(out),
        **METHODS[method],
    )
    return out


def _epochs(run_dir: Path) -> int:
    return json.loads((run_dir / "config.json").read_text())["search"]["epochs"]


def _finished(run_dir: Path) -> list:
    from nas.search import load_run_study

    study = load_run_study(run_dir)
    return sorted(
        (
            t
            for t in study.get_trials(deepcopy=False)
            if t.datetime_complete is not None and t.user_attrs.get(Attr.STATUS) != TrialStatus.INTERRUPTED
        ),  # the benchmark's driver was restarted
        key=lambda t: t.datetime_complete,
    )


def last_rung(attrs: dict) -> int:
    """The last rung (epochs) a trial paused at; 0 without rungs."""
    return max((int(r) for r in attrs.get(Attr.RUNG_ACCURACY) or {}), default=0)


def _final_trainings(done: list, epochs: int) -> list[tuple[Any, int]]:
    """(trial, epochs of the final training segment) of every trained, non-duplicate trial."""
    return [
        (t, epochs - last_rung(t.user_attrs))
        for t in done
        if t.user_attrs.get(Attr.STATUS) == TrialStatus.COMPLETE
        and t.user_attrs.get(Attr.DUPLICATE_OF) is None
    ]


def _in_flight(done: list, epochs: int, validation_epochs: float):
    """time -> the work (epoch-eq.) that final trainings still running at that time had done, pro rata of
    their elapsed seconds: what a trial completing then owes to the trainings running beside it."""
    spans = []
    for t, segment in _final_trainings(done, epochs):
        end = t.datetime_complete.timestamp()
        spans.append(
            (
                end - float(t.user_attrs[Attr.TRAIN_SECONDS]) - float(t.user_attrs[Attr.EVAL_SECONDS]),
                end,
                segment + validation_epochs,
            )
        )
    return lambda now: sum(
        work * (now - start) / (end - start) for start, end, work in spans if start < now < end
    )


def validation_cost(finished: dict[Path, list]) -> float:
    """One validation pass in training epochs: the median, over trained candidates, of their validation
    seconds over their seconds per training epoch (both from the same task, so machine load cancels)."""
    import statistics

    ratios = []
    for run_dir, done in finished.items():
        for t, segment in _final_trainings(done, _epochs(run_dir)):
            a = t.user_attrs
            if float(a.get(Attr.TRAIN_SECONDS) or 0) > 0:
                ratios.append(float(a[Attr.EVAL_SECONDS]) / (float(a[Attr.TRAIN_SECONDS]) / segment))
    return statistics.median(ratios)


def curve(run_dir: Path, done: list, validation_epochs: float) -> list[dict]:
    """Per finished trial, in completion order: trials counted, compute, wall seconds, hypervolume.

    compute_epochs counts work, not seconds: epochs trained (a stopped candidate only up to its last rung)
    plus validation passes (one per rung reached, one at the end) at `validation_epochs` each, plus the
    preparation seconds (costs, export, pre-screening scores) and latency seconds (measured or predicted on
    the driver) in epochs of that run; each trial counts when it completes, so with parallel workers the
    order in which two trainings finish matters.
    compute_epochs_in_flight adds the share already done of the final trainings still running then (rung
    trainings count when they complete). compute_s is the worker seconds, which the load of the shared
    machine inflates unevenly between runs."""
    import statistics

    from nas.search import hypervolume

    start = min(t.datetime_start for t in done)
    epochs = _epochs(run_dir)
    per_epoch = statistics.median(
        float(t.user_attrs[Attr.TRAIN_SECONDS]) / segment for t, segment in _final_trainings(done, epochs)
    )
    points, compute, work, rows, counted = [], 0.0, 0.0, [], 0
    in_flight = _in_flight(done, epochs, validation_epochs)
    for t in done:
        a = t.user_attrs
        if a.get(Attr.DUPLICATE_OF) is None:
            compute += sum(float(a.get(k) or 0.0) for k in _COMPUTE)
            trained = epochs if a.get(Attr.STATUS) == TrialStatus.COMPLETE else last_rung(a)
            validations = len(a.get(Attr.RUNG_ACCURACY) or {}) + (a.get(Attr.STATUS) == TrialStatus.COMPLETE)
            before_training = sum(float(a.get(k) or 0.0) for k in _BEFORE_TRAINING)
            work += trained + validations * validation_epochs + before_training / per_epoch
        counted += a.get(Attr.STATUS) != TrialStatus.SCREENED_OUT
        if a.get(Attr.STATUS) == TrialStatus.COMPLETE and a.get(Attr.DUPLICATE_OF) is None:
            points.append((t.values[0], t.values[1]))
        rows.append(
            {
                "trials": counted,
                "compute_epochs": round(work, 2),
                "compute_epochs_in_flight": round(work + in_flight(t.datetime_complete.timestamp()), 2),
                "compute_s": round(compute, 1),
                "wall_s": round((t.datetime_complete - start).total_seconds(), 1),
                "hypervolume": round(hypervolume(points, REFERENCE_LATENCY_MS), 6),
            }
        )
    return rows


def compute_to_reach(rows: list[dict], target: float, key: str) -> float | None:
    return next((r[key] for r in rows if r["hypervolume"] >= target - 1e-12), None)


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """--data, made absolute: a run records its dataset, and a resume must name the same folder the same way."""
    parser.add_argument(
        "--data",
        default=str(SHARED_DATA / "cifar10" / "train"),
        type=lambda path: str(Path(path).resolve()),
        help="the CIFAR-10 training folder",
    )


def data_missing(path: str) -> bool:
    """True (after a one-line error) when the CIFAR-10 folder is not there."""
    if Path(path).is_dir():
        return False
    print(f"error: {repo_path(path)}: CIFAR-10 training folder not found (pass --data)", file=sys.stderr)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    args.started = time.perf_counter()
    if data_missing(args.data):
        return 2
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(
            f"error: --methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})",
            file=sys.stderr,
        )
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    profile = frozen_profile()
    for method in methods:
        for seed in seeds:
            t0 = time.perf_counter()
            run_one(method, seed, args.trials, args.data, profile)
            print(f"{method} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    summarize(
        [
            m
            for m in [*METHODS, *HISTORICAL]
            if all((RUNS / f"{m}-seed{s}" / "study.db").exists() for s in seeds)
        ],
        seeds,
        args,
    )
    return 0


def summarize(methods: list[str], seeds: list[int], args) -> None:
    from nas.search import SearchConfig

    finished = {
        RUNS / f"{m}-seed{s}": _finished(RUNS / f"{m}-seed{s}") for m in methods for s in seeds
    }  # read once
    validation_epochs = validation_cost(finished)
    runs = {
        m: {
            s: curve(RUNS / f"{m}-seed{s}", finished[RUNS / f"{m}-seed{s}"], validation_epochs) for s in seeds
        }
        for m in methods
    }
    summary = {}
    for m in methods:
        finals = [runs[m][s][-1] for s in seeds]
        summary[m] = {
            "final_hypervolume": [f["hypervolume"] for f in finals],
            "mean_final_hypervolume": round(sum(f["hypervolume"] for f in finals) / len(finals), 6),
            "compute_s": [f["compute_s"] for f in finals],
            "compute_epochs": [f["compute_epochs"] for f in finals],
            "wall_s": [f["wall_s"] for f in finals],
            "config": json.loads((RUNS / f"{m}-seed{seeds[0]}" / "config.json").read_text())["search"],
            **({"historical": HISTORICAL[m]} if m in HISTORICAL else {}),
        }
    if "random" in runs:
        for m in methods:
            if m == "random":
                continue
            for key in ("compute_epochs", "compute_epochs_in_flight", "compute_s", "wall_s"):
                fractions = []
                for s in seeds:  # same seed: same validation split, so the hypervolumes are comparable
                    target, budget = runs["random"][s][-1]["hypervolume"], runs["random"][s][-1][key]
                    needed = compute_to_reach(runs[m][s], target, key)
                    fractions.append(None if needed is None else round(needed / budget, 3))
                summary[m][f"{key}_to_reach_random_final_hv_fraction"] = fractions
                summary[m][f"target_met_all_seeds_{key}"] = all(f is not None and f <= 0.5 for f in fractions)
    report = {
        "data": repo_path(args.data),
        "trials_per_run": args.trials,
        "seeds": seeds,
        "reference_latency_ms": REFERENCE_LATENCY_MS,
        "latency": "x86-cpu profile, predicted by a frozen copy of its fitted model",
        "accuracy": "proxy accuracy on each seed's own stratified 10% validation split",
        "compute": "compute_epochs: epochs trained + validation passes x validation_epochs + preparation and latency "
        "seconds in epochs of the run, counted as each trial completes (see curve()); compute_epochs_in_flight: "
        "plus the share done of the trainings still running then; compute_s: worker seconds ("
        + ", ".join(_COMPUTE)
        + "), and wall_s: seconds since the run's first trial, both inflated unevenly "
        "between runs by other load on the shared machine",
        "validation_epochs": round(validation_epochs, 3),
        "package_default": next(
            (
                m
                for m in methods
                if all(  # by the method's settings: a run records its auto budget as the number
                    json.loads(json.dumps({**SearchConfig().to_dict(), **METHODS[m]}))[k] == v
                    for k, v in json.loads(json.dumps(SearchConfig().to_dict())).items()
                    if k
                    in ("sampler", "population", "prescreen", "prescreen_score", "rungs", "latency_budget_ms")
                )
            ),
            None,
        ),
        "summary": summary,
        "curves": {m: {str(s): runs[m][s] for s in seeds} for m in methods},
    }
    write_result("search_efficiency", report, started=args.started)
    plot(runs, figure_path("search_efficiency.png"))
    for m, v in summary.items():
        print(m, json.dumps({k: v[k] for k in v if k != "config"}))


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    colors = {
        "random": "tab:gray",
        "nsga2": "tab:blue",
        "nsga2+rungs": "tab:orange",
        "nsga2+rungs+prescreen": "tab:red",
        "random+budget": "tab:olive",
        "nsga2+budget+prescreen4": "tab:purple",
        "nsga2+budget+prescreen4+rung2": "tab:green",
        "random+budget+ehvi8+batch4": "tab:brown",
        "random+ehvi8+batch4": "tab:cyan",
        "random+budget+ehvi8costs": "tan",
        "tpe+budget": "tab:pink",
        "random+budget+ehvi8+batch4+scoredall": "rosybrown",
        "random+ehvi8+batch4+scoredall": "lightblue",
        "random+budget+ehvi8+batch4+export": "peru",
        "random+ehvi8+batch4+export": "steelblue",
        "random+budget+ehvi8+batch4+wholecosts": "sandybrown",
        "random+ehvi8+batch4+wholecosts": "skyblue",
    }
    for m, per_seed in runs.items():
        for i, rows in enumerate(per_seed.values()):
            for ax, x in zip(axes, ("trials", "compute_epochs", "compute_s", "wall_s")):
                ax.step(
                    [r[x] for r in rows],
                    [r["hypervolume"] for r in rows],
                    where="post",
                    color=colors.get(m),
                    alpha=0.8,
                    label=m if i == 0 else None,
                )
    for ax, label in zip(
        axes,
        (
            "trials (screened-out candidates not counted)",
            "compute (epoch-equivalents)",
            "worker compute (s)",
            "wall-clock (s)",
        ),
    ):
        ax.set_xlabel(label)
        ax.set_ylabel(f"hypervolume (acc x ms, ref {REFERENCE_LATENCY_MS} ms)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Search efficiency on real CIFAR-10 (x86-cpu predicted latency), one line per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    run_main(main)
