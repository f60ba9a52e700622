"""Benchmark: do training-free scores rank candidates like their trained proxy accuracy?

For every trained candidate of existing run directories (complete trials, duplicates skipped, an
architecture seen in several runs counted once), computes the zero-cost scores at initialization
(`nas.evaluate._zero_cost.zero_cost_scores`, batch 64, seed 0) and reports, per score, Kendall's tau-b
and Spearman's rho against the run's proxy accuracy (the run's ``clean_accuracy`` column where it
exists, else ``accuracy``), overall and within latency bands (tertiles of measured latency).

The reference is the **short proxy accuracy** of the search (4 epochs x 2,500 images by default),
not the accuracy of a long training: a good correlation here means "predicts the proxy", which is
what a pre-screen in front of the proxy needs, but not necessarily the final accuracy.

    python benchmarks/zero_cost_proxies.py RUN_DIR [RUN_DIR ...]   # writes results/benchmarks/zero_cost_proxies.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import optuna

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import RUNS, Benchmark, repo_path, run_main, write_result  # noqa: E402
from nas.data import load_dataset  # noqa: E402
from nas.evaluate import ZERO_COST_SCORES as ALL  # noqa: E402
from nas.evaluate import zero_cost_scores  # noqa: E402
from nas.latency import kendall_tau  # noqa: E402
from nas.records import Attr  # noqa: E402
from nas.space import Architecture  # noqa: E402

BENCHMARK = Benchmark(
    cost="cheap",
    seconds=30,  # estimate: scoring_seconds_total 14 s plus loading
    needs=("search_throughput", "robust_search", "production_validation"),
    data=("results/benchmark-runs/search_throughput",),
)
# The runs of other benchmarks, those that exist (production_validation's is a 16-trial search).
DEFAULT_RUNS = [RUNS / "search_throughput", RUNS / "robust_search", RUNS / "production_validation"]
MIN_BAND = 6  # fewer candidates per latency band than this: no within-band correlation


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank; -inf/inf are ordinary (extreme) values."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    rx, ry = average_ranks(x), average_ranks(y)
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def tau(x, y) -> float:
    return kendall_tau(average_ranks(x), average_ranks(y))  # on ranks: -inf scores compare fine


def null_tau_se(n: int) -> float:
    """Standard deviation of Kendall's tau under independence: |tau| > 2 se is roughly p < 0.05."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) if n > 1 else float("nan")


def read_run(run_dir: Path) -> list[dict]:
    """Complete, non-duplicate trials of a run (finished ones only: a run still in progress is fine)."""
    rows = {}
    if (run_dir / "trials.csv").exists():
        with open(run_dir / "trials.csv") as f:
            rows = {int(r["number"]): r for r in csv.DictReader(f)}
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{run_dir}/study.db")
    out = []
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE or t.user_attrs.get(Attr.DUPLICATE_OF) is not None:
            continue
        if rows.get(t.number, {}).get("duplicate_of"):
            continue
        # Robust runs: objective 0 mixes clean and corrupted accuracy; the clean one is the reference.
        column = "clean_accuracy" if t.user_attrs.get(Attr.CLEAN_ACCURACY) is not None else "accuracy"
        accuracy = (
            float(t.user_attrs[Attr.CLEAN_ACCURACY]) if column == "clean_accuracy" else float(t.values[0])
        )
        arch = t.user_attrs[Attr.ARCHITECTURE]
        arch = Architecture.from_dict(json.loads(arch) if isinstance(arch, str) else arch)
        out.append(
            {
                "run": repo_path(run_dir),
                "trial": t.number,
                "arch_hash": arch.hash,
                "arch": arch,
                "accuracy": accuracy,
                "accuracy_column": column,
                "latency_ms": float(t.values[1]),
            }
        )
    return out


def correlations(scores: dict[str, list[float]], accuracy: list[float]) -> dict:
    return {
        name: {"kendall_tau": tau(v, accuracy), "spearman": spearman(v, accuracy), "n": len(v)}
        for name, v in scores.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run directories (default: the benchmark runs that exist)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="the result file (default: results/benchmarks/)")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = (
        [Path(r) for r in args.runs] if args.runs else [r for r in DEFAULT_RUNS if (r / "study.db").exists()]
    )

    candidates, skipped, seen, configs = [], [], {}, {}
    for run in runs:
        if not (run / "study.db").exists():
            skipped.append({"run": repo_path(run), "reason": "no study.db"})
            continue
        config = json.loads((run / "config.json").read_text())
        configs[repo_path(run)] = {
            "space": config["search"]["space"],
            "dataset": config["search"]["dataset"],
            "epochs": config["recipe"]["epochs"],
            "train_subset": config["recipe"]["train_subset"],
        }
        for c in read_run(run):
            if c["arch_hash"] in seen:
                first = seen[c["arch_hash"]]
                skipped.append(
                    {
                        "run": c["run"],
                        "trial": c["trial"],
                        "reason": f"same architecture as {first['run']} trial {first['trial']}",
                        "accuracy": c["accuracy"],
                        "first_accuracy": first["accuracy"],
                    }
                )
                continue
            seen[c["arch_hash"]] = c
            candidates.append(c)
    datasets = {cfg["dataset"] for cfg in configs.values()}
    if len(datasets) != 1:
        print(f"runs use different datasets: {sorted(datasets)}", file=sys.stderr)
        return 2
    dataset = load_dataset(datasets.pop())

    start = time.perf_counter()
    for i, c in enumerate(candidates):
        c["scores"] = zero_cost_scores(
            c["arch"], dataset, num_classes=dataset.num_classes, batch_size=args.batch_size, seed=args.seed
        )
        print(
            f"[{i + 1}/{len(candidates)}] {c['arch_hash']} acc={c['accuracy']:.3f} "
            + " ".join(f"{n}={c['scores'][n]:.4g}" for n in ALL),
            flush=True,
        )
    scoring_seconds = time.perf_counter() - start

    accuracy = [c["accuracy"] for c in candidates]
    per_score = {n: [c["scores"][n] for c in candidates] for n in ALL}
    overall = correlations(per_score, accuracy)
    for n in ALL:
        overall[n]["mean_seconds_per_arch"] = float(
            np.mean([c["scores"][f"{n}_seconds"] for c in candidates])
        )
        overall[n]["non_finite"] = int(sum(not math.isfinite(v) for v in per_score[n]))

    latency = np.array([c["latency_ms"] for c in candidates])
    bands: dict = {}
    n = len(candidates)
    if n >= 3 * MIN_BAND:
        edges = np.quantile(latency, [1 / 3, 2 / 3])
        band_of = np.searchsorted(edges, latency, side="right")
        for b, label in enumerate(["fast", "middle", "slow"]):
            idx = np.flatnonzero(band_of == b)
            bands[label] = {
                "latency_ms": [float(latency[idx].min()), float(latency[idx].max())],
                "n": int(len(idx)),
                "null_tau_se": null_tau_se(len(idx)),
                "scores": correlations(
                    {s: [per_score[s][i] for i in idx] for s in ALL}, [accuracy[i] for i in idx]
                ),
            }
        for s in ALL:
            taus = [bands[b]["scores"][s]["kendall_tau"] for b in bands]
            overall[s]["mean_within_band_tau"] = float(np.nanmean(taus))
        sizes = ", ".join(str(bands[b]["n"]) for b in bands)
        band_note = f"latency tertiles, {sizes} candidates: small bands, wide uncertainty (see null_tau_se)"
    else:
        band_note = f"not computed: n={n} < {3 * MIN_BAND} (3 bands of at least {MIN_BAND})"

    report = {
        "torch_threads": 1,
        "reference": "proxy accuracy of the search itself (short training: see runs' epochs and train_subset), "
        "'clean_accuracy' for robust runs; NOT the accuracy after a long training",
        "runs": configs,
        "score_settings": {
            "batch_size": args.batch_size,
            "seed": args.seed,
            "synflow": "float64, |params|, input of ones (batch 1), BatchNorm in eval mode (as Tanaka et al.'s code)",
            "naswot": "train mode, ReLU/ReLU6/Hardswish outputs > 0 (Hardswish: sign of its input), log|det K|",
            "grad_norm": "global L2 norm of the cross-entropy gradient, train mode",
            "seconds": "per score and architecture, including building the model",
        },
        "n": n,
        "null_tau_se": null_tau_se(n),
        "accuracy_range": [float(min(accuracy)), float(max(accuracy))] if accuracy else None,
        "scoring_seconds_total": scoring_seconds,
        "correlation": overall,
        "latency_bands_note": band_note,
        "latency_bands": bands,
        "skipped": skipped,
        "candidates": [
            {
                "run": c["run"],
                "trial": c["trial"],
                "arch_hash": c["arch_hash"],
                "accuracy": c["accuracy"],
                "accuracy_column": c["accuracy_column"],
                "latency_ms": c["latency_ms"],
                **{k: (v if math.isfinite(v) else str(v)) for k, v in c["scores"].items()},
            }
            for c in candidates
        ],
    }
    for s in ALL:  # JSON has no nan/inf
        for d in [overall[s], *(bands[b]["scores"][s] for b in bands)]:
            for k, v in d.items():
                if isinstance(v, float) and not math.isfinite(v):
                    d[k] = None
    write_result("zero_cost_proxies", report, started=started, out=args.out)

    print(
        f"\n{n} candidates (null tau se {null_tau_se(n):.3f}); reference: proxy accuracy; bands: {band_note}"
    )
    print(f"{'score':<10} {'tau':>7} {'rho':>7} {'band tau':>9} {'s/arch':>8}")

    def fmt(v) -> str:
        return f"{v:7.3f}" if isinstance(v, float) else "    n/a"

    for s in ALL:
        o = overall[s]
        print(
            f"{s:<10} {fmt(o['kendall_tau'])} {fmt(o['spearman'])} {fmt(o.get('mean_within_band_tau'))}  "
            f"{o['mean_seconds_per_arch']:8.3f}"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
