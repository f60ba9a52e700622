"""Benchmark (issue 4): how much of the proxy accuracy is the architecture, and how much the training seed.

    python benchmarks/proxy_noise.py [--seeds 1,2]   # after benchmarks/long_training.py

Retrains every architecture of the proxy-fidelity benchmark with the search's proxy recipe, the same data
and validation split, and other *training* seeds (initialisation, batch order, augmentation). A search sees
one seed per architecture, so what the seed changes is noise that no sampler can learn from:
- between/within standard deviation and the share of variance that belongs to the architecture
  (intraclass correlation, one-way random effects);
- Kendall tau of the proxy with itself under another seed (an upper bound for how well any predictor of
  the proxy can rank), and of the mean over seeds with the long-training accuracy.
Trainings are cached in results/benchmark-runs/long_training/. Writes results/benchmarks/proxy_noise.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_training import CACHE, ROOT, fidelity_architectures, train_cached  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2", help="extra training seeds (the run's own seed is the proxy's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    from nas._io import cpu_model, read_json, write_json_atomic
    from nas.evaluate import TrainingRecipe
    from nas.latency._model import kendall_tau

    fidelity, run_config, archs = fidelity_architectures()
    recipe = TrainingRecipe(**fidelity["proxy_recipe"])
    split_seed = run_config["seed"]
    points = fidelity["points"]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if split_seed in seeds or not seeds:
        print(f"error: --seeds: give training seeds other than the run's own ({split_seed})", file=sys.stderr)
        return 2
    jobs = {(p["name"], s): CACHE / f"noise-e{recipe.epochs}-n{recipe.train_subset}-split{split_seed}-train{s}-"
                                    f"{archs[p['name']].hash}.json" for p in points for s in seeds}
    train_cached({path: (archs[name].to_dict(), recipe.to_dict(), s) for (name, s), path in jobs.items()},
                 run_config, args.workers)
    accuracy = {p["name"]: [p["proxy_accuracy"]] + [read_json(jobs[(p["name"], s)], "cached training")["accuracy"]
                                                    for s in seeds] for p in points}
    report = {"benchmark": "proxy_noise", "command": "python benchmarks/proxy_noise.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu_model(), "architectures": len(points),
              "recipe": recipe.to_dict(), "validation": f"the run's own split (seed {split_seed})",
              "training_seeds": [split_seed] + seeds, **variance_shares(list(accuracy.values()))}
    runs = list(zip(*accuracy.values()))  # one accuracy per architecture, per seed
    report["seed_vs_seed_kendall_tau"] = round(statistics.mean(kendall_tau(a, b) for a, b in itertools.combinations(runs, 2)), 3)
    longs = [p["long_accuracy"] for p in points]
    report["kendall_tau_with_long_training"] = {
        "one_seed_mean": round(statistics.mean(kendall_tau(run, longs) for run in runs), 3),
        "mean_of_seeds": round(kendall_tau([statistics.mean(a) for a in accuracy.values()], longs), 3)}
    report["accuracies"] = {name: [round(a, 4) for a in acc] for name, acc in accuracy.items()}
    write_json_atomic(ROOT / "results" / "benchmarks" / "proxy_noise.json", report)
    print({k: v for k, v in report.items() if k != "accuracies"})
    return 0


def variance_shares(groups: list[list[float]]) -> dict:
    """One-way random-effects ANOVA over architectures (groups of equal size k, one value per seed)."""
    k, n = len(groups[0]), len(groups)
    grand = statistics.mean(x for g in groups for x in g)
    within = sum((x - statistics.mean(g)) ** 2 for g in groups for x in g) / (n * (k - 1))
    between_ms = k * sum((statistics.mean(g) - grand) ** 2 for g in groups) / (n - 1)
    between = max((between_ms - within) / k, 0.0)
    return {"within_architecture_sd": round(within ** 0.5, 4), "between_architecture_sd": round(between ** 0.5, 4),
            "architecture_share_of_variance": round(between / (between + within), 3)}


if __name__ == "__main__":
    sys.exit(main())
