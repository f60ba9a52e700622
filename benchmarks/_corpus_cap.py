"""How far the few-shot combination can go on the phones and CPUs: its cap, and what the ridge costs at k = 10.

The k = 10 target (mean Spearman >= 0.95 over the phone and CPU columns) is checked on
`nas.latency.fit_few_shot_predictions`. This measures what bounds it, per phone / CPU column, on 5,625
held-out networks (the split of `_corpus_pixel3.held_out_fit`; section 5 of docs/latency-corpus.md):

* `own_graph_model`: the device's own graph model fitted on the other 10,000 of its networks (the
  representation of the graph it ran, `graph_ran`): the cap of any per-node linear model;
* `combination`: the combination of the other devices' models (``c + sum_d a_d predict_d``, the few-shot
  model without shrinkage) fitted on those 10,000 networks: the cap of the few-shot method, reached
  only with thousands of measurements; `consensus`: every prior device rescaled to its mean and averaged
  (what the few-shot fit shrinks toward);
* `k10`: the 10 draws of 10 measured networks of `few_shot` (same seeds), the representation fixed to the
  device's, the ridge chosen three ways: by leave-one-out (the package's rule), by the one-standard-error
  rule on the same leave-one-out errors (the largest ridge within one standard error of the best, i.e.
  more shrinkage when the 10 networks cannot tell), and per draw the ridge with the best Spearman on the
  held-out networks (`oracle`: it looks at the test networks, an upper bound on any ridge rule, not a
  method). Spearman on every network but the 10.

Uses (or builds) the feature caches of benchmarks/latency_corpus.py. `--representations` as its:
the graphs each device may have run, `graph_ran` choosing among them on the 10,000 networks.

    .venv/bin/python -m benchmarks._corpus_cap [--representations eager,fold]

writes results/benchmark-runs/latency_corpus/few_shot_cap.json (few_shot_cap_eager_fold.json and the
like for other representations).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._corpus_fits import device_class, graph_ran, prior_predictions, spearman
from benchmarks._corpus_pixel3 import HOLDOUT, held_out_fit
from benchmarks._harness import run_main, write_result
from benchmarks.latency_corpus import (
    CACHE,
    DEFAULT_DATA,
    REPRESENTATIONS,
    read_corpus,
    representation_features,
    representation_names,
)

K = 10
DRAWS = 10


def one_standard_error_ridge(q: np.ndarray, y: np.ndarray, ridges) -> float:
    """The largest ridge whose leave-one-out mean squared relative error is within one standard error of
    the smallest."""
    from nas.latency import fit_few_shot_predictions

    errors = np.array(
        [((fit_few_shot_predictions(q, y, ridges=(r,)).loo_predictions - y) / y) ** 2 for r in ridges]
    )
    means = errors.mean(axis=1)
    best = int(np.argmin(means))
    tolerance = errors[best].std(ddof=1) / np.sqrt(len(y))
    return max(r for r, m in zip(ridges, means) if m <= means[best] + tolerance)


def ridge_rules(q: np.ndarray, y: np.ndarray, d: int) -> dict:
    """Mean / std Spearman over the k = 10 draws of `few_shot` for each way of choosing the ridge."""
    import inspect

    from nas.latency import fit_few_shot_predictions

    ridges = inspect.signature(fit_few_shot_predictions).parameters["ridges"].default  # the package's grid
    rows = {"leave_one_out": [], "one_standard_error": [], "oracle": []}
    for draw in range(DRAWS):
        order = np.random.default_rng([0, d, K, draw]).permutation(len(y))
        meas, rest = order[:K], order[K:]
        by_ridge = {
            r: spearman(fit_few_shot_predictions(q[meas], y[meas], ridges=(r,)).predict(q[rest]), y[rest])
            for r in ridges
        }
        rows["leave_one_out"].append(
            spearman(fit_few_shot_predictions(q[meas], y[meas]).predict(q[rest]), y[rest])
        )
        rows["one_standard_error"].append(by_ridge[one_standard_error_ridge(q[meas], y[meas], ridges)])
        rows["oracle"].append(max(by_ridge.values()))
    return {name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in rows.items()}


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--representations", default=",".join(REPRESENTATIONS), help="eager, fold, merge")
    args = parser.parse_args()
    names = list(representation_names(args.representations))
    started = time.perf_counter()
    archs, devices, latency = read_corpus(DEFAULT_DATA / "nasbench201_latency_ms.csv")
    reps = {name: representation_features(archs, name) for name in names}
    predictions, ran = prior_predictions(reps, latency)
    order = np.random.default_rng(0).permutation(len(archs))  # the split of `held_out_fit`
    test, rest = order[:HOLDOUT], order[HOLDOUT:]
    per_device = {}
    for d, name in enumerate(devices):
        if device_class(name) not in ("phone", "cpu"):
            continue
        y = latency[:, d]
        prior = [o for o in range(len(devices)) if o != d]
        rep = graph_ran({r: reps[r][rest] for r in reps}, y[rest])[0]
        q = predictions[rep][:, prior]
        consensus = (q / q[rest].mean(axis=0)).mean(axis=1)
        per_device[name] = {
            "representation": rep,
            "own_graph_model": held_out_fit(reps[rep], y)["spearman"],
            "combination": held_out_fit(q, y)["spearman"],
            "consensus": spearman(consensus[test], y[test]),
            "k10": ridge_rules(q, y, d),
        }
        entry = per_device[name]
        print(
            f"{name:15s} {rep:5s} own {entry['own_graph_model']:.3f}  combination {entry['combination']:.3f}  "
            f"consensus {entry['consensus']:.3f}  k=10: "
            + "  ".join(f"{k} {v['mean']:.3f} ({v['std']:.3f})" for k, v in entry["k10"].items()),
            flush=True,
        )
    means = {
        key: float(np.mean([e[key] for e in per_device.values()]))
        for key in ("own_graph_model", "combination", "consensus")
    }
    means |= {
        f"k10_{rule}": float(np.mean([e["k10"][rule]["mean"] for e in per_device.values()]))
        for rule in ("leave_one_out", "one_standard_error", "oracle")
    }
    report = {
        "holdout": HOLDOUT,
        "k": K,
        "draws": DRAWS,
        "representations": names,
        "per_device": per_device,
        "mean_phone_cpu": means,
    }
    suffix = "" if tuple(names) == tuple(REPRESENTATIONS) else "_" + "_".join(names)
    write_result("few_shot_cap", report, started=started, out=CACHE / f"few_shot_cap{suffix}.json")
    print("mean over phones and CPUs:", {k: round(v, 4) for k, v in means.items()})
    return 0


if __name__ == "__main__":
    run_main(main)
