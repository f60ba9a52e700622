"""Would a gradient-boosted prior lift the few-shot combination on the phones and CPUs? It does not.

The few-shot model (`nas.latency.fit_few_shot_predictions`) combines the other devices' predictions;
in the package those are per-node linear models. This puts, for each phone / CPU column, three priors
side by side under one protocol, each prior device fitted on the same 10,000 networks (the split of
`_corpus_pixel3.held_out_fit`) and nothing evaluated on a network a prior saw:

* `linear`: each prior device's graph model on the `eager` features (the relative-error NNLS with the
  whole-graph term where it fits better, as `graph_ran` chooses it);
* `gbm`: LightGBM on log latency over the same features (`_corpus_fits.lightgbm_predictions`, as the
  noise floor fits it);
* `gbm_onehot`: LightGBM over the features and the one-hot cell encoding (the edges' positions, which
  the features do not hold).

For the held-out column: its own model of each kind fitted on the 10,000 (the cap of each form), then
10 draws of 10 of those networks measured (random), the few-shot combination fitted on them, Spearman
and MAPE on the 5,625 networks no prior saw. Prior devices: every column of other hardware.

    .venv/bin/python -m benchmarks._corpus_gbm_prior [--devices gold_6226,pixel2]

writes results/benchmark-runs/latency_corpus/gbm_prior.json (needs the [bench] extra: lightgbm).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._corpus_fits import (
    device_class,
    few_shot,
    graph_ran,
    hardware,
    lightgbm_predictions,
    spearman,
)
from benchmarks._corpus_pixel3 import HOLDOUT
from benchmarks._harness import run_main, write_result
from benchmarks.latency_corpus import CACHE, DEFAULT_DATA, nb201_onehot, read_corpus, representation_features

K = 10
DRAWS = 10


def linear_predictions(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The graph model `graph_ran` fits (on the `train` rows), for every row."""
    return graph_ran({"eager": x[train]}, y[train])[1].predict_rows(x)


def k10(predictions: np.ndarray, latency: np.ndarray, devices: list[str], d: int, train, test) -> dict:
    """Column d from 10 random training networks, every column of other hardware as the prior (`predictions`:
    one prior kind's, networks x columns), ranked on the test networks: `_corpus_fits.few_shot` on that split."""
    prior = [o for o in range(len(devices)) if hardware(devices[o]) != hardware(devices[d])]
    return few_shot(
        {"eager": predictions}, latency, devices, d, K, DRAWS, False, prior=prior, pool=train, query=test
    )


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--devices", default="", help="comma-separated columns (default: every phone and CPU)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    archs, devices, latency = read_corpus(DEFAULT_DATA / "nasbench201_latency_ms.csv")
    x = representation_features(archs, "eager")
    inputs = {"linear": x, "gbm": x, "gbm_onehot": np.hstack([nb201_onehot(archs), x])}
    order = np.random.default_rng(0).permutation(len(archs))  # the split of `held_out_fit`
    test, train = order[:HOLDOUT], order[HOLDOUT:]
    predict = {"linear": linear_predictions, "gbm": lightgbm_predictions, "gbm_onehot": lightgbm_predictions}
    predictions = {
        kind: np.stack([fit(inputs[kind], latency[:, d], train) for d in range(len(devices))], axis=1)
        for kind, fit in predict.items()
    }
    chosen = [name for name in args.devices.split(",") if name] or [
        name for name in devices if device_class(name) in ("phone", "cpu")
    ]
    per_device = {}
    for name in chosen:
        d = devices.index(name)
        y = latency[:, d]
        per_device[name] = {
            kind: {
                "own_model_spearman": spearman(predictions[kind][test, d], y[test]),
                "k10": k10(predictions[kind], latency, devices, d, train, test),
            }
            for kind in predict
        }
        print(
            f"{name:15s} "
            + "  ".join(
                f"{kind}: own {e['own_model_spearman']:.4f} k=10 {e['k10']['spearman']['mean']:.4f}"
                for kind, e in per_device[name].items()
            ),
            flush=True,
        )
    means = {
        kind: float(np.mean([e[kind]["k10"]["spearman"]["mean"] for e in per_device.values()]))
        for kind in predict
    }
    report = {
        "holdout": HOLDOUT,
        "k": K,
        "draws": DRAWS,
        "per_device": per_device,
        "mean_k10_spearman": means,
    }
    write_result("gbm_prior", report, started=started, out=CACHE / "gbm_prior.json")
    print("mean k=10 Spearman:", {k: round(v, 4) for k, v in means.items()})
    return 0


if __name__ == "__main__":
    run_main(main)
