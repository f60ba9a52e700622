"""Few-shot latency on HELP's own protocol: the three devices HELP reports, measured the way HELP measured.

HELP's Table 3 (Lee et al., NeurIPS 2021; its README: titan_rtx_256 0.987, gold_6226 0.989, pixel2 0.802
with 10 samples of the device) is Spearman's rank correlation under a protocol its public code fixes
(repository HayeonLee/HELP, `loader.py`, `help.py` and the defaults of `parser.py` for its meta-test
command):

* devices: the meta-learner trains on 9 (1080ti_1/32/256, silver_4114, silver_4210r, samsung_a50, pixel3,
  essential_ph_1, samsung_s7); 4 more (titanx_1/32/256, gold_6240) choose its checkpoint, scored on their
  query networks; it is tested on titan_rtx_256, gold_6226 and pixel2 (and three columns the corpus does
  not hold: two simulators and a Raspberry Pi 4);
* each device's pool: NAS-Bench-201 networks 0-899 (`num_meta_train_sample`) without the 10% fastest and
  the 10% slowest on that device (`remove_outlier`), 720 networks; the meta-learner learns from the
  training devices' pools;
* the 10 fine-tuning networks are drawn at random from the test device's pool (`num_samples`);
* the query is networks 900-1899 (`num_query`) without the 10% fastest and slowest on the device,
  800 networks, and the metric is Spearman between predicted and measured latency on them;
* besides the 10, HELP's hardware embedding reads the test device's latencies of a fixed set of reference
  networks (`hardware_embedding_index.pt`, `hw_embed_dim` 10).

Here, the same split: the held-out device's 10 networks come from its pool, drawn at random (HELP's
draw) or chosen as `nas profile bundle --few-shot` chooses them from the same pool (the package's); the
fit is `nas.latency.fit_few_shot_predictions` with the graph chosen on the 10 (`_corpus_fits.few_shot`);
Spearman on the 800 query networks; ten draws each, where HELP reports one run; no reference networks,
so 10 measurements in all. Three priors (`PRIORS`), each device's graph model (`graph_ran`):

* `help_training`: HELP's 9 training devices, each fitted on its pool only (what HELP learned from);
* `help_training_and_validation`: its 13, each fitted on its pool only (HELP also saw the 4);
* `every_other_column`: the 23 other corpus columns, each fitted on all its networks, the prior of
  `benchmarks/latency_corpus.py`: with it, what separates the two benchmarks is only which networks
  are measured and ranked.

HELP cuts its outliers with numpy's default (unstable) argsort of float32 latencies, here a stable sort of
float64 ones: on pixel2's whole-millisecond column a few tied networks at the two cuts may differ.

    python benchmarks/help_protocol.py

writes results/benchmarks/help_protocol.json. `benchmarks/latency_corpus.py` measures the issue's own
protocol (every other column as prior, every unmeasured network ranked).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._corpus_fits import few_shot, prior_predictions, read_corpus  # noqa: E402
from benchmarks._harness import Benchmark, BenchmarkError, repo_path, run_main, write_result  # noqa: E402
from benchmarks.latency_corpus import (  # noqa: E402
    DEFAULT_DATA,
    HELP_REFERENCE,
    REPRESENTATIONS,
    representation_features,
)

BENCHMARK = Benchmark(
    cost="cheap",
    seconds=132,  # help_protocol.json (2026-12-03)
    data=("../shared/data/latency_corpus",),
)

HELP_TRAINING = (  # the devices HELP's meta-learner trains on
    "1080ti_1",
    "1080ti_32",
    "1080ti_256",
    "silver_4114",
    "silver_4210r",
    "samsung_a50",
    "pixel3",
    "essential_ph_1",
    "samsung_s7",
)
HELP_VALIDATION = ("titanx_1", "titanx_32", "titanx_256", "gold_6240")  # choose HELP's checkpoint
PRIORS = ("help_training", "help_training_and_validation", "every_other_column")
# the 10 measured networks: drawn at random (HELP's draw), or chosen as `nas profile bundle --few-shot` does
DRAW_KINDS = ("random", "designed")
POOL = (0, 900)  # the networks each device's pool is cut from
QUERY = (900, 1900)  # the networks the query is cut from
TRIM = 0.1  # the share cut off at each end of a device's latencies
K = 10


def without_outliers(indices: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`indices` without the `TRIM` fastest and slowest by y, as HELP's `remove_outlier` cuts them."""
    order = indices[np.argsort(y[indices], kind="stable")]
    return order[int(len(order) * TRIM) : int(len(order) * (1 - TRIM))]


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the corpus folder")
    parser.add_argument("--draws", type=int, default=10, help="draws of the 10 measured networks")
    args = parser.parse_args()
    started = time.perf_counter()
    path = args.data / "nasbench201_latency_ms.csv"
    if not path.is_file():
        raise BenchmarkError(f"{repo_path(path)}: not found (the latency corpus; see docs/latency-corpus.md)")
    archs, devices, latency = read_corpus(path)
    missing = [n for n in (*HELP_TRAINING, *HELP_VALIDATION, *HELP_REFERENCE) if n not in devices]
    if missing:
        raise BenchmarkError(f"{repo_path(path)}: no column {', '.join(missing)}")
    reps = {name: representation_features(archs, name) for name in REPRESENTATIONS}
    pools = [without_outliers(np.arange(*POOL), latency[:, d]) for d in range(len(devices))]
    on_pools = prior_predictions(reps, latency, fit_rows=pools)
    on_all = prior_predictions(reps, latency)
    per_device = {}
    for name, help_value in HELP_REFERENCE.items():
        d = devices.index(name)
        query = without_outliers(np.arange(*QUERY), latency[:, d])
        columns = {
            "help_training": [devices.index(n) for n in HELP_TRAINING],
            "help_training_and_validation": [devices.index(n) for n in (*HELP_TRAINING, *HELP_VALIDATION)],
            "every_other_column": [o for o in range(len(devices)) if o != d],
        }
        entry = {"help": help_value, "pool": len(pools[d]), "query": len(query)}
        for prior_name in PRIORS:
            predictions, ran = on_all if prior_name == "every_other_column" else on_pools
            runs = {}
            for draw_kind in DRAW_KINDS:
                runs[draw_kind] = few_shot(
                    predictions,
                    latency,
                    devices,
                    d,
                    K,
                    args.draws,
                    False,
                    ran=ran,
                    design_pool=len(pools[d]) if draw_kind == "designed" else 0,
                    prior=columns[prior_name],
                    pool=pools[d],
                    query=query,
                )
            runs["met"] = {kind: runs[kind]["spearman"]["mean"] >= help_value for kind in DRAW_KINDS}
            entry[prior_name] = runs
            print(
                f"{name:14s} {prior_name:29s} HELP {help_value:.3f}  "
                + "  ".join(
                    f"{kind} {runs[kind]['spearman']['mean']:.4f} (min {runs[kind]['spearman']['min']:.4f})"
                    for kind in DRAW_KINDS
                ),
                flush=True,
            )
        per_device[name] = entry
    report = {
        "data": repo_path(args.data),
        "protocol": {
            "source": "HayeonLee/HELP loader.py, help.py, parser.py (meta-test defaults)",
            "priors": {
                "help_training": list(HELP_TRAINING),
                "help_training_and_validation": [*HELP_TRAINING, *HELP_VALIDATION],
                "every_other_column": "the 23 other corpus columns",
            },
            "prior_fitted_on": "each prior device's pool (HELP's priors); all its networks (every_other_column)",
            "pool": f"networks {POOL[0]}-{POOL[1] - 1} without the {TRIM:.0%} fastest and slowest per device",
            "query": f"networks {QUERY[0]}-{QUERY[1] - 1} without the {TRIM:.0%} fastest and slowest per device",
            "k": K,
            "draws": args.draws,
            "graphs": list(REPRESENTATIONS),
        },
        "per_device": per_device,
        "all_met": {
            prior_name: {
                kind: all(e[prior_name]["met"][kind] for e in per_device.values()) for kind in DRAW_KINDS
            }
            for prior_name in PRIORS
        },
    }
    write_result("help_protocol", report, started=started)
    return 0


if __name__ == "__main__":
    run_main(main)
