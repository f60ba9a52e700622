"""Benchmark: the latency model on whole networks measured on real devices, and few-shot device models.

Data: ../shared/data/latency_corpus (HELP's public corpus: all 15,625 NAS-Bench-201 networks and 5,000
FBNet-space networks on ~24 device settings; see its README). Features: NAS-Bench-201 networks composed
from cached part features (benchmarks/nb201.py, checked against whole-network exports by
tests/latency/test_fewshot.py), FBNet networks by `ArchitectureFeaturizer(num_classes=100)`; both
cached under results/benchmark-runs/latency_corpus/.

Per device (corpus column): noise floor (LightGBM on 10,000 NB201 networks, MAPE on the rest), the
graph model (`fit_latency_model`'s relative-error NNLS) fitted on 100 and on all-but-holdout networks;
few-shot (`nas.latency._fewshot`): leave-one-device-out and leave-one-hardware-out with k = 10 and
k = 100 measured networks, predicting all the others; and at k = 100 what `nas profile fit` does (the
direct and the few-shot fit cross-validated on the same folds, the better one kept: `package_fit`),
which the k = 100 targets are checked on.

    .venv/bin/python benchmarks/latency_corpus.py [--data ../shared/data/latency_corpus] [--draws 20]

writes results/benchmarks/latency_corpus.json and prints a table. See docs/latency-corpus.md.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, SHARED_DATA, Benchmark, repo_path, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=545,  # latency_corpus.json timings_s.total_s
    data=("../shared/data/latency_corpus",),
    extra="bench",
)
CACHE = RUNS / "latency_corpus"
DEFAULT_DATA = SHARED_DATA / "latency_corpus"
GPUS = ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp")
PHONES = ("pixel2", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1")
CPUS = ("gold_6226", "gold_6240", "silver_4114", "silver_4210r")


def hardware(column: str) -> str:
    """The hardware a corpus column was measured on: batch-size variants of one GPU are one hardware."""
    for gpu in GPUS:
        if column.startswith(gpu + "_") and column[len(gpu) + 1 :].isdigit():
            return gpu
    return column


def device_class(column: str) -> str:
    h = hardware(column)
    return "gpu" if h in GPUS else "phone" if h in PHONES else "cpu" if h in CPUS else "unknown"


def read_corpus(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(architecture strings, device columns, latency matrix networks x devices, ms)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    devices = header[2:]
    archs = [row[1] for row in rows]
    latency = np.array([[float(v) for v in row[2:]] for row in rows])
    return archs, devices, latency


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


# ------------------------------------------------------------------------------------------- metrics


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs: several phone columns are whole ms)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    average = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; 0 (no ranking information) when either sequence is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def mape(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y) / y) * 100)


def kendall_sample(p: np.ndarray, y: np.ndarray, n: int = 2000, seed: int = 0) -> float:
    from nas.latency import kendall_tau

    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    return kendall_tau(p[idx], y[idx])


def summary(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(len(v)),
    }


# ------------------------------------------------------------------------------------------- analyses


def noise_floor(inputs: np.ndarray, y: np.ndarray, train: int, seed: int = 0) -> dict:
    """LightGBM (log latency, L2) on `train` random networks, MAPE / Spearman on the rest."""
    import lightgbm as lgb

    order = np.random.default_rng(seed).permutation(len(y))
    tr, te = order[:train], order[train:]
    params = dict(
        objective="regression",
        learning_rate=0.05,
        num_leaves=63,
        min_data_in_leaf=10,
        num_threads=1,
        verbose=-1,
        seed=seed,
    )
    booster = lgb.train(params, lgb.Dataset(inputs[tr], np.log(y[tr])), num_boost_round=600)
    p = np.exp(booster.predict(inputs[te]))
    return {
        "learner": "lightgbm",
        "train": int(len(tr)),
        "test": int(len(te)),
        "mape": mape(p, y[te]),
        "spearman": spearman(p, y[te]),
    }


def conv_presence_probe(
    x: np.ndarray, y: np.ndarray, cells_convolve: np.ndarray, holdout: int, seed: int = 0
) -> dict:
    """Where the linear graph model is biased: its all-but-`holdout` MAPE with the `eager` features, and with
    one more column, 1 when the cells hold any convolution (a fixed cost paid once when convolutions run,
    which a per-node linear model cannot express). Relative-error NNLS as `fit_matrix`."""
    from nas.latency import nnls

    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:holdout], order[holdout:]

    def held_out_mape(inputs: np.ndarray) -> float:
        design = np.hstack([np.ones((len(y), 1)), inputs])
        scale = np.abs(design[rest] / y[rest, None]).max(axis=0)
        scale[scale == 0] = 1.0
        w = nnls(design[rest] / y[rest, None] / scale, np.ones(len(rest)))
        return mape(design[test] @ (w / scale), y[test])

    return {
        "eager": held_out_mape(x),
        "eager_plus_cells_convolve": held_out_mape(np.hstack([x, cells_convolve[:, None].astype(float)])),
        "networks_with_convolving_cells": int(cells_convolve.sum()),
    }


def graph_model(
    x: np.ndarray, y: np.ndarray, holdout: int, small: int = 100, draws: int = 5, seed: int = 0
) -> dict:
    """The package's model (relative-error NNLS) fitted on `small` networks and on all but `holdout`."""
    from nas.latency import COLUMNS, fit_matrix

    def predict(model, rows):
        w = np.array([model.weights.get(c, 0.0) for c in COLUMNS])
        return model.overhead_ms + rows @ w

    out = {}
    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:holdout], order[holdout:]
    model = fit_matrix(x[rest], y[rest])
    p = predict(model, x[test])
    out["all_but_holdout"] = {
        "train": int(len(rest)),
        "test": int(len(test)),
        "mape": mape(p, y[test]),
        "spearman": spearman(p, y[test]),
        "kendall": kendall_sample(p, y[test]),
    }
    rows = []
    for d in range(draws):
        pick = np.random.default_rng(seed + 1 + d).permutation(rest)[:small]
        model = fit_matrix(x[pick], y[pick])
        p = predict(model, x[test])
        rows.append((mape(p, y[test]), spearman(p, y[test]), kendall_sample(p, y[test])))
    rows = np.array(rows)
    out[f"fit_{small}"] = {
        "train": small,
        "test": int(len(test)),
        "draws": draws,
        "mape": summary(rows[:, 0]),
        "spearman": summary(rows[:, 1]),
        "kendall": summary(rows[:, 2]),
    }
    return out


def prior_predictions(x: np.ndarray, latency: np.ndarray) -> tuple[list, np.ndarray]:
    """Each device's model fitted on all networks (the prior of the others), and its predictions."""
    from nas.latency import fit_matrix, model_arrays

    models = [fit_matrix(x, latency[:, d]) for d in range(latency.shape[1])]
    overheads, weights = model_arrays(models)
    return models, overheads[None, :] + x @ weights.T


def few_shot(
    predictions: np.ndarray,
    latency: np.ndarray,
    devices: list[str],
    target: int,
    k: int,
    draws: int,
    exclude_hardware: bool,
    seed: int = 0,
) -> dict:
    """Hold `target` out (and its batch-size siblings when `exclude_hardware`), measure k of its
    networks, predict every other network."""
    from nas.latency import fit_few_shot_predictions

    prior = [
        d
        for d in range(len(devices))
        if d != target and not (exclude_hardware and hardware(devices[d]) == hardware(devices[target]))
    ]
    y = latency[:, target]
    q_all = predictions[:, prior]
    rows, covered, widths, loo_mapes, nested = [], [], [], [], []
    for draw in range(draws):
        rng = np.random.default_rng([seed, target, k, draw])
        order = rng.permutation(len(y))
        meas, rest = order[:k], order[k:]
        fit = fit_few_shot_predictions(q_all[meas], y[meas])
        p = fit.predict(q_all[rest])
        q = fit.interval_log_halfwidth
        inside = (y[rest] >= p * np.exp(-q)) & (y[rest] <= p * np.exp(q))
        rows.append((spearman(p, y[rest]), mape(p, y[rest]), kendall_sample(p, y[rest], seed=draw)))
        covered.append(float(inside.mean()))
        widths.append(float(np.exp(q)))
        loo_mapes.append(mape(fit.loo_predictions, y[meas]))
        nested.append(fit.nested)
    rows = np.array(rows)
    return {
        "k": k,
        "draws": draws,
        "prior_devices": [devices[d] for d in prior],
        "spearman": summary(rows[:, 0]),
        "mape": summary(rows[:, 1]),
        "kendall": summary(rows[:, 2]),
        "loo_mape_estimate": summary(loo_mapes),
        "nested_loo": bool(all(nested)),
        "interval_coverage": summary(covered),
        "interval_factor": summary(widths),
    }


def package_fit(
    x: np.ndarray,
    predictions: np.ndarray,
    latency: np.ndarray,
    devices: list[str],
    target: int,
    k: int,
    draws: int,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """What `nas profile fit` does with k measurements of the held-out device (k >= 30): the direct fit
    and the few-shot fit cross-validated on the same folds, the lower held-out MAPE chosen
    (`compare_with_few_shot`), its interval split-conformal on its held-out ratios (as the profile
    records it). Same draws of k networks as `few_shot`."""
    from nas.latency import (
        COLUMNS,
        conformal_interval,
        fit_few_shot_predictions,
        fit_matrix,
        held_out_few_shot,
        held_out_matrix,
    )

    prior = [d for d in range(len(devices)) if d != target]
    y = latency[:, target]
    q_all = predictions[:, prior]
    rows, covered, chosen = [], [], []
    for draw in range(draws):
        order = np.random.default_rng([seed, target, k, draw]).permutation(len(y))
        meas, rest = order[:k], order[k:]
        direct_held = held_out_matrix(x[meas], y[meas], folds, seed)
        few_held = held_out_few_shot(q_all[meas], y[meas], folds, seed)
        if mape(few_held, y[meas]) < mape(direct_held, y[meas]):
            fit = fit_few_shot_predictions(q_all[meas], y[meas])
            p, held, name = fit.predict(q_all[rest]), fit.loo_predictions, "few-shot"
        else:
            model = fit_matrix(x[meas], y[meas])
            w = np.array([model.weights.get(c, 0.0) for c in COLUMNS])
            p, held, name = model.overhead_ms + x[rest] @ w, direct_held, "direct"
        interval = conformal_interval(y[meas] / np.maximum(held, 1e-9))
        inside = (y[rest] >= p * interval.low) & (y[rest] <= p * interval.high)
        rows.append((spearman(p, y[rest]), mape(p, y[rest]), kendall_sample(p, y[rest], seed=draw)))
        covered.append(float(inside.mean()))
        chosen.append(name)
    rows = np.array(rows)
    return {
        "k": k,
        "draws": draws,
        "chosen": {name: chosen.count(name) for name in sorted(set(chosen))},
        "spearman": summary(rows[:, 0]),
        "mape": summary(rows[:, 1]),
        "kendall": summary(rows[:, 2]),
        "interval_coverage": summary(covered),
    }


# ------------------------------------------------------------------------------------------- main


HELP_REFERENCE = {"pixel2": 0.802, "gold_6226": 0.989, "titan_rtx_256": 0.987}
FLOOR_TRAIN = 10_000


def nb201_onehot(archs: list[str]) -> np.ndarray:
    from benchmarks import nb201

    out = np.zeros((len(archs), 6 * len(nb201.OPS)))
    for n, arch in enumerate(archs):
        ops = [op for node in nb201.parse_arch(arch) for op, _ in node]
        for e, op in enumerate(ops):
            out[n, e * len(nb201.OPS) + nb201.OPS.index(op)] = 1
    return out


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
        "--output", type=Path, default=None, help="the result file (default: results/benchmarks/)"
    )
    args = parser.parse_args()
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
    features = {"eager": nb201_features(archs, args.refresh_features)}
    fold_cache = CACHE / "nb201_features_fold.npy"
    if fold_cache.is_file() and not args.refresh_features:
        features["fold"] = np.load(fold_cache)
    else:
        features["fold"] = nb201.network_matrix(archs, COLUMNS, "fold")
        np.save(fold_cache, features["fold"])
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
        y = latency[:, d]
        entry = {
            "hardware": hardware(name),
            "class": device_class(name),
            "noise_floor": noise_floor(np.hstack([onehot, features["eager"]]), y, FLOOR_TRAIN),
        }
        holdout = len(y) - FLOOR_TRAIN
        entry["graph_model"] = {
            sem: graph_model(features[sem], y, holdout) for sem in ("eager", "absent", "fold")
        }
        entry["conv_presence_probe"] = conv_presence_probe(features["eager"], y, cells_convolve, holdout)
        per_device[name] = entry
        print(
            f"  {name}: floor {entry['noise_floor']['mape']:.2f}%  graph(eager, all) "
            f"{entry['graph_model']['eager']['all_but_holdout']['mape']:.2f}%",
            flush=True,
        )
    fb_onehot = fbnet_onehot(fb_archs)
    fbnet = {}
    for d, name in enumerate(fb_devices):
        y = fb_latency[:, d]
        fbnet[name] = {
            "noise_floor": noise_floor(np.hstack([fb_onehot, fb_x]), y, 4000),
            "graph_model": graph_model(fb_x, y, 1000),
        }
    timings["per_device_s"] = time.time() - t

    # 2. few-shot, leave one device / one hardware out
    t = time.time()
    prior = {sem: prior_predictions(features[sem], latency)[1] for sem in ("eager", "fold")}
    lodo, loho = {}, {}
    for d, name in enumerate(devices):
        lodo[name] = {
            "k10": few_shot(prior["eager"], latency, devices, d, 10, args.draws, False),
            "k100": few_shot(prior["eager"], latency, devices, d, 100, args.draws_100, False),
            "k100_package": package_fit(
                features["eager"], prior["eager"], latency, devices, d, 100, args.draws_100
            ),
        }
        if hardware(name) != name:
            loho[name] = {
                "k10": few_shot(prior["eager"], latency, devices, d, 10, args.draws, True),
                "k100": few_shot(prior["eager"], latency, devices, d, 100, args.draws_100, True),
            }
        print(f"  few-shot {name}: k=10 spearman {lodo[name]['k10']['spearman']['mean']:.3f}", flush=True)
    pixel3 = devices.index("pixel3") if "pixel3" in devices else None
    fold_rows = {}
    if pixel3 is not None:
        fold_rows["pixel3"] = {
            "k10": few_shot(prior["fold"], latency, devices, pixel3, 10, args.draws, False),
            "k100": few_shot(prior["fold"], latency, devices, pixel3, 100, args.draws_100, False),
        }
    timings["few_shot_s"] = time.time() - t

    # 3. targets
    def dev_ok(name):
        return device_class(name) in ("phone", "cpu")

    spearmans = {n: lodo[n]["k10"]["spearman"]["mean"] for n in devices}
    # k = 100: what `nas profile fit` does with 100 measurements (the better of a direct and a few-shot fit)
    ratio = {
        n: lodo[n]["k100_package"]["mape"]["mean"] / per_device[n]["noise_floor"]["mape"] for n in devices
    }
    coverage = {n: lodo[n]["k100_package"]["interval_coverage"]["mean"] for n in devices}
    coverage10 = {n: lodo[n]["k10"]["interval_coverage"]["mean"] for n in devices}
    phone_cpu = [n for n in devices if dev_ok(n)]
    targets = {
        "help_reference": {
            n: {"help": v, "ours": spearmans.get(n), "met": spearmans.get(n, 0) >= v}
            for n, v in HELP_REFERENCE.items()
        },
        "mean_spearman_phone_cpu": {
            "value": float(np.mean([spearmans[n] for n in phone_cpu])),
            "target": 0.95,
            "met": bool(np.mean([spearmans[n] for n in phone_cpu]) >= 0.95),
        },
        "mean_spearman_phone_cpu_pixel3_fold_features": _mean_with(spearmans, phone_cpu, fold_rows),
        "mean_spearman_phone_cpu_without_pixel3": {
            "value": float(np.mean([spearmans[n] for n in phone_cpu if n != "pixel3"])),
            "target": 0.95,
            "met": bool(np.mean([spearmans[n] for n in phone_cpu if n != "pixel3"]) >= 0.95),
        },
        "mape_k100_vs_floor_phone_cpu": {n: {"ratio": ratio[n], "met": ratio[n] <= 1.2} for n in phone_cpu},
        "coverage_k100_85_95": {
            n: {"coverage": coverage[n], "met": 0.85 <= coverage[n] <= 0.95} for n in devices
        },
        "coverage_k10_85_95": {
            n: {"coverage": coverage10[n], "met": 0.85 <= coverage10[n] <= 0.95} for n in devices
        },
    }
    timings["total_s"] = time.time() - start
    report = {
        "threads": 1,
        "data": repo_path(args.data),
        "features": {
            "nb201": "benchmarks/nb201.py network_matrix: 'eager' (zero='mul', no CSE: every edge run, "
            "none = x*0, as the corpus devices ran them), 'absent' (none edges left out, exported "
            "graph after CSE/DCE), 'fold' (none absent and zero propagated; constant-output "
            "networks have no features)",
            "fbnet": "ArchitectureFeaturizer(num_classes=100)",
        },
        "method": "nas.latency._fewshot.fit_few_shot_predictions (see its docstring)",
        "timings_s": timings,
        "nb201": {
            "per_device": per_device,
            "leave_one_device_out": lodo,
            "leave_one_hardware_out": loho,
            "pixel3_fold_features": fold_rows,
        },
        "fbnet": fbnet,
        "targets": targets,
    }
    write_result("latency_corpus", report, started=started, out=args.output)
    print_table(report)
    for key in (
        "mean_spearman_phone_cpu",
        "mean_spearman_phone_cpu_pixel3_fold_features",
        "mean_spearman_phone_cpu_without_pixel3",
    ):
        print(f"{key}: {targets[key]['value']:.3f} (target 0.95)")
    return 0


def _mean_with(spearmans: dict, names: list, fold_rows: dict) -> dict:
    values = [fold_rows[n]["k10"]["spearman"]["mean"] if n in fold_rows else spearmans[n] for n in names]
    return {"value": float(np.mean(values)), "target": 0.95, "met": bool(np.mean(values) >= 0.95)}


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
        )
    for name, f in nb["pixel3_fold_features"].items():
        print(
            f"{name + ' (fold)':15s} {'phone':5s} "
            f"{f['k10']['spearman']['mean']:7.3f} {f['k10']['spearman']['std']:5.3f} "
            f"{'':7s} {f['k100']['mape']['mean']:7.2f} {'':6s} {'':5s} {f['k100']['interval_coverage']['mean']:6.3f} "
            f"{f['k10']['interval_coverage']['mean']:6.3f}"
        )


if __name__ == "__main__":
    run_main(main)
