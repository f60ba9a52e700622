"""Benchmarks that need long trainings, sharing them:

* proxy fidelity: Kendall tau between the search's proxy accuracy (its short recipe) and the accuracy
  after a 10x longer training of the same architecture, over the found Pareto set, the hand-designed
  baselines and random architectures of the random-search run with the same validation split;
* against hand design: after that same long (deployment) training of both sides, does a found network
  beat each baseline by >= 2 points at equal or lower measured x86-cpu latency, or run >= 1.3x faster
  at equal or higher accuracy?

    python benchmarks/long_training.py [--run RUN_DIR] [--random 10] [--factor 10] [--workers 2]
        [--random-run results/benchmark-runs/search_efficiency/random-seed0]

Without --run, it first runs (or resumes) the search whose front it compares with hand design:
HAND_DESIGN_SEARCH below, into results/benchmark-runs/hand_design. The random run comes from
benchmarks/search_efficiency.py (random search picks the same architectures whatever the latency model).

Latency is measured here with ONNX Runtime under the x86-cpu protocol before any training starts (run it
on an otherwise idle machine). Each training is cached in results/benchmark-runs/long_training/, so an
interrupted run resumes. Writes results/benchmarks/proxy_fidelity.json and found_vs_baselines.json (+ .png).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import (  # noqa: E402
    RESULTS,
    ROOT,
    RUNS,
    Benchmark,
    figure_path,
    read_json,
    repo_path,
    run_main,
    write_json,
    write_result,
)
from benchmarks.search_efficiency import RUNS as EFFICIENCY  # noqa: E402
from benchmarks.search_efficiency import add_data_argument, data_missing, frozen_profile  # noqa: E402
from nas.records import Attr, TrialStatus  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=5400,  # estimate: 96-trial search, then 28 trainings of 40 epochs, 2 workers
    needs=("search_efficiency",),
    data=("results/benchmark-runs/search_efficiency/random-seed0", "../shared/data/cifar10/train"),
)
CACHE = RUNS / "long_training"
HAND_DESIGN_RUN = RUNS / "hand_design"
# The search an engineer would run to replace the hand designs: a latency budget just above the slowest
# baseline (0.21 ms measured), 4x the trials of the efficiency runs, and NASWOT pre-screening in
# latency bands (no rungs: a rung judges a network by its first epochs, not by where a long training ends).
HAND_DESIGN_SEARCH = {
    "space": "mobilenet",
    "latency": "predicted",
    "trials": 96,
    "seed": 0,
    "sampler": "nsga2",
    "population": 8,
    "latency_budget_ms": 0.22,
    "prescreen": 4,
    "prescreen_score": "naswot",
    "rungs": (),
}
_DATASET = None
_TEST = None  # (x, y) of the images a worker also scores its trained networks on, or None


def _load_worker_dataset(source: str, val_fraction: float, seed: int, test_npz: str | None = None) -> None:
    global _DATASET, _TEST
    import numpy as np
    import torch

    from nas.data import load_dataset

    torch.set_num_threads(1)
    _DATASET = load_dataset(source, val_fraction=val_fraction, seed=seed)
    if test_npz:
        with np.load(test_npz) as held_out:
            _TEST = (held_out["x"], held_out["y"])


def _train(arch_dict: dict, recipe: dict, seed: int) -> dict:
    from nas.evaluate import ProxyTrainer, TrainingRecipe
    from nas.space import Architecture

    arch = Architecture.from_dict(arch_dict)
    result = ProxyTrainer(TrainingRecipe(**recipe)).train(arch, _DATASET, seed)
    out = {
        "accuracy": result.accuracy,
        "val_loss": result.val_loss,
        "train_seconds": round(result.train_seconds, 1),
        "epochs": result.epochs,
    }
    if _TEST is not None:
        out["test_accuracy"] = _test_accuracy(arch, result.state_dict)
    return out


def _test_accuracy(arch, state_dict: bytes) -> float:
    """The trained network's top-1 accuracy on the worker's test images (the validation split's scoring)."""
    from types import SimpleNamespace

    from safetensors.torch import load

    from nas.builder import build_model
    from nas.evaluate import Preprocessing, evaluate_accuracy

    model = build_model(arch, _DATASET.num_classes)
    model.load_state_dict(load(state_dict))
    norm = Preprocessing(_DATASET.mean, _DATASET.std, arch.resolution)
    return evaluate_accuracy(model, SimpleNamespace(x_val=_TEST[0], y_val=_TEST[1]), norm)[0]


def train_cached(
    jobs: dict[Path, tuple[dict, dict, int]],
    search: dict,
    workers: int | None = None,
    on_result=lambda path, result: None,
    test_npz: str | None = None,
) -> None:
    """Train every job whose cache file is missing, in the order given: path -> (architecture dict, recipe
    dict, training seed), in worker processes holding the run's data and validation split (`search`: the
    run's search settings). Each result is written to its path as it arrives; with `test_npz` (x, y) it
    also holds the trained network's `test_accuracy` on those images."""
    todo = {path: job for path, job in jobs.items() if not path.exists()}
    if not todo:
        return
    with ProcessPoolExecutor(
        workers or os.cpu_count() or 1,
        initializer=_load_worker_dataset,
        initargs=(search["dataset"], search["val_fraction"], search["seed"], test_npz),
    ) as pool:
        futures = {pool.submit(_train, *job): path for path, job in todo.items()}
        for future in as_completed(futures):
            write_json(futures[future], future.result())
            on_result(futures[future], future.result())


def fidelity_architectures() -> tuple[dict, dict, dict]:
    """The proxy-fidelity benchmark's results, its run's search settings, and its architectures by name
    (as the long trainings had them)."""
    from nas.space import Architecture

    fidelity = read_json(RESULTS / "proxy_fidelity.json", "proxy fidelity results")
    search = read_json(ROOT / fidelity["run"] / "config.json", "run configuration")["search"]
    return (
        fidelity,
        search,
        {p["name"]: Architecture.from_dict(p["architecture"]) for p in fidelity["points"]},
    )


def candidates(run: Path, random_run: Path, n_random: int) -> list[dict]:
    """The architectures: the run's Pareto set, the baselines, and `n_random` trained trials of the random
    run spread evenly over its accuracy range (every (n/k)-th by proxy accuracy)."""
    from nas.baselines import hand_designed

    items = [
        {
            "name": f"found-trial{p['trial']}",
            "group": "found",
            "proxy_accuracy": p["accuracy"],
            "architecture": p["architecture"],
        }
        for p in read_json(run / "pareto.json", "pareto file")["pareto"]
    ]
    items += [
        {"name": name, "group": "baseline", "proxy_accuracy": None, "architecture": arch.to_dict()}
        for name, arch in hand_designed().items()
    ]
    from nas.search import load_run_study

    study = load_run_study(random_run)
    trained = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(Attr.STATUS) == TrialStatus.COMPLETE
            and t.user_attrs.get(Attr.DUPLICATE_OF) is None
        ),
        key=lambda t: t.values[0],
    )
    seen = {str(i["architecture"]) for i in items}
    picks = (
        [trained[round(i * (len(trained) - 1) / max(1, n_random - 1))] for i in range(n_random)]
        if trained
        else []
    )
    for t in picks:
        if str(t.user_attrs[Attr.ARCHITECTURE]) not in seen:
            seen.add(str(t.user_attrs[Attr.ARCHITECTURE]))
            items.append(
                {
                    "name": f"random-trial{t.number}",
                    "group": "random",
                    "proxy_accuracy": t.values[0],
                    "architecture": t.user_attrs[Attr.ARCHITECTURE],
                }
            )
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a finished run (default: run the hand-design search)")
    add_data_argument(parser)
    parser.add_argument("--random-run", default=str(EFFICIENCY / "random-seed0"))
    parser.add_argument("--random", type=int, default=10)
    parser.add_argument(
        "--factor", type=int, default=10, help="long training = this many times the proxy's epochs"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    started = time.perf_counter()
    from nas.builder import build_model
    from nas.evaluate import TrainingRecipe, count_costs
    from nas.latency import load_profile, measure_latency
    from nas.onnx_io import export_onnx
    from nas.space import Architecture

    if args.run is None:
        if data_missing(args.data):
            return 2
        import nas

        nas.search(
            profile=str(frozen_profile()), dataset=args.data, out=str(HAND_DESIGN_RUN), **HAND_DESIGN_SEARCH
        )
    run, random_run = Path(args.run or HAND_DESIGN_RUN), Path(args.random_run)
    config = read_json(run / "config.json", "run configuration")
    search, proxy = config["search"], TrainingRecipe(**config["recipe"])
    random_search = read_json(random_run / "config.json", "run configuration")["search"]
    if (random_search["dataset"], random_search["seed"], random_search["val_fraction"]) != (
        search["dataset"],
        search["seed"],
        search["val_fraction"],
    ):
        print(
            f"error: {repo_path(random_run)}: a different dataset or validation split than {repo_path(run)}",
            file=sys.stderr,
        )
        return 2
    long = replace(proxy, epochs=proxy.epochs * args.factor)
    items = candidates(run, random_run, args.random)
    CACHE.mkdir(parents=True, exist_ok=True)

    # 1. Latency, measured before any training starts (nothing else of ours runs now).
    x86 = load_profile("x86-cpu")
    for item in items:
        arch = Architecture.from_dict(item["architecture"])
        model = build_model(arch, 10, seed=search["seed"])
        onnx_bytes = export_onnx(model, arch.resolution, fast=True)
        item["latency_ms"] = measure_latency(onnx_bytes, x86.measurement).median_ms
        item["predicted_latency_ms"] = x86.latency_model.predict(onnx_bytes)
        costs = count_costs(model, arch.resolution)
        item.update(params=costs.params, macs=costs.macs, summary=arch.summary())

    # 2. Trainings: the baselines' proxy (the run's recipe) and everyone's long training, cached.
    jobs = {}
    for item in items:
        arch = Architecture.from_dict(item["architecture"])
        for kind, recipe in (("proxy", proxy), ("long", long)):
            if kind == "proxy" and item["proxy_accuracy"] is not None:
                continue
            path = CACHE / f"{kind}-{recipe.epochs}ep-seed{search['seed']}-{arch.hash}.json"
            jobs[(item["name"], kind)] = (path, arch, recipe)
    start = time.perf_counter()
    names = {path: key for key, (path, _, _) in jobs.items()}
    order = sorted(jobs.items(), key=lambda kv: -next(i["macs"] for i in items if i["name"] == kv[0][0]))
    train_cached(
        {path: (arch.to_dict(), recipe.to_dict(), search["seed"]) for _, (path, arch, recipe) in order},
        search,
        args.workers,
        on_result=lambda path, result: print(
            f"{names[path][0]} {names[path][1]}: {result['accuracy']:.3f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        ),
    )
    for item in items:
        for kind in ("proxy", "long"):
            if (item["name"], kind) in jobs:
                result = read_json(jobs[(item["name"], kind)][0], "cached training")
                item[f"{kind}_accuracy" if kind == "long" else "proxy_accuracy"] = result["accuracy"]
                item[f"{kind}_train_seconds"] = result["train_seconds"]

    common = {
        "run": repo_path(run),
        "random_run": repo_path(random_run),
        "dataset": search["dataset"],
        "validation": f"stratified {search['val_fraction']:g} split, seed {search['seed']} (the run's own)",
        "proxy_recipe": proxy.to_dict(),
        "long_recipe": long.to_dict(),
    }
    fidelity(items, common, started)
    against_hand_design(items, common, started)
    return 0


def fidelity(items: list[dict], common: dict, started: float) -> None:
    from nas.latency import kendall_tau

    def tau(group):
        chosen = [i for i in items if group is None or i["group"] == group]
        return (
            round(kendall_tau([i["proxy_accuracy"] for i in chosen], [i["long_accuracy"] for i in chosen]), 3)
            if len(chosen) > 2
            else None
        )

    report = {
        **common,
        "architectures": len(items),
        "target_kendall_tau": 0.6,
        "kendall_tau": tau(None),
        "kendall_tau_by_group": {g: tau(g) for g in ("found", "baseline", "random")},
        "points": [
            {
                k: i[k]
                for k in (
                    "name",
                    "group",
                    "proxy_accuracy",
                    "long_accuracy",
                    "latency_ms",
                    "params",
                    "summary",
                    "architecture",
                )
            }
            for i in items
        ],
    }
    write_result("proxy_fidelity", report, started=started)
    _scatter(
        [(i["proxy_accuracy"], i["long_accuracy"], i["group"]) for i in items],
        "proxy accuracy (search recipe)",
        f"accuracy after {common['long_recipe']['epochs']} epochs",
        f"Proxy fidelity: Kendall tau {report['kendall_tau']} over {len(items)} architectures",
        figure_path("proxy_fidelity.png"),
    )
    print("proxy fidelity: tau", report["kendall_tau"], report["kendall_tau_by_group"])


def against_hand_design(items: list[dict], common: dict, started: float) -> None:
    found = [i for i in items if i["group"] == "found"]
    rows = []
    for b in (i for i in items if i["group"] == "baseline"):
        faster = [f for f in found if f["latency_ms"] <= b["latency_ms"]]
        best = max(faster, key=lambda f: f["long_accuracy"], default=None)
        better = [f for f in found if f["long_accuracy"] >= b["long_accuracy"]]
        fastest = min(better, key=lambda f: f["latency_ms"], default=None)
        gain = None if best is None else round(100 * (best["long_accuracy"] - b["long_accuracy"]), 2)
        speedup = None if fastest is None else round(b["latency_ms"] / fastest["latency_ms"], 2)
        rows.append(
            {
                "baseline": b["name"],
                "accuracy": b["long_accuracy"],
                "latency_ms": b["latency_ms"],
                "params": b["params"],
                "best_found_at_equal_or_lower_latency": best and best["name"],
                "accuracy_gain_points": gain,
                "fastest_found_at_equal_or_higher_accuracy": fastest and fastest["name"],
                "speedup": speedup,
                "target_met": (gain is not None and gain >= 2.0) or (speedup is not None and speedup >= 1.3),
            }
        )
    report = {
        **common,
        "target": ">= +2 points at equal or lower latency, or >= 1.3x faster at equal or higher accuracy",
        "latency": "measured x86-cpu (ONNX Runtime, CPU EP, 1 thread), median",
        "baselines_meeting_target": sum(r["target_met"] for r in rows),
        "baselines": rows,
        "found": [
            {k: f[k] for k in ("name", "proxy_accuracy", "long_accuracy", "latency_ms", "params", "summary")}
            for f in found
        ],
    }
    write_result("found_vs_baselines", report, started=started)
    _scatter(
        [(i["latency_ms"], i["long_accuracy"], i["group"]) for i in items if i["group"] != "random"],
        "measured x86-cpu latency (ms)",
        f"accuracy after {common['long_recipe']['epochs']} epochs",
        f"Found vs hand-designed: {report['baselines_meeting_target']}/{len(rows)} baselines beaten by the "
        "target margin",
        figure_path("found_vs_baselines.png"),
        labels={i["name"]: (i["latency_ms"], i["long_accuracy"]) for i in items if i["group"] == "baseline"},
    )
    for r in rows:
        print(
            f"{r['baseline']:<24} acc {r['accuracy']:.3f} lat {r['latency_ms']:.3f} ms  "
            f"+{r['accuracy_gain_points']} pts  x{r['speedup']}  met {r['target_met']}"
        )


def _scatter(points, xlabel, ylabel, title, path, labels=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"found": "tab:red", "baseline": "tab:blue", "random": "tab:gray"}
    fig, ax = plt.subplots(figsize=(7, 5))
    for group, colour in colours.items():
        xs = [x for x, _, g in points if g == group]
        ax.scatter(xs, [y for _, y, g in points if g == group], color=colour, label=group, s=28)
    for name, (x, y) in (labels or {}).items():
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    run_main(main)
