"""Which zeros pixel3's converter folded: the 'fold' graphs against pixel3's measurements.

'fold' (benchmarks/nb201.py) drops every op that reads a zero node and calls a network whose cell output
is provably zero constant. This checks it where the answer is visible: the 192 cells with one 3x3
convolution and every other edge `none` or `skip_connect` (a 3x3 convolution per cell costs ~6 ms on
pixel3, the rest of such a network ~1.5 ms, so "the convolution ran" is `latency > 4 ms`); and it fits
the graph model with one more set of columns, the nodes 'eager' runs and 'fold' drops (a linear
"part of the zeros fold" representation), against 'fold' alone and LightGBM's ranking (from the
corpus JSON). Needs the feature caches of benchmarks/latency_corpus.py.

    .venv/bin/python -m benchmarks._corpus_pixel3

writes results/benchmark-runs/latency_corpus/pixel3_folding.json.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import nb201
from benchmarks._corpus_fits import mape, spearman
from benchmarks._harness import run_main, write_result
from benchmarks.latency_corpus import CACHE, DEFAULT_DATA, nb201_features, read_corpus

CONV_RAN_MS = 4.0
HOLDOUT = 5625


def single_conv_cells(archs: list[str], y: np.ndarray) -> dict:
    """The 192 cells with one 3x3 convolution, the other edges `none` / `skip_connect`: does 'fold' say
    the convolution runs where the measurement says it ran?"""
    latency = dict(zip(archs, y))
    rows = []
    for arch in nb201.single_conv_arch_strs():
        plan, _ = nb201.cell_plan(arch, "fold")
        fold_runs = any(op == "nor_conv_3x3" for edges in plan.values() for op, _ in edges)
        rows.append((arch, float(latency[arch]), fold_runs, bool(latency[arch] > CONV_RAN_MS)))
    wrong = [r for r in rows if r[2] != r[3]]
    return {
        "cells": len(rows),
        "fold_wrong": len(wrong),
        "fold_drops_a_convolution_that_ran": sum(1 for r in wrong if r[3]),
        "fold_runs_a_convolution_that_folded": sum(1 for r in wrong if not r[3]),
        "examples_ms": {r[0]: r[1] for r in rows if r[0].startswith("|nor_conv_3x3~0|+|")},
    }


def held_out_fit(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Relative-error NNLS (as `fit_matrix`) on all but `HOLDOUT` networks, MAPE / Spearman on those."""
    from nas.latency import nnls

    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:HOLDOUT], order[HOLDOUT:]
    design = np.hstack([np.ones((len(y), 1)), x])
    scale = np.abs(design[rest] / y[rest, None]).max(axis=0)
    scale[scale == 0] = 1.0
    w = nnls(design[rest] / y[rest, None] / scale, np.ones(len(rest))) / scale
    p = design[test] @ w
    return {"mape": mape(p, y[test]), "spearman": spearman(p, y[test])}


def main() -> int:
    started = time.perf_counter()
    archs, devices, latency = read_corpus(DEFAULT_DATA / "nasbench201_latency_ms.csv")
    y = latency[:, devices.index("pixel3")]
    eager = nb201_features(archs)
    fold = np.load(CACHE / "nb201_features_fold.npy")
    report = {
        "single_conv_cells": single_conv_cells(archs, y),
        "graph_model_all_but_5625": {
            "fold": held_out_fit(fold, y),
            "fold_plus_folded_nodes": held_out_fit(np.hstack([fold, eager - fold]), y),
        },
    }
    write_result("pixel3_folding", report, started=started, out=CACHE / "pixel3_folding.json")
    print(report["single_conv_cells"] | {"examples_ms": "..."}, report["graph_model_all_but_5625"])
    return 0


if __name__ == "__main__":
    run_main(main)
