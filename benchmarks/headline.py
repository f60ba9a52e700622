"""The headline result: found networks against hand-designed ones, both deployment-trained with one recipe,
tested on images the search never saw, with measured x86 and predicted Raspberry Pi 4 / Jetson TX2 latency.

    python benchmarks/headline.py [--trials 16] [--budget-ms 0.22] [--epochs 3] [--train-subset 12000]
        [--proxy-epochs 8] [--proxy-train-subset 5000] [--found 4] [--random 4]
        [--baselines shufflenet-0.5x,...] [--levels mobilenetv2-0.5x,...]

Steps, each skipped when its output exists (re-run the same command to resume after a kill):

1. reserve a stratified, seeded test split (`--test-fraction` of ../shared/data/cifar10/train) and write the
   rest as the search's dataset (results/benchmark-runs/headline/data/*.npz): the search and the deployment
   training see only the rest;
2. `nas.search` on x86-cpu (predicted latency, `--budget-ms`; proxy training of `--proxy-epochs` x
   `--proxy-train-subset` images, 4x the package's default: benchmarks/headline_fidelity.py measured it
   ranking the headline's networks at Kendall tau 0.73 against deployment training on average over three
   training seeds, the default at 0.53), then `nas.export_run` (its Pareto set);
3. `nas.evaluate_baselines(..., export=True)` (the baselines' proxy accuracy, as the run trained its own);
4. `--random` architectures drawn uniformly from the space under the budget, proxy-trained the same way;
5. `nas train` (`train_command`, `--workers` Ray tasks of one CPU) of `--found` networks spread over the
   front, the chosen baselines and the random ones: `--epochs` of `--train-subset` images each, drawn from
   the search's training split (the search's validation split stays out);
6. after all training: test accuracy (ONNX Runtime, Wilson 95% interval), x86 latency measured in rounds
   that interleave the models, and predicted pi/jetson latency with its interval and extrapolated share.

Writes results/benchmarks/headline.json, headline.png and the figure's trained models under
results/benchmarks/headline/NAME/ (model.onnx with its preprocessing metadata, spec.json, metrics.json).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import (  # noqa: E402
    RUNS,
    Benchmark,
    figure_path,
    read_json,
    run_main,
    write_result,
)
from benchmarks._headline_report import DEVICES, SPLIT_SEED, plot, result_body  # noqa: E402
from benchmarks._pruning_test_set import correct  # noqa: E402
from benchmarks.search_efficiency import add_data_argument, data_missing, frozen_profile  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=4490,  # 4,066 s with --found 5, then 422 s adding the front's other three (2026-12-03, 2 cores)
    data=("../shared/data/cifar10/train",),
)
RUN = RUNS / "headline"
DEFAULT_BASELINES = "shufflenet-0.5x,mobilenetv2-0.5x,mobilenetv3-small-0.5x"


# ---------------------------------------------------------------- pure logic (tested)


def spread(items: list, k: int, key) -> list:
    """`k` items spread evenly over `key` (the first, the last and evenly between), in key order."""
    ordered = sorted(items, key=key)
    if len(ordered) <= k:
        return ordered
    if k == 1:
        return [ordered[-1]]
    return [ordered[round(i * (len(ordered) - 1) / (k - 1))] for i in range(k)]


def interleaved_orders(n: int, rounds: int) -> list[list[int]]:
    """The order models are measured in each round: rotated, so each model runs early and late alike."""
    return [[(start + i) % n for i in range(n)] for start in (r * max(1, n // rounds) for r in range(rounds))]


class RandomChoices:
    """A `Suggester` that draws every choice uniformly (what a random sampler does), seeded."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def suggest_categorical(self, name, choices):
        return self.rng.choice(list(choices))


# ---------------------------------------------------------------- steps


def reserve_test_split(data: str, fraction: float) -> tuple[Path, Path]:
    """Write the search's images and the held-out test images as two .npz files (once)."""
    import numpy as np

    from nas.data import load_dataset

    folder = RUN / "data"
    search_npz, test_npz = folder / "search.npz", folder / "test.npz"
    if search_npz.is_file() and test_npz.is_file():
        return search_npz, test_npz
    # load_dataset's stratified split with its own seed: its validation part becomes the test split
    full = load_dataset(data, val_fraction=fraction, seed=SPLIT_SEED)
    folder.mkdir(parents=True, exist_ok=True)
    classes = np.array(full.classes)
    for path, x, y in ((test_npz, full.x_val, full.y_val), (search_npz, full.x_train, full.y_train)):
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x=x, y=y, classes=classes)
        os.replace(tmp, path)
    print(f"test split: {len(full.y_val)} images held out; search data: {len(full.y_train)}", flush=True)
    return search_npz, test_npz


def run_search(search_npz: Path, args) -> Path:
    import nas
    from nas.export import export_run

    run = RUN / "search"
    if not (run / "export").is_dir():
        nas.search(
            space="mobilenet",
            profile=str(frozen_profile()),
            latency="predicted",
            dataset=str(search_npz),
            trials=args.trials,
            seed=0,
            workers=args.workers,
            latency_budget_ms=args.budget_ms,
            epochs=args.proxy_epochs,
            train_subset=args.proxy_train_subset,
            out=str(run),
        )
        export_run(run)
    return run


def run_baselines(run: Path, names: list[str]) -> list[Path]:
    from nas.baselines import evaluate_baselines
    from nas.export import BASELINES_FOLDER

    folders = [run / BASELINES_FOLDER / name for name in names]
    if not all((f / "spec.json").is_file() for f in folders):
        widths = sorted({float(n.rsplit("-", 1)[1].rstrip("x")) for n in names})
        evaluate_baselines(run, widths, export=True)
    return folders


def random_draws(space_name: str, n: int, budget_ms: float) -> dict:
    """arch hash -> (architecture, latency predicted by the frozen x86-cpu model) of the first `n` distinct
    architectures a seeded uniform draw from the space puts within the budget: the same on every run, so a
    resume adds to them and other benchmarks rebuild them."""
    from nas.latency import ArchitectureFeaturizer, load_profile
    from nas.space import load_space

    space, x86 = load_space(space_name), load_profile(str(frozen_profile()))
    draws, chooser, featurizer = {}, RandomChoices(SPLIT_SEED), ArchitectureFeaturizer(10)
    while len(draws) < n:
        arch = space.sample(chooser)
        latency = x86.predict(featurizer.features(arch)).latency_ms  # the exported network's features
        if latency <= budget_ms and arch.hash not in draws:
            draws[arch.hash] = (arch, latency)
    return draws


def random_name(index: int, arch_hash: str) -> str:
    return f"random-{index}-{arch_hash[:8]}"


def random_architectures(run: Path, n: int, budget_ms: float) -> list[Path]:
    """`n` architectures drawn uniformly from the run's space within the latency budget, proxy-trained with
    the run's recipe and written as export folders (RUN_DIR/random/NAME)."""
    from safetensors.torch import load

    from nas.builder import build_model
    from nas.data import load_dataset
    from nas.evaluate import ProxyTrainer, TrainingRecipe, count_costs
    from nas.export import export_network
    from nas.search import RayExecutor, train_candidate

    folder = run / "random"
    config = read_json(run / "config.json", "run configuration")
    search, recipe = config["search"], TrainingRecipe(**config["recipe"])
    draws = random_draws(search["space"], n, budget_ms)
    paths = {h: folder / random_name(i, h) for i, h in enumerate(draws)}
    todo = {h: draw for h, draw in draws.items() if not (paths[h] / "spec.json").is_file()}
    if not todo:
        return list(paths.values())
    dataset = load_dataset(search["dataset"], val_fraction=search["val_fraction"], seed=search["seed"])
    executor = RayExecutor(workers=search.get("workers"))
    try:
        data = executor.put(dataset)
        handles = {
            executor.submit(train_candidate, ProxyTrainer(recipe), arch, data, search["seed"]): h
            for h, (arch, _) in todo.items()
        }
        trained = {}
        while handles:
            handle = executor.wait_one(list(handles))
            trained[handles.pop(handle)] = executor.result(handle)
    finally:
        executor.close()
    for h, (arch, latency) in todo.items():
        model = build_model(arch, dataset.num_classes)
        model.load_state_dict(load(trained[h].state_dict))
        costs = count_costs(model, arch.resolution)
        metrics = {
            "random": h,
            "profile": "x86-cpu-frozen",
            "dataset": dataset.name,
            "proxy_accuracy": trained[h].accuracy,
            "latency_ms": latency,
            "latency_source": "predicted",
            "params": costs.params,
            "macs": costs.macs,
            "training": config.get("recipe"),
        }
        export_network(
            paths[h], model, arch, dataset.num_classes, config["preprocessing"], metrics, run_dir=run
        )
    return list(paths.values())


def deploy(sources: list[Path], search_npz: Path, args) -> list[Path]:
    """`nas train SOURCES --workers W --epochs E --dataset search.npz` (resumes what is checkpointed)."""
    from nas.export import DEPLOYED_SUFFIX, train_command
    from nas.search import RayExecutor

    macs = {s: read_json(s / "metrics.json", "model metrics").get("macs") or 0 for s in sources}
    ordered = sorted(sources, key=lambda s: -macs[s])  # the longest first: the two workers end together
    outs = [s.parent / f"{s.name}{DEPLOYED_SUFFIX}" for s in ordered]
    if all((o / "model.onnx").is_file() and (o / "metrics.json").is_file() for o in outs):
        return outs
    train_command(
        [str(s) for s in ordered],
        executor_factory=RayExecutor,
        workers=args.workers,
        dataset=str(search_npz),
        epochs=args.epochs,
        train_subset=args.train_subset or None,
        seed=0,
    )
    return outs


def held_out_accuracy(onnx_path: Path, x, y) -> dict:
    """The exported model's accuracy on (x, y) with its Wilson 95% interval."""
    return accuracy_record(correct(onnx_path, x, y))


def accuracy_record(right) -> dict:
    """Accuracy and its Wilson 95% interval from the per-image correctness `right`."""
    from nas.validate import wilson_interval

    n = len(right)
    low, high = wilson_interval(int(right.sum()), n)
    return {
        "accuracy": round(int(right.sum()) / n, 4),
        "accuracy_ci95": [round(low, 4), round(high, 4)],
        "test_images": n,
    }


def latencies(paths: list[Path], rounds: int) -> list[dict]:
    """x86 measured (median over `rounds` interleaved rounds of the profile protocol) and the devices'
    predictions, for each model."""
    import statistics

    from nas.latency import load_profile, measure_latency

    x86 = load_profile("x86-cpu")
    graphs = [p.read_bytes() for p in paths]
    per_model: list[list[float]] = [[] for _ in paths]
    for order in interleaved_orders(len(paths), rounds):
        for i in order:
            per_model[i].append(measure_latency(graphs[i], x86.measurement).median_ms)
    out = []
    for graph, measured in zip(graphs, per_model):
        row = {
            "x86-cpu": {
                "latency_ms": round(statistics.median(measured), 5),
                "min_ms": round(min(measured), 5),
                "rounds_ms": [round(m, 5) for m in measured],
                "source": "measured",
            }
        }
        for device in DEVICES:
            p = load_profile(device).predict(graph)
            row[device] = {
                "latency_ms": round(p.latency_ms, 4),
                "low_ms": None if p.low_ms is None else round(p.low_ms, 4),
                "high_ms": None if p.high_ms is None else round(p.high_ms, 4),
                "level": p.level,
                "extrapolated_share": round(p.extrapolated_share, 4),
                "uncovered_kinds": list(p.uncovered),
                "source": "predicted",
            }
        out.append(row)
    return out


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share held out for the test split")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=0.22,
        help="the search's budget on the frozen x86-cpu model's latency",
    )
    parser.add_argument("--epochs", type=int, default=3, help="deployment-training epochs")
    parser.add_argument(
        "--train-subset",
        type=int,
        default=12000,
        help="deployment images per epoch, drawn afresh each epoch (0: all of the training split)",
    )
    parser.add_argument("--proxy-epochs", type=int, default=8, help="the search's proxy-training epochs")
    parser.add_argument(
        "--proxy-train-subset", type=int, default=5000, help="the search's proxy-training images per epoch"
    )
    parser.add_argument("--found", type=int, default=4, help="found networks trained (spread over the front)")
    parser.add_argument("--random", type=int, default=4, help="random architectures (for the Kendall tau)")
    parser.add_argument("--baselines", default=DEFAULT_BASELINES)
    parser.add_argument(
        "--levels",
        default="mobilenetv2-0.5x,mobilenetv3-small-0.5x",
        help="the target's two x86 latency levels: milliseconds, or a baseline's name (its measured latency)",
    )
    parser.add_argument("--rounds", type=int, default=21, help="interleaved latency rounds")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if data_missing(args.data):
        return 2
    started = time.perf_counter()
    clock = {}

    def stamp(step: str, since: float) -> None:
        clock[step] = round(time.perf_counter() - since, 1)
        print(f"[{step}] {clock[step]:.0f} s", flush=True)

    t = time.perf_counter()
    search_npz, test_npz = reserve_test_split(args.data, args.test_fraction)
    t = time.perf_counter()
    run = run_search(search_npz, args)
    stamp("search", t)
    t = time.perf_counter()
    baseline_dirs = run_baselines(run, args.baselines.split(","))
    random_dirs = random_architectures(run, args.random, args.budget_ms)
    stamp("baselines_and_random_proxy", t)
    from nas.export import DEPLOYED_SUFFIX, pareto_exports

    front = [(p, read_json(p / "metrics.json", "model metrics")) for p in pareto_exports(run)]
    found_dirs = [p for p, _ in spread(front, args.found, key=lambda pm: pm[1]["latency_ms"])]
    groups = {**{p: "found" for p in found_dirs}, **{p: "baseline" for p in baseline_dirs}}
    groups.update({p: "random" for p in random_dirs})
    t = time.perf_counter()
    outs = {out.name: out for out in deploy(list(groups), search_npz, args)}
    deployed = {s: outs[f"{s.name}{DEPLOYED_SUFFIX}"] for s in groups}
    stamp("deployment_training", t)

    import numpy as np

    from nas.space import Architecture

    test = np.load(test_npz)
    t = time.perf_counter()
    points, right_by_name = [], {}
    for source, out in deployed.items():
        metrics = read_json(out / "metrics.json", "deployed metrics")
        name = metrics.get("baseline") or (
            f"found-trial{metrics['trial']}" if "trial" in metrics else source.name
        )
        right_by_name[name] = correct(out / "model.onnx", test["x"], test["y"])
        points.append(
            {
                "name": name,
                "group": groups[source],
                "proxy_accuracy": metrics["proxy_accuracy"],
                "validation_accuracy": round(metrics["accuracy"], 4),
                **accuracy_record(right_by_name[name]),
                "train_seconds": round(metrics["train_seconds"], 1),
                "params": metrics.get("params"),
                "macs": metrics.get("macs"),
                "summary": Architecture.from_dict(
                    read_json(out / "spec.json", "model spec")["architecture"]
                ).summary(),
                "model": out,
            }
        )
    stamp("test_evaluation", t)
    t = time.perf_counter()
    for point, lat in zip(points, latencies([p["model"] / "model.onnx" for p in points], args.rounds)):
        point["latency"] = lat
        point["latency_ms"] = lat["x86-cpu"]["latency_ms"]
    stamp("latency", t)
    write_result(
        "headline", result_body(points, run, search_npz, args, clock, right_by_name), started=started
    )
    recipe = f"{args.epochs} epochs" + (f" x {args.train_subset:,} images" if args.train_subset else "")
    plot(points, figure_path("headline.png"), recipe)
    return 0


if __name__ == "__main__":
    run_main(main)
