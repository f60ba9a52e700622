"""Benchmark: choosing the proxy recipe by measurement.

    python benchmarks/proxy_recipe.py [--variants epochs=2 epochs=8 ...]   # after benchmarks/long_training.py

For every architecture of the proxy-fidelity benchmark (found, baselines, random), trains each variant
of the search's proxy recipe (the run's recipe with the given fields changed) on the same data and
validation split, and reports its Kendall tau against the long-training accuracy and its training
seconds. The default recipe's numbers come from the proxy-fidelity benchmark itself. Trainings are
cached in results/benchmark-runs/long_training/. Writes results/benchmarks/proxy_recipe.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, read_json, run_main, write_result  # noqa: E402
from benchmarks.long_training import CACHE, fidelity_architectures, train_cached  # noqa: E402

BENCHMARK = Benchmark(
    cost="full",
    seconds=2700,  # proxy_recipe.json: mean_train_seconds x 28 architectures, 2 workers
    needs=("long_training",),
    data=("results/benchmark-runs/hand_design", "../shared/data/cifar10/train"),
)


def parse_variant(text: str) -> dict:
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key] = (
            None
            if value == "none"
            else (
                float(value)
                if "." in value
                else (value == "true")
                if value in ("true", "false")
                else int(value)
            )
        )
    return out


def variant_fields(text: str) -> dict:
    """The recipe fields a variant changes; ValueError for a field the cache's file names cannot tell apart."""
    changed = parse_variant(text)
    if set(changed) - _SLUGGED:
        raise ValueError(f"only {', '.join(sorted(_SLUGGED))} can vary")
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["epochs=2", "epochs=8"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    started = time.perf_counter()
    from nas.evaluate import TrainingRecipe
    from nas.latency import kendall_tau

    fidelity, run_config, archs = fidelity_architectures()
    base = TrainingRecipe(**fidelity["proxy_recipe"])
    points = fidelity["points"]
    seed = run_config["seed"]

    def cost(r):  # training images seen, relative to the default recipe
        return round(r.epochs * (r.train_subset or 1) / (base.epochs * (base.train_subset or 1)), 2)

    results = {
        "default": {"recipe": base.to_dict(), "kendall_tau": fidelity["kendall_tau"], "relative_cost": 1.0}
    }
    for text in args.variants:
        try:
            recipe = replace(base, **variant_fields(text))
        except ValueError as exc:
            print(f"error: --variants {text}: {exc}", file=sys.stderr)
            return 2
        jobs = {p["name"]: variant_cache(recipe, seed, archs[p["name"]]) for p in points}
        train_cached(
            {path: (archs[name].to_dict(), recipe.to_dict(), seed) for name, path in jobs.items()},
            run_config,
            args.workers,
        )
        got = {name: read_json(path, "cached training") for name, path in jobs.items()}
        tau = kendall_tau([got[p["name"]]["accuracy"] for p in points], [p["long_accuracy"] for p in points])
        results[text] = {
            "recipe": recipe.to_dict(),
            "kendall_tau": round(tau, 3),
            "relative_cost": cost(recipe),
            "mean_train_seconds": round(sum(g["train_seconds"] for g in got.values()) / len(got), 1),
        }
        print(text, results[text]["kendall_tau"], results[text]["mean_train_seconds"], flush=True)
    report = {
        "architectures": len(points),
        "reference": f"accuracy after {fidelity['long_recipe']['epochs']} epochs (benchmarks/long_training.py)",
        "variants": results,
    }
    write_result("proxy_recipe", report, started=started)
    return 0


_SLUGGED = {"epochs", "train_subset", "label_smoothing", "augment", "lr", "batch_size", "warmup_epochs"}


def variant_cache(recipe, seed: int, arch) -> Path:
    """Where the training of `arch` with a recipe variant and training seed is cached."""
    return CACHE / f"variant-{recipe_slug(recipe)}-seed{seed}-{arch.hash}.json"


def recipe_slug(recipe) -> str:
    """The recipe's cache name; batch size and warm-up appear only when they differ from the defaults."""
    from nas.evaluate import TrainingRecipe

    default = TrainingRecipe()
    slug = (
        f"e{recipe.epochs}-n{recipe.train_subset}-ls{recipe.label_smoothing:g}"
        f"-aug{int(recipe.augment)}-lr{recipe.lr:g}"
    )
    if recipe.batch_size != default.batch_size:
        slug += f"-b{recipe.batch_size}"
    if recipe.warmup_epochs != default.warmup_epochs:
        slug += f"-w{recipe.warmup_epochs:g}"
    return slug


if __name__ == "__main__":
    run_main(main)
