"""The fits and metrics of benchmarks/latency_corpus.py: noise floor, the graph model and where it is
biased, the graph each device ran, few-shot leave-one-device-out and what `nas profile fit` does at
k = 100. Pure numpy over feature matrices (rows: networks, columns: `nas.latency.COLUMNS`), and the corpus
file's reader."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmarks._harness import RUNS, SHARED_DATA

CACHE = RUNS / "latency_corpus"  # feature caches and the corpus analyses' own outputs
DEFAULT_DATA = SHARED_DATA / "latency_corpus"


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


def lightgbm_predictions(inputs: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int = 0) -> np.ndarray:
    """LightGBM (log latency, L2) fitted on the `train` rows: its predictions for every row."""
    import lightgbm as lgb

    params = dict(
        objective="regression",
        learning_rate=0.05,
        num_leaves=63,
        min_data_in_leaf=10,
        num_threads=1,
        verbose=-1,
        seed=seed,
    )
    booster = lgb.train(params, lgb.Dataset(inputs[train], np.log(y[train])), num_boost_round=600)
    return np.exp(booster.predict(inputs))


def noise_floor(inputs: np.ndarray, y: np.ndarray, train: int, seed: int = 0) -> dict:
    """LightGBM (`lightgbm_predictions`) on `train` random networks, MAPE / Spearman on the rest."""
    order = np.random.default_rng(seed).permutation(len(y))
    tr, te = order[:train], order[train:]
    p = lightgbm_predictions(inputs, y, tr, seed)[te]
    return {
        "learner": "lightgbm",
        "train": int(len(tr)),
        "test": int(len(te)),
        "mape": mape(p, y[te]),
        "spearman": spearman(p, y[te]),
    }


def conv_count_probe(
    x: np.ndarray,
    y: np.ndarray,
    cells_convolve: np.ndarray,
    holdout: int,
    small: int = 100,
    draws: int = 3,
    seed: int = 0,
) -> dict:
    """Where the linear graph model is biased on some CPUs: its held-out MAPE with the `eager` features
    alone, with one column "the cells hold a convolution" (NB201-only), and with the general column it
    stands for, log(1 + convolution nodes of the graph) (a cost concave in the number of convolutions,
    computable from any graph's per-kind node counts: `conv_node_counts`); fitted on all but `holdout` and on
    `small` networks (`draws` draws). Relative-error NNLS as `fit_matrix`."""
    from nas.latency import conv_node_counts, nnls

    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:holdout], order[holdout:]
    count = conv_node_counts(x)

    def held_out_mape(inputs: np.ndarray, train: np.ndarray) -> float:
        design = np.hstack([np.ones((len(y), 1)), inputs])
        scale = np.abs(design[train] / y[train, None]).max(axis=0)
        scale[scale == 0] = 1.0
        w = nnls(design[train] / y[train, None] / scale, np.ones(len(train)))
        return mape(design[test] @ (w / scale), y[test])

    variants = {
        "eager": x,
        "eager_plus_cells_convolve": np.hstack([x, cells_convolve[:, None].astype(float)]),
        "eager_plus_log_conv_nodes": np.hstack([x, np.log1p(count)[:, None]]),
    }
    picks = [np.random.default_rng(seed + 1 + d).permutation(rest)[:small] for d in range(draws)]
    return {
        name: {
            "all_but_holdout": held_out_mape(inputs, rest),
            f"fit_{small}": float(np.mean([held_out_mape(inputs, pick) for pick in picks])),
        }
        for name, inputs in variants.items()
    } | {"networks_with_convolving_cells": int(cells_convolve.sum())}


def kinds_present(x: np.ndarray) -> dict:
    """Per kind: in how many graphs it occurs (a per-kind once-per-graph cost needs a kind that occurs in
    some graphs and not in others)."""
    from nas.latency import COLUMNS

    out = {}
    for i, column in enumerate(COLUMNS):
        kind, _, feature = column.partition(".")
        if feature == "count" and (x[:, i] > 0).any():
            out[kind] = int((x[:, i] > 0).sum())
    return out


def graph_model(
    x: np.ndarray, y: np.ndarray, holdout: int, small: int = 100, draws: int = 5, seed: int = 0
) -> dict:
    """The package's model (relative-error NNLS) fitted on `small` networks and on all but `holdout`."""
    from nas.latency import fit_matrix

    out = {}
    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:holdout], order[holdout:]
    p = fit_matrix(x[rest], y[rest]).predict_rows(x[test])
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
        p = fit_matrix(x[pick], y[pick]).predict_rows(x[test])
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


def prior_predictions(
    representations: dict, latency: np.ndarray, fit_rows: list[np.ndarray] | None = None
) -> tuple[dict, list[str]]:
    """Each device's model fitted on all networks (or on its `fit_rows`, one index array per device) with
    the representation of the graphs it ran (the one its fit explains best, `graph_ran`), applied to every
    network in every representation (name -> feature matrix): the prior a held-out device is combined
    from, for each graph it may have run. Also: each device's representation."""
    fit_on = [slice(None)] * latency.shape[1] if fit_rows is None else fit_rows
    fitted = [
        graph_ran({name: x[fit_on[d]] for name, x in representations.items()}, latency[fit_on[d], d])
        for d in range(latency.shape[1])
    ]
    predictions = {
        name: np.stack([model.predict_rows(rows) for _, model in fitted], axis=1)
        for name, rows in representations.items()
    }
    return predictions, [name for name, _ in fitted]


def graph_ran(representations: dict, y: np.ndarray):
    """(name, model): the representation whose relative-error fit on all of a device's networks has the
    lowest MAPE (with 15,625 networks and ~50 weights, in-sample is held-out to within noise), with the
    whole-graph term where it lowers that MAPE (as `nas profile fit` keeps it)."""
    from nas.latency import fit_matrix

    best = None
    for name, x in representations.items():
        for term in (False, True):
            model = fit_matrix(x, y, graph_term=term)
            error = mape(model.predict_rows(x), y)
            if best is None or error < best[0]:
                best = (error, name, model)
    return best[1], best[2]


def choose_representation(fits: dict, y: np.ndarray, ran_by: dict | None = None) -> str:
    """The representation whose few-shot fit has the lowest leave-one-out MAPE on the k measured
    networks (only those: the held-out networks never take part in the choice). With `ran_by`
    (representation -> how many prior devices ran it): the most probable one instead, prior odds
    1 + that count, times the likelihood of the k leave-one-out log residuals under a normal model
    (``mean(r^2) ** (-k / 2)``)."""
    if ran_by is None:
        return min(fits, key=lambda name: mape(fits[name].loo_predictions, y))

    def log_posterior(name: str) -> float:
        r = np.log(y / np.maximum(fits[name].loo_predictions, 1e-9))
        return float(np.log1p(ran_by.get(name, 0)) - len(y) / 2 * np.log(np.mean(r**2)))

    return max(fits, key=log_posterior)


def few_shot(
    predictions: dict,
    latency: np.ndarray,
    devices: list[str],
    target: int,
    k: int,
    draws: int,
    exclude_hardware: bool,
    seed: int = 0,
    ran: list[str] | None = None,
    design_pool: int = 0,
    prior: list[int] | None = None,
    pool: np.ndarray | None = None,
    query: np.ndarray | None = None,
) -> dict:
    """Hold `target` out (and its batch-size siblings when `exclude_hardware`), measure k of its
    networks, predict every other network. `predictions`: representation -> prior predictions; per draw
    the representation is chosen by leave-one-out on the k networks (`choose_representation`; `ran`:
    the representation each device ran, for the prior over them). The k networks are random, or with
    `design_pool` chosen from that many random ones as `nas profile bundle --few-shot` chooses them
    (`design_few_shot` on the prior devices' predictions for every representation, seed = the draw).

    A fixed protocol (HELP's, `benchmarks/help_protocol.py`) names the `prior` devices (column indices),
    the `pool` of networks the k are drawn or designed from (default: every network) and the `query`
    networks ranked (default: every network not measured); no measured network may be in `query`."""
    from nas.latency import design_few_shot, fit_few_shot_predictions

    if prior is None:
        prior = [
            d
            for d in range(len(devices))
            if d != target and not (exclude_hardware and hardware(devices[d]) == hardware(devices[target]))
        ]
    if target in prior:
        raise ValueError(f"few_shot: the held-out device {devices[target]} is in its own prior")
    y = latency[:, target]
    rows, covered, widths, loo_mapes, nested, chosen = [], [], [], [], [], []
    for draw in range(draws):
        rng = np.random.default_rng([seed, target, k, draw])
        order = rng.permutation(len(y) if pool is None else pool)
        meas, rest = order[:k], order[k:]
        if design_pool:
            candidates_at = order[:design_pool]
            candidates = np.hstack([q[candidates_at][:, prior] for q in predictions.values()])
            meas = candidates_at[design_few_shot(candidates, k, seed=draw)]
            rest = np.setdiff1d(order, meas)
        if query is not None:
            rest = np.asarray(query)
            if np.intersect1d(meas, rest).size:
                raise ValueError("few_shot: a measured network is among the query networks")
        elif pool is not None:
            rest = np.setdiff1d(np.arange(len(y)), meas)
        fits = {name: fit_few_shot_predictions(q[meas][:, prior], y[meas]) for name, q in predictions.items()}
        ran_by = None if ran is None else {r: sum(ran[d] == r for d in prior) for r in predictions}
        name = choose_representation(fits, y[meas], ran_by)
        fit = fits[name]
        p = fit.predict(predictions[name][rest][:, prior])
        q = fit.interval_log_halfwidth
        inside = (y[rest] >= p * np.exp(-q)) & (y[rest] <= p * np.exp(q))
        rows.append((spearman(p, y[rest]), mape(p, y[rest]), kendall_sample(p, y[rest], seed=draw)))
        covered.append(float(inside.mean()))
        widths.append(float(np.exp(q)))
        loo_mapes.append(mape(fit.loo_predictions, y[meas]))
        nested.append(fit.nested)
        chosen.append(name)
    rows = np.array(rows)
    return {
        "k": k,
        "draws": draws,
        "measured": (
            f"designed from {design_pool} {'random networks' if pool is None else 'networks of the pool'} per draw"
            if design_pool
            else "random"
        ),
        "prior_devices": [devices[d] for d in prior],
        "representation": {name: chosen.count(name) for name in sorted(set(chosen))},
        "spearman": summary(rows[:, 0]),
        "mape": summary(rows[:, 1]),
        "kendall": summary(rows[:, 2]),
        "loo_mape_estimate": summary(loo_mapes),
        "nested_loo": bool(all(nested)),
        "interval_coverage": summary(covered),
        "interval_factor": summary(widths),
    }


GRAPH_TERM_FIT = "direct+log_conv_nodes"  # the direct fit with the whole-graph term


def package_fit(
    xs: dict,
    predictions: dict,
    latency: np.ndarray,
    devices: list[str],
    target: int,
    k: int,
    draws: int,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """What `nas profile fit` does with k measurements of the held-out device (k >= 30): the direct fit
    with and without the whole-graph term (`choose_graph_term`) and the few-shot fit cross-validated on
    the same folds, the lowest held-out MAPE chosen (`compare_with_few_shot`), its interval
    split-conformal on its held-out ratios (as the profile records it). `xs` / `predictions`:
    representation -> features / prior predictions; the choice is made over every (representation, fit)
    pair on the same folds of the k networks. Same draws of k networks as `few_shot`."""
    from nas.latency import (
        conformal_interval,
        fit_few_shot_predictions,
        fit_matrix,
        held_out_few_shot,
        held_out_matrix,
    )

    prior = [d for d in range(len(devices)) if d != target]
    y = latency[:, target]
    rows, covered, chosen = [], [], []
    for draw in range(draws):
        order = np.random.default_rng([seed, target, k, draw]).permutation(len(y))
        meas, rest = order[:k], order[k:]
        held = {}
        for rep, x in xs.items():
            for term, name in ((False, "direct"), (True, GRAPH_TERM_FIT)):
                held[(rep, name)] = held_out_matrix(x[meas], y[meas], folds, seed, graph_term=term)
            held[(rep, "few-shot")] = held_out_few_shot(
                predictions[rep][meas][:, prior], y[meas], folds, seed
            )
        rep, name = min(held, key=lambda key: mape(held[key], y[meas]))
        if name == "few-shot":
            q_all = predictions[rep][:, prior]
            fit = fit_few_shot_predictions(q_all[meas], y[meas])
            p, loo = fit.predict(q_all[rest]), fit.loo_predictions
        else:
            model = fit_matrix(xs[rep][meas], y[meas], graph_term=name == GRAPH_TERM_FIT)
            p, loo = model.predict_rows(xs[rep][rest]), held[(rep, name)]
        interval = conformal_interval(y[meas] / np.maximum(loo, 1e-9))
        inside = (y[rest] >= p * interval.low) & (y[rest] <= p * interval.high)
        rows.append((spearman(p, y[rest]), mape(p, y[rest]), kendall_sample(p, y[rest], seed=draw)))
        covered.append(float(inside.mean()))
        chosen.append((name, rep))
    rows = np.array(rows)
    return {
        "k": k,
        "draws": draws,
        "chosen": {n: [c[0] for c in chosen].count(n) for n in sorted({c[0] for c in chosen})},
        "representation": {r: [c[1] for c in chosen].count(r) for r in sorted({c[1] for c in chosen})},
        "spearman": summary(rows[:, 0]),
        "mape": summary(rows[:, 1]),
        "kendall": summary(rows[:, 2]),
        "interval_coverage": summary(covered),
    }
