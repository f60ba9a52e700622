"""Generate the latency-corpus device profiles: `hardware_profiles/corpus/<device>.yaml`.

One predicted profile per device of the latency corpus (`../shared/data/latency_corpus`, HELP's data)
measured end to end at batch 1 (phones with TensorFlow Lite, Xeon CPUs and desktop GPUs with PyTorch),
the Pixel 3 left out (its FBNet column is a block sum, and its NAS-Bench-201 runtime folds away every
zero-multiplied branch, which the graph features cannot express). Each model is fitted on all 15,625
NAS-Bench-201 networks, featurized as the devices ran them (every edge computed, `none` as a
multiplication by zero: `benchmarks/nb201.py`), and the 5,000 FBNet-space networks (the `fbnet` space
with 100 classes: depthwise, grouped and pointwise convolutions); validation and interval come from a
5-fold cross-validation on 3,000 of the 20,625 networks, and a prior from `x86-cpu` prices the kinds
neither space has.
These profiles are also the prior of few-shot fitting (`nas profile fit` with few measurements).

    .venv/bin/python benchmarks/corpus_profiles.py [--data ../shared/data/latency_corpus]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import ROOT, repo_path  # noqa: E402
from benchmarks.latency_corpus import DEFAULT_DATA, fbnet_features, nb201_features, read_corpus  # noqa: E402
from nas.latency import (  # noqa: E402  # noqa: E402
    COLUMNS,
    FEATURES,
    KINDS,
    Coverage,
    GraphFeatures,
    choose_graph_term,
    conformal_interval,
    error_metrics,
    fit_matrix,  # noqa: E402
    fit_prior,  # noqa: E402
    load_profile,
    write_profile,
)

DEVICES = {  # corpus column -> (profile name, device, engine)
    "pixel2": ("pixel-2", "Google Pixel 2 (phone CPU)", "TensorFlow Lite"),
    "samsung_a50": ("samsung-a50", "Samsung Galaxy A50 (phone CPU)", "TensorFlow Lite"),
    "samsung_s7": ("samsung-s7", "Samsung Galaxy S7 (phone CPU)", "TensorFlow Lite"),
    "essential_ph_1": ("essential-ph-1", "Essential PH-1 (phone CPU)", "TensorFlow Lite"),
    "gold_6226": ("xeon-gold-6226", "Intel Xeon Gold 6226 (server CPU)", "PyTorch"),
    "gold_6240": ("xeon-gold-6240", "Intel Xeon Gold 6240 (server CPU)", "PyTorch"),
    "silver_4114": ("xeon-silver-4114", "Intel Xeon Silver 4114 (server CPU)", "PyTorch"),
    "silver_4210r": ("xeon-silver-4210r", "Intel Xeon Silver 4210R (server CPU)", "PyTorch"),
    "1080ti_1": ("gtx-1080ti", "NVIDIA GTX 1080 Ti (desktop GPU)", "PyTorch"),
    "2080ti_1": ("rtx-2080ti", "NVIDIA RTX 2080 Ti (desktop GPU)", "PyTorch"),
    "titan_rtx_1": ("titan-rtx", "NVIDIA Titan RTX (desktop GPU)", "PyTorch"),
    "titanx_1": ("titan-x", "NVIDIA Titan X (desktop GPU)", "PyTorch"),
    "titanxp_1": ("titan-xp", "NVIDIA Titan Xp (desktop GPU)", "PyTorch"),
}
SOURCE = (
    "end-to-end latencies of all 15,625 NAS-Bench-201 networks (CIFAR-10 input 32x32, batch 1) and 5,000 "
    "FBNet-space networks (HW-NAS-Bench's CIFAR-100 setting) from the "
    "public data of HELP (Lee et al., NeurIPS 2021; repository HayeonLee/HELP, MIT license), gathered from "
    "HW-NAS-Bench (Li et al., ICLR 2021, MIT license), BRP-NAS (Dudziak et al., NeurIPS 2020) and HELP's "
    "own measurements"
)
VALIDATION_NETWORKS = 3000


def graphs(x: np.ndarray) -> list[GraphFeatures]:
    """Feature rows as `GraphFeatures` (kinds only: the networks were composed, not exported)."""
    out = []
    for row in x:
        kinds = {}
        for k, kind in enumerate(KINDS):
            vector = row[k * len(FEATURES) : (k + 1) * len(FEATURES)]
            if vector.any():
                kinds[kind] = vector.copy()
        out.append(GraphFeatures(kinds=kinds))
    return out


def profile_of(column: str, x: np.ndarray, y: np.ndarray, reference) -> dict:
    name, device, engine = DEVICES[column]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(y), VALIDATION_NETWORKS, replace=False)
    # the whole-graph term kept where it cross-validates better, as `nas profile fit` decides
    graph_term, predicted, term_choice = choose_graph_term(x[pick], y[pick], 5, 0)
    model = fit_matrix(x, y, graph_term=graph_term)
    measured = y[pick]
    data = (
        f"5-fold cross-validation over {VALIDATION_NETWORKS} of the networks (seed 0); whole networks "
        "measured end to end"
    )
    sample = graphs(x[pick[:1000]])
    coverage = Coverage.of(
        graphs(x[np.abs(x).sum(axis=1) > 0]),
        source=f"{len(y)} NAS-Bench-201 and FBNet networks (composed features: kinds only, no size ranges)",
    )
    prior = fit_prior(
        model,
        coverage,
        list(zip(sample, y[pick[:1000]])),
        reference.predictor.model,
        reference.predictor.coverage,
        reference.name,
    )
    profile = {
        "name": name,
        "description": f"{device}, batch 1, {engine}: latency predicted from 20,625 whole NAS-Bench-201 and FBNet "
        "networks measured end to end (latency corpus)",
        "latency": "predicted",
        "runtime": {
            "engine": engine,
            "device": device,
            "batch_size": 1,
            "note": "the framework the corpus source used (not ONNX Runtime)",
        },
        "provenance": f"Fitted by benchmarks/corpus_profiles.py on the corpus column {column!r}: {SOURCE}. Networks "
        "featurized as the reference code runs them (every edge computed; `none` multiplies by zero).",
        "model": model.to_dict(),
        "validation": {**error_metrics(predicted, measured), "data": data, "whole_graph_term": term_choice},
        "coverage": coverage.to_dict(),
        "interval": conformal_interval(
            measured / np.maximum(predicted, 1e-9), data=f"{data}: measured/predicted"
        ).to_dict(),
    }
    if prior is not None:
        profile["prior"] = prior.to_dict()
    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="latency corpus folder (default: %(default)s)"
    )
    args = parser.parse_args()
    csv_path = args.data.resolve() / "nasbench201_latency_ms.csv"
    if not csv_path.is_file():
        sys.exit(f"corpus_profiles: {repo_path(csv_path)}: not found (pass --data)")
    archs, columns, latency = read_corpus(csv_path)
    layers, fb_columns, fb_latency = read_corpus(args.data.resolve() / "fbnet_latency_ms.csv")
    x = np.vstack([nb201_features(archs), fbnet_features(layers)])
    assert x.shape[1] == len(COLUMNS)
    reference = load_profile("x86-cpu")
    folder = ROOT / "hardware_profiles" / "corpus"
    folder.mkdir(exist_ok=True)
    for column in DEVICES:
        y = np.concatenate([latency[:, columns.index(column)], fb_latency[:, fb_columns.index(column)]])
        profile = profile_of(column, x, y, reference)
        path = write_profile(profile, folder / f"{profile['name']}.yaml")
        v = profile["validation"]
        print(
            f"{repo_path(path)}: MAPE {v['mape']:.1f}%, tau {v['kendall_tau']:.3f}, interval "
            f"{profile['interval']['low']:.3f}-{profile['interval']['high']:.3f}"
        )


if __name__ == "__main__":
    main()
