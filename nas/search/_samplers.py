"""The Optuna samplers a search can name: one declaration each. Optuna is imported only to build one.

A factory takes the population (NSGA-II's population, TPE's start-up trials) and the seed. A search may
also be given any `optuna.samplers.BaseSampler` instance instead of a name.
"""

from __future__ import annotations

from typing import Any

from nas.search._registry import Registry

SAMPLERS: Registry[Any] = Registry("sampler")


@SAMPLERS.register("nsga2")
def nsga2(population: int, seed: int):
    """NSGA-II: a genetic algorithm over Pareto ranks."""
    import optuna

    return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)


@SAMPLERS.register("tpe")
def tpe(population: int, seed: int):
    """TPE, `population` random start-up trials first."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=population)


@SAMPLERS.register("random")
def random(population: int, seed: int):
    """Independent uniform proposals."""
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def is_sampler_instance(value: Any) -> bool:
    """An Optuna sampler object (checked without importing Optuna when it is not loaded: then it is none)."""
    import sys

    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(value, optuna.samplers.BaseSampler)


def sampler_name(value: Any) -> str:
    """How a run records its sampler: its registered name, or an instance's class name."""
    return value if isinstance(value, str) else type(value).__name__


def build_sampler(sampler: Any, population: int, seed: int):
    """The sampler to give the study: a registered name built with `population` and `seed`, an instance as it is."""
    return sampler if is_sampler_instance(sampler) else SAMPLERS.create(sampler, population, seed)
