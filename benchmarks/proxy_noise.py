"""Benchmark: how much of the proxy accuracy is the architecture, and how much the training seed.

    python benchmarks/proxy_noise.py [--seeds 1,2] [--recipe lr=0.05]   # after benchmarks/long_training.py

Retrains every architecture of the proxy-fidelity benchmark with the search's proxy recipe, the same data
and validation split, and other *training* seeds (initialisation, batch order, augmentation). A search sees
one seed per architecture, so what the seed changes is noise that no sampler can learn from:
- between/within standard deviation and the share of variance that belongs to the architecture
  (intraclass correlation, one-way random effects);
- Kendall tau of the proxy with itself under another seed (an upper bound for how well any predictor of
  the proxy can rank), and of the mean over seeds with the long-training accuracy.
With --recipe, the same for a variant of the proxy recipe (proxy_recipe.py's syntax), compared with the
search's recipe seed by seed: one seed's Kendall tau is a noisy verdict on a recipe.
Trainings are cached in results/benchmark-runs/long_training/. Writes results/benchmarks/proxy_noise.json
(or proxy_noise_<variant>.json).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, read_json, run_main, write_result  # noqa: E402
from benchmarks.long_training import CACHE, fidelity_architectures, train_cached  # noqa: E402
from benchmarks.proxy_recipe import recipe_slug, variant_cache, variant_fields  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=900,  # estimate: 28 architectures x 2 seeds x ~30 s, 2 workers
    needs=("long_training",),
    data=("results/benchmark-runs/hand_design", "../shared/data/cifar10/train"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", default="1,2", help="extra training seeds (the run's own seed is the proxy's)"
    )
    parser.add_argument(
        "--recipe",
        default="",
        help="a variant of the proxy recipe, as proxy_recipe.py names "
        "them (e.g. lr=0.05), measured instead of the search's own and compared with it seed by seed",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    started = time.perf_counter()
    from nas.evaluate import TrainingRecipe

    fidelity, run_config, archs = fidelity_architectures()
    base = TrainingRecipe(**fidelity["proxy_recipe"])
    split_seed = run_config["seed"]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if split_seed in seeds or not seeds:
        print(f"error: --seeds: give training seeds other than the run's own ({split_seed})", file=sys.stderr)
        return 2
    try:
        recipe = replace(base, **variant_fields(args.recipe)) if args.recipe else base
    except ValueError as exc:
        print(f"error: --recipe {args.recipe}: {exc}", file=sys.stderr)
        return 2
    measure = dict(fidelity=fidelity, run_config=run_config, archs=archs, seeds=seeds, workers=args.workers)
    accuracy = seed_accuracies(recipe, variant=bool(args.recipe), **measure)
    report = {
        "architectures": len(archs),
        "recipe": recipe.to_dict(),
        "validation": f"the run's own split (seed {split_seed})",
        "training_seeds": [split_seed] + seeds,
        **noise_report(accuracy, fidelity["points"]),
    }
    name = "proxy_noise.json"
    if args.recipe:  # the same seeds with the search's recipe (cached by the plain run), seed by seed
        default = noise_report(seed_accuracies(base, variant=False, **measure), fidelity["points"])
        report["search_recipe"] = {
            k: default[k] for k in ("kendall_tau_with_long_training", "per_seed_kendall_tau")
        }
        report["per_seed_tau_difference"] = [
            round(a - b, 3) for a, b in zip(report["per_seed_kendall_tau"], default["per_seed_kendall_tau"])
        ]
        name = f"proxy_noise_{recipe_slug(recipe)}.json"
    write_result("proxy_noise", report, started=started, filename=name)
    print({k: v for k, v in report.items() if k != "accuracies"})
    return 0


def seed_accuracies(
    recipe, variant: bool, fidelity: dict, run_config: dict, archs: dict, seeds: list[int], workers: int
) -> dict[str, list[float]]:
    """Accuracy per architecture under `recipe`, one per training seed (the run's own first). The search's
    recipe under the run's seed is the proxy-fidelity benchmark's own result; a variant under it is
    proxy_recipe.py's cached training."""

    split_seed = run_config["seed"]
    points = fidelity["points"]
    prefix = f"noise-{recipe_slug(recipe)}" if variant else f"noise-e{recipe.epochs}-n{recipe.train_subset}"
    jobs = {
        (p["name"], s): CACHE / f"{prefix}-split{split_seed}-train{s}-{archs[p['name']].hash}.json"
        for p in points
        for s in seeds
    }
    if variant:
        jobs.update(
            {(p["name"], split_seed): variant_cache(recipe, split_seed, archs[p["name"]]) for p in points}
        )
    train_cached(
        {path: (archs[name].to_dict(), recipe.to_dict(), s) for (name, s), path in jobs.items()},
        run_config,
        workers,
    )
    got = {key: read_json(path, "cached training")["accuracy"] for key, path in jobs.items()}
    if not variant:
        got.update({(p["name"], split_seed): p["proxy_accuracy"] for p in points})
    return {p["name"]: [got[(p["name"], s)] for s in [split_seed] + seeds] for p in points}


def noise_report(accuracy: dict[str, list[float]], points: list[dict]) -> dict:
    from nas.latency import kendall_tau

    runs = list(zip(*accuracy.values()))  # one accuracy per architecture, per seed
    longs = [p["long_accuracy"] for p in points]
    per_seed = [round(kendall_tau(run, longs), 3) for run in runs]
    return {
        **variance_shares(list(accuracy.values())),
        "seed_vs_seed_kendall_tau": round(
            statistics.mean(kendall_tau(a, b) for a, b in itertools.combinations(runs, 2)), 3
        ),
        "kendall_tau_with_long_training": {
            "one_seed_mean": round(statistics.mean(per_seed), 3),
            "mean_of_seeds": round(kendall_tau([statistics.mean(a) for a in accuracy.values()], longs), 3),
        },
        "per_seed_kendall_tau": per_seed,
        "accuracies": {name: [round(a, 4) for a in acc] for name, acc in accuracy.items()},
    }


def variance_shares(groups: list[list[float]]) -> dict:
    """One-way random-effects ANOVA over architectures (groups of equal size k, one value per seed)."""
    k, n = len(groups[0]), len(groups)
    grand = statistics.mean(x for g in groups for x in g)
    within = sum((x - statistics.mean(g)) ** 2 for g in groups for x in g) / (n * (k - 1))
    between_ms = k * sum((statistics.mean(g) - grand) ** 2 for g in groups) / (n - 1)
    between = max((between_ms - within) / k, 0.0)
    return {
        "within_architecture_sd": round(within**0.5, 4),
        "between_architecture_sd": round(between**0.5, 4),
        "architecture_share_of_variance": round(between / (between + within), 3),
    }


if __name__ == "__main__":
    run_main(main)
