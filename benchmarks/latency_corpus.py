"""Benchmark: the latency model on whole networks measured on real devices, and few-shot device models.

Data: ../shared/data/latency_corpus (HELP's public corpus: all 15,625 NAS-Bench-201 networks and 5,000
FBNet-space networks on ~24 device settings; see its README). Features: NAS-Bench-201 networks composed
from cached part features (benchmarks/nb201.py, checked against whole-network exports by
tests/latency/test_fewshot.py), FBNet networks by `ArchitectureFeaturizer(num_classes=100)`; both
cached under results/benchmark-runs/latency_corpus/.

Per device (corpus column): noise floor (LightGBM on 10,000 NB201 networks, MAPE on the rest), the
graph model (`fit_latency_model`'s relative-error NNLS) fitted on 100 and on all-but-holdout networks,
and where it is biased (`conv_count_probe`); few-shot (`nas.latency._fewshot`): leave-one-device-out
with k = 10 and k = 100 measured networks and leave-one-hardware-out with k = 10, predicting all the
others; and at k = 100 what `nas profile fit` does (the direct and the few-shot fit cross-validated on
the same folds, the better one kept: `package_fit`), which the k = 100 targets are checked on. The
graph a device ran (`--representations`, by default `REPRESENTATIONS`: every `none` edge run as ``x * 0``,
or zeros constant-folded; `merge`: folded as `benchmarks/_pixel3_rule.py` says pixel3's were) is
chosen per device: for a prior device on all its networks, for the held-out one on its k measured
networks only (`--graph-choice prior`, the default: the most probable graph given the k networks
and how many prior devices ran each), and recorded.

    .venv/bin/python benchmarks/latency_corpus.py [--data ../shared/data/latency_corpus] [--draws 20]
        [--devices pixel3,silver_4210r]   # a subset (all stay in the prior): writes a subset result

writes results/benchmarks/latency_corpus.json and prints a table. See docs/latency-corpus.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._corpus_fits import (  # noqa: E402
    CACHE,
    DEFAULT_DATA,
    conv_count_probe,
    device_class,
    few_shot,
    graph_model,
    hardware,
    kinds_present,
    noise_floor,
    package_fit,
    prior_predictions,
    read_corpus,
)
from benchmarks._harness import Benchmark, BenchmarkError, repo_path, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=812,  # latency_corpus.json timings_s.total_s (2026-12-03)
    data=("../shared/data/latency_corpus",),
    extra="bench",
)


def nb201_features(archs: list[str], refresh: bool = False) -> np.ndarray:
    from benchmarks import nb201
    from nas.latency import COLUMNS

    cache = CACHE / "nb201_features_eager.npz"
    if cache.is_file() and not refresh:
        data = np.load(cache, allow_pickle=False)
        if list(data["archs"]) == archs and list(data["columns"]) == list(COLUMNS):
            return data["x"]
    x = nb201.network_matrix(archs, COLUMNS, zero="mul", cse=False)  # as the corpus devices ran them
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, x=x, archs=np.array(archs), columns=np.array(COLUMNS))
    return x


def representation_features(archs: list[str], name: str, refresh: bool = False) -> np.ndarray:
    """The NB201 networks' features for the graph a device may have run (`eager`, `fold` or `merge`: see
    the module's docstring), cached under CACHE."""
    if name == "eager":
        return nb201_features(archs, refresh)
    from benchmarks import nb201
    from nas.latency import COLUMNS

    path = CACHE / f"nb201_features_{name}.npy"
    if path.is_file() and not refresh:
        return np.load(path)
    if name == "fold":
        x = nb201.network_matrix(archs, COLUMNS, "fold")
    else:
        from benchmarks._pixel3_rule import rule_matrix

        x = rule_matrix(archs, COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def representation_names(option: str) -> tuple[str, ...]:
    """The names of `--representations` (comma-separated), at least one, each of eager, fold, merge."""
    names = tuple(r.strip() for r in option.split(",") if r.strip())
    if not names or set(names) - {"eager", "fold", "merge"}:
        raise BenchmarkError(f"--representations {option}: choose from eager, fold, merge")
    return names


def fbnet_architecture(layers: str):
    import optuna

    from nas.space import load_space

    space = load_space("fbnet")
    ops = layers.split()
    names = [f"{s.name}.b{i}.op" for s in space.stages for i in range(s.depth[0])]
    if len(ops) != len(names):
        raise ValueError(f"expected {len(names)} layers, got {len(ops)}")
    return space.sample(optuna.trial.FixedTrial(dict(zip(names, ops))))


def fbnet_features(layer_strs: list[str], refresh: bool = False) -> np.ndarray:
    from nas.latency import COLUMNS, ArchitectureFeaturizer

    cache = CACHE / "fbnet_features.npz"
    if cache.is_file() and not refresh:
        data = np.load(cache, allow_pickle=False)
        if list(data["archs"]) == layer_strs and list(data["columns"]) == list(COLUMNS):
            return data["x"]
    featurizer = ArchitectureFeaturizer(num_classes=100)
    x = np.stack([featurizer.features(fbnet_architecture(a)).vector(COLUMNS) for a in layer_strs])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, x=x, archs=np.array(layer_strs), columns=np.array(COLUMNS))
    return x


# ------------------------------------------------------------------------------------------- main


DESIGN_POOL = 1000  # candidates per draw the k = 10 networks are designed from (nas.latency.bundle's pool)
REPRESENTATIONS = ("eager", "merge")  # the graphs a corpus device may have run (docs/latency-corpus.md)
HELP_REFERENCE = {"pixel2": 0.802, "gold_6226": 0.989, "titan_rtx_256": 0.987}
FLOOR_TRAIN = 10_000


def nb201_onehot(archs: list[str]) -> np.ndarray:
    from benchmarks import nb201

    out = np.zeros((len(archs), 6 * len(nb201.OPS)))
    for n, arch in enumerate(archs):
        for e, op in enumerate(nb201.edge_ops(arch)):
            out[n, e * len(nb201.OPS) + nb201.OPS.index(op)] = 1
    return out


def selected_devices(option: str | None, devices: list[str]) -> list[str]:
    """The corpus columns named by --devices (all when None); an unknown name is a usage error."""
    from benchmarks._harness import BenchmarkError

    if option is None:
        return list(devices)
    names = [n.strip() for n in option.split(",") if n.strip()]
    unknown = [n for n in names if n not in devices]
    if unknown or not names:
        raise BenchmarkError(
            f"--devices: unknown corpus column(s) {', '.join(unknown) or '(none given)'}; "
            f"columns: {', '.join(devices)}"
        )
    return names


def fbnet_onehot(layer_strs: list[str]) -> np.ndarray:
    ops = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]
    out = np.zeros((len(layer_strs), 22 * len(ops)))
    for n, layers in enumerate(layer_strs):
        for e, op in enumerate(layers.split()):
            out[n, e * len(ops) + ops.index(op)] = 1
    return out


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the corpus folder")
    parser.add_argument(
        "--draws", type=int, default=10, help="random draws of the k measured networks (k=10)"
    )
    parser.add_argument("--draws-100", type=int, default=3, help="random draws at k=100")
    parser.add_argument("--refresh-features", action="store_true")
    parser.add_argument(
        "--devices",
        default=None,
        help="comma-separated corpus columns to analyse and hold out (default: all; every column stays "
        "in the prior); a subset run writes results/benchmark-runs/latency_corpus/subset.json",
    )
    parser.add_argument(
        "--graph-choice",
        choices=("loo", "prior"),
        default="prior",
        help="how a held-out device's graph is chosen from k networks in the few-shot fits: most "
        "probable given how many prior devices ran each graph (default), or lowest leave-one-out MAPE",
    )
    parser.add_argument(
        "--representations",
        default=",".join(REPRESENTATIONS),
        help="the graphs a device may have run, chosen per device: eager, fold, merge (comma-separated)",
    )
    parser.add_argument(
        "--design",
        choices=("few-shot", "random"),
        default="few-shot",
        help="the k = 10 measured networks: chosen as `nas profile bundle --few-shot` chooses them, from "
        f"{DESIGN_POOL} random ones per draw (default), or random",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="the result file (default: results/benchmarks/)"
    )
    args = parser.parse_args()
    representations = representation_names(args.representations)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from benchmarks import nb201
    from nas.latency import COLUMNS

    started = time.perf_counter()
    start = time.time()
    timings = {}
    archs, devices, latency = read_corpus(args.data / "nasbench201_latency_ms.csv")
    targets_run = selected_devices(args.devices, devices)
    if args.output is None and len(targets_run) < len(devices):
        args.output = CACHE / "subset.json"
    features = {
        name: representation_features(archs, name, args.refresh_features)
        for name in ("eager", "fold", *(("merge",) if "merge" in representations else ()))
    }
    features["absent"] = nb201.network_matrix(archs, COLUMNS, "absent")
    fb_archs, fb_devices, fb_latency = read_corpus(args.data / "fbnet_latency_ms.csv")
    fb_x = fbnet_features(fb_archs, args.refresh_features)
    timings["features_s"] = time.time() - start

    # 1. per device: noise floor and the graph model, NB201 (and FBNet)
    t = time.time()
    onehot = nb201_onehot(archs)
    cells_convolve = np.array(["conv" in a for a in archs])
    per_device = {}
    for d, name in enumerate(devices):
        if name not in targets_run:
            continue
        y = latency[:, d]
        entry = {
            "hardware": hardware(name),
            "class": device_class(name),
            "noise_floor": noise_floor(np.hstack([onehot, features["eager"]]), y, FLOOR_TRAIN),
        }
        holdout = len(y) - FLOOR_TRAIN
        entry["graph_model"] = {
            sem: graph_model(features[sem], y, holdout)
            for sem in ("eager", "absent", "fold", "merge")
            if sem in features
        }
        entry["conv_count_probe"] = conv_count_probe(features["eager"], y, cells_convolve, holdout)
        per_device[name] = entry
        print(
            f"  {name}: floor {entry['noise_floor']['mape']:.2f}%  graph(eager, all) "
            f"{entry['graph_model']['eager']['all_but_holdout']['mape']:.2f}%",
            flush=True,
        )
    fb_onehot = fbnet_onehot(fb_archs)
    fbnet = {}
    for d, name in enumerate(fb_devices):
        if name not in targets_run:
            continue
        y = fb_latency[:, d]
        fbnet[name] = {
            "noise_floor": noise_floor(np.hstack([fb_onehot, fb_x]), y, 4000),
            "graph_model": graph_model(fb_x, y, 1000),
        }
    timings["per_device_s"] = time.time() - t

    # 2. few-shot, leave one device / one hardware out; the graph each device ran chosen per device
    t = time.time()
    reps = {name: features[name] for name in representations}
    prior, prior_reps = prior_predictions(reps, latency)
    ran = prior_reps if args.graph_choice == "prior" else None
    lodo, loho = {}, {}
    pool = DESIGN_POOL if args.design == "few-shot" else 0
    for d, name in enumerate(devices):
        if name not in targets_run:
            continue
        lodo[name] = {
            "k10": few_shot(prior, latency, devices, d, 10, args.draws, False, ran=ran, design_pool=pool),
            "k100": few_shot(prior, latency, devices, d, 100, args.draws_100, False, ran=ran),
            "k100_package": package_fit(reps, prior, latency, devices, d, 100, args.draws_100),
        }
        if hardware(name) != name:
            loho[name] = {
                "k10": few_shot(prior, latency, devices, d, 10, args.draws, True, ran=ran, design_pool=pool)
            }
        print(
            f"  few-shot {name}: k=10 spearman {lodo[name]['k10']['spearman']['mean']:.3f} "
            f"{lodo[name]['k10']['representation']}; k=100 package MAPE "
            f"{lodo[name]['k100_package']['mape']['mean']:.2f} {lodo[name]['k100_package']['representation']}",
            flush=True,
        )
    timings["few_shot_s"] = time.time() - t

    # 3. targets
    targets = check_targets(lodo, per_device, list(lodo))
    timings["total_s"] = time.time() - start
    report = {
        "threads": 1,
        "data": repo_path(args.data),
        "devices": list(lodo),
        "nb201_kinds_present": kinds_present(features["eager"]),
        "features": {
            "nb201": "benchmarks/nb201.py network_matrix: 'eager' (zero='mul', no CSE: every edge run, "
            "none = x*0, as PyTorch's NB201 code runs them), 'absent' (none edges left out, exported "
            "graph after CSE/DCE), 'fold' (none absent and zero propagated; constant-output "
            "networks have no features), 'merge' (benchmarks/_pixel3_rule.py: fold, but a none that "
            "ends a sum and reads one convolution's output runs as a zero-weight copy of it, and an op "
            "of a zero runs on a constant)",
            "fbnet": "ArchitectureFeaturizer(num_classes=100)",
        },
        "representations": {
            "candidates": list(representations),
            "graph_choice": args.graph_choice,
            "prior_devices": dict(zip(devices, prior_reps)),
            "held_out_device": "chosen per draw on the k measured networks only (k=10, k=100 few_shot): "
            "with graph_choice 'prior' the most probable graph, prior odds 1 + the prior devices that "
            "ran it times the normal likelihood of the few-shot fit's leave-one-out log residuals; with "
            "'loo' the lowest leave-one-out MAPE; k100_package: 5-fold MAPE over every "
            "(representation, direct / few-shot) pair",
        },
        "method": "nas.latency._fewshot.fit_few_shot_predictions (see its docstring)",
        "k10_measured": f"designed: nas.latency.design_few_shot from {DESIGN_POOL} random networks per draw"
        if args.design == "few-shot"
        else "random",
        "timings_s": timings,
        "nb201": {
            "per_device": per_device,
            "leave_one_device_out": lodo,
            "leave_one_hardware_out": loho,
        },
        "fbnet": fbnet,
        "targets": targets,
    }
    write_result("latency_corpus", report, started=started, out=args.output)
    print_table(report)
    for key in ("mean_spearman_phone_cpu", "mean_spearman_phone_cpu_without_pixel3"):
        if targets[key]["value"] is not None:
            print(f"{key}: {targets[key]['value']:.3f} (target 0.95)")
    return 0


def check_targets(lodo: dict, per_device: dict, names: list[str]) -> dict:
    """The issue's targets over the analysed devices (a subset run checks its subset only)."""

    def mean_of(values: list) -> dict:
        value = float(np.mean(values)) if values else None
        return {"value": value, "target": 0.95, "met": value is not None and value >= 0.95}

    spearmans = {n: lodo[n]["k10"]["spearman"]["mean"] for n in names}
    # k = 100: what `nas profile fit` does with 100 measurements (the better of a direct and a few-shot fit)
    ratio = {n: lodo[n]["k100_package"]["mape"]["mean"] / per_device[n]["noise_floor"]["mape"] for n in names}
    coverage = {n: lodo[n]["k100_package"]["interval_coverage"]["mean"] for n in names}
    coverage10 = {n: lodo[n]["k10"]["interval_coverage"]["mean"] for n in names}
    phone_cpu = [n for n in names if device_class(n) in ("phone", "cpu")]
    return {
        "help_reference": {
            n: {"help": v, "ours": spearmans[n], "met": spearmans[n] >= v}
            for n, v in HELP_REFERENCE.items()
            if n in spearmans
        },
        "mean_spearman_phone_cpu": mean_of([spearmans[n] for n in phone_cpu]),
        "mean_spearman_phone_cpu_without_pixel3": mean_of([spearmans[n] for n in phone_cpu if n != "pixel3"]),
        "mape_k100_vs_floor_phone_cpu": {n: {"ratio": ratio[n], "met": ratio[n] <= 1.2} for n in phone_cpu},
        "coverage_k100_85_95": {
            n: {"coverage": coverage[n], "met": 0.85 <= coverage[n] <= 0.95} for n in names
        },
        "coverage_k10_85_95": {
            n: {"coverage": coverage10[n], "met": 0.85 <= coverage10[n] <= 0.95} for n in names
        },
    }


def print_table(report: dict) -> None:
    nb = report["nb201"]
    print(
        f"{'device':15s} {'class':5s} {'sp k10':>7s} {'±':>5s} {'sp LOHO':>7s} {'MAPE100':>7s} {'floor':>6s} "
        f"{'ratio':>5s} {'cov100':>6s} {'cov10':>6s} {'graph':>6s} {'absent':>6s}  fit at k=100"
    )
    for name, entry in nb["per_device"].items():
        f = nb["leave_one_device_out"][name]
        h = nb["leave_one_hardware_out"].get(name)
        p = f["k100_package"]  # what `nas profile fit` does with 100 measurements
        floor = entry["noise_floor"]["mape"]
        print(
            f"{name:15s} {entry['class']:5s} {f['k10']['spearman']['mean']:7.3f} {f['k10']['spearman']['std']:5.3f} "
            f"{(h['k10']['spearman']['mean'] if h else float('nan')):7.3f} {p['mape']['mean']:7.2f} "
            f"{floor:6.2f} {p['mape']['mean'] / floor:5.2f} {p['interval_coverage']['mean']:6.3f} "
            f"{f['k10']['interval_coverage']['mean']:6.3f} "
            f"{entry['graph_model']['eager']['all_but_holdout']['mape']:6.2f} "
            f"{entry['graph_model']['absent']['all_but_holdout']['mape']:6.2f}  "
            + ", ".join(f"{n} x{c}" for n, c in p["chosen"].items())
            + " / "
            + ", ".join(f"{n} x{c}" for n, c in p["representation"].items())
            + f"; k=10: {', '.join(f'{n} x{c}' for n, c in f['k10']['representation'].items())}"
        )


if __name__ == "__main__":
    run_main(main)
