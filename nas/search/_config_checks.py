"""The validation of a `SearchConfig`: one line naming the setting for every bad value."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from nas._checks import check_integer, check_number
from nas.errors import NasError
from nas.plugins import load_plugins
from nas.search._samplers import SAMPLERS, is_sampler_instance
from nas.search._selection import SELECTORS
from nas.search._tracking import parse_tracker

if TYPE_CHECKING:
    from nas.search._config import SearchConfig

LATENCY_MODES = ("auto", "measured", "predicted", "device", "hybrid")
TRAINING_DEVICES = ("auto", "cpu", "cuda")  # nas.evaluate.DEVICES, without importing torch here
MAX_PRESCREEN = 64  # --prescreen 100000 asked hundreds of thousands of trials before training one
AUTO_BUDGET = "auto"  # latency_budget_ms derived from the profile's model and the space (_default_budget)


def check_config(config: SearchConfig) -> None:
    """Refuse the first bad setting; normalise sequences to tuples (the config is frozen and hashable)."""
    _positive_int("trials", config.trials)
    _positive_int("epochs", config.epochs)
    _positive_int("population", config.population, minimum=2)
    for name in ("train_subset", "workers", "max_params", "max_macs"):
        if getattr(config, name) is not None:
            _positive_int(name, getattr(config, name))
    if config.max_energy_mj is not None:
        _positive_number("max_energy_mj", config.max_energy_mj, "a positive finite number of millijoules")
    for name in ("max_peak_memory_kb", "max_weights_kb"):
        if getattr(config, name) is not None:
            _positive_number(name, getattr(config, name), "a positive finite number of KiB")
    if config.latency_budget_ms not in (None, AUTO_BUDGET):
        _positive_number(
            "latency_budget_ms",
            config.latency_budget_ms,
            "a positive finite number of milliseconds",
            " (or 'auto': derived from the profile; none: no budget)",
        )
    object.__setattr__(config, "budgets", canonical_budgets(config.budgets))
    _positive_number("device_timeout", config.device_timeout, "a positive number of seconds")
    if config.robust_weight is not None and not (
        isinstance(config.robust_weight, (int, float)) and 0 <= config.robust_weight <= 1
    ):
        raise NasError(f"robust_weight: must be a number in [0, 1], got {config.robust_weight!r}")
    if isinstance(config.exit_max_drop, bool) or not (
        isinstance(config.exit_max_drop, (int, float)) and 0 <= config.exit_max_drop <= 100
    ):
        raise NasError(
            f"exit_max_drop: must be a number of accuracy points in [0, 100], got {config.exit_max_drop!r}"
        )
    _check_prescreen_and_stopping(config)
    SELECTORS.check(config.prescreen_score, "prescreen_score")
    _check_training_device(config)
    if config.latency not in LATENCY_MODES:
        raise NasError(f"latency: unknown mode {config.latency!r} (choose from {', '.join(LATENCY_MODES)})")
    _check_extensions(config)
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2**32:
        raise NasError(
            f"seed: must be an integer from 0 to 2**32 - 1 (what the samplers accept), got {config.seed!r}"
        )


def _check_prescreen_and_stopping(config: SearchConfig) -> None:
    _positive_int("prescreen", config.prescreen)
    if config.prescreen > MAX_PRESCREEN:  # each sampled candidate is a study trial plus its costs and latency
        raise NasError(
            f"prescreen: at most {MAX_PRESCREEN} candidates sampled per trained one (each costs a "
            f"study trial, its costs and latency before any training), got {config.prescreen}"
        )
    _positive_int("stop_dominated_by", config.stop_dominated_by)
    margin = config.stop_margin
    if margin is not None and not (
        isinstance(margin, (int, float)) and not isinstance(margin, bool) and 0 <= margin < 1
    ):
        raise NasError(f"stop_margin: must be an accuracy difference in [0, 1), got {margin!r}")
    object.__setattr__(config, "rungs", tuple(config.rungs))
    for rung in config.rungs:
        if isinstance(rung, bool) or not isinstance(rung, int) or not 0 < rung < config.epochs:
            raise NasError(
                f"rungs: each rung is a number of epochs below --epochs ({config.epochs}), got {rung!r}"
            )
    if list(config.rungs) != sorted(set(config.rungs)):
        raise NasError(f"rungs: must increase, got {list(config.rungs)}")


def _check_training_device(config: SearchConfig) -> None:
    if config.device not in TRAINING_DEVICES:
        raise NasError(
            f"device: unknown device {config.device!r} (choose from {', '.join(TRAINING_DEVICES)})"
        )
    share = config.gpus_per_trial
    if share is not None and (
        isinstance(share, bool)
        or not isinstance(share, (int, float))
        or not (math.isfinite(share) and share >= 0)
        or (share > 1 and share != int(share))
    ):
        raise NasError(
            f"gpus_per_trial: a share of one GPU in [0, 1] or a whole number of GPUs, got {share!r}"
        )
    if share and config.device == "cpu":
        raise NasError(f"gpus_per_trial: {share:g} GPU per training, but --device cpu trains on the CPU")


def _check_extensions(config: SearchConfig) -> None:
    """The sampler (a plugin may register it), the plugins and the trackers."""
    if not is_sampler_instance(config.sampler):
        if config.sampler not in SAMPLERS.names() and config.plugins:
            load_plugins(config.plugins)
        SAMPLERS.check(config.sampler, "sampler")
    if isinstance(config.plugins, str):
        raise NasError(f"plugins: a list of module names, got the string {config.plugins!r}")
    object.__setattr__(config, "plugins", tuple(config.plugins))
    for plugin in config.plugins:
        if not isinstance(plugin, str) or not plugin.strip():
            raise NasError(f"plugins: each is a module name or a path to a .py file, got {plugin!r}")
    if isinstance(config.track, str):
        raise NasError(
            f"track: a list of trackers such as mlflow[:TRACKING_URI], got the string {config.track!r}"
        )
    object.__setattr__(config, "track", tuple(config.track))
    for tracker in config.track:
        parse_tracker(tracker)


def _positive_number(name: str, value: Any, what: str, hint: str = "") -> None:
    check_number(name, value, lambda v: v > 0, what, hint, types=(int, float))  # into config.json


def canonical_budgets(budgets: Any) -> tuple[str, ...]:
    """--budget as `PROFILE=MS` strings sorted by profile, one spelling per budget (a run's identity compares
    them), from a mapping or from `PROFILE=MS` strings; malformed, non-positive or repeated ones refused."""
    if isinstance(budgets, str):
        raise NasError(f"budgets: a list of PROFILE=MS or a mapping, got the string {budgets!r}")
    if isinstance(budgets, Mapping):
        pairs = [(name, _budget_ms(name, ms)) for name, ms in budgets.items()]
    else:
        pairs = [split_budget(budget) for budget in budgets]
    names = [name for name, _ in pairs]
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise NasError(f"budgets: a profile name or path is required, got {name!r}")
        if names.count(name) > 1:
            raise NasError(f"budgets: profile {name!r} is given more than one budget")
    return tuple(f"{name}={ms!r}" for name, ms in sorted(pairs))


def split_budget(budget: Any) -> tuple[str, float]:
    if not isinstance(budget, str) or "=" not in budget:
        raise NasError(f"budgets: expected PROFILE=MS (e.g. jetson-tx2=8), got {budget!r}")
    name, _, ms = budget.rpartition("=")
    try:
        value = float(ms)
    except ValueError:
        raise NasError(f"budgets: {budget!r}: MS must be a number of milliseconds, got {ms!r}") from None
    return name, _budget_ms(name, value)


def _budget_ms(name: Any, ms: Any) -> float:
    if isinstance(ms, bool) or not (isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0):
        raise NasError(f"budgets: {name}: must be a positive finite number of milliseconds, got {ms!r}")
    return float(ms)


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    check_integer(name, value, minimum, types=int)  # into config.json
