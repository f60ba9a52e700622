"""The default latency budget (`--latency-budget-ms auto`): derived from the profile's latency model and the space.

Without a budget, EHVI pre-screening takes the slowest latency seen as its reference and favours the largest
networks (on `mobilenet` and `x86-cpu` up to 70 M MACs and 132 s of training each). The default cuts the
slowest fifth of the space instead: the 80th percentile of the profile's predicted latency over
`SAMPLES` architectures drawn uniformly from the space with a fixed seed, rounded to two significant
digits. It depends only on the space, the profile's model and the number of classes, so the same command
resolves to the same budget (a resume compares it) and the seeds of a study share it. On `mobilenet` and
`x86-cpu` it is 0.51 ms, the budget the search-efficiency benchmark measured (0.5 ms). A profile without
a latency model has no default budget; `none` asks for no budget.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nas.errors import NasError, first_line
from nas.latency import ArchitectureFeaturizer, HardwareProfile
from nas.search._config import AUTO_BUDGET, SearchConfig
from nas.space import SearchSpace

log = logging.getLogger(__name__)

QUANTILE = 0.8
SAMPLES = 256
SAMPLE_SEED = 0  # not the search's seed: every seed of a study gets the same budget


class _Draw:
    """A uniform draw of every choice (what `SearchSpace.sample` asks of an Optuna trial)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.rng.choice(list(choices))


def default_budget_ms(space: SearchSpace, profile: HardwareProfile, num_classes: int) -> float | None:
    """The 80th percentile of `profile`'s predicted latency over the space, two significant digits; None
    when the profile has no latency model. A space the model cannot price is a user error."""
    model = getattr(profile, "latency_model", None)
    if model is None:
        return None
    prior = getattr(profile, "prior", None)  # prices the kinds a remote device never measured
    key = json.dumps(
        [space.describe(), model.overhead_ms, model.weights, prior and prior.to_dict(), num_classes],
        sort_keys=True,
        default=str,
    )
    if key not in _computed:  # a process that searches the same space again (tests, benchmarks) pays once
        _computed[key] = _percentile_ms(space, profile, num_classes)
    return _computed[key]


_computed: dict[str, float] = {}


def _percentile_ms(space: SearchSpace, profile: HardwareProfile, num_classes: int) -> float:
    featurizer = ArchitectureFeaturizer(num_classes)
    rng = random.Random(SAMPLE_SEED)
    try:
        latencies = [
            profile.predict(featurizer.features(space.sample(_Draw(rng)))).latency_ms for _ in range(SAMPLES)
        ]
    except NasError as exc:
        raise NasError(
            f"latency_budget_ms: the default budget is predicted by the model of profile {profile.name}, which "
            f"cannot price space {space.name!r} ({first_line(exc)}); give --latency-budget-ms MS, or none"
        ) from None
    return float(f"{np.quantile(latencies, QUANTILE):.2g}")


def resolve_latency_budget(
    config: SearchConfig,
    space: SearchSpace,
    profile: HardwareProfile,
    num_classes: int,
    run_dir: Path | None = None,
    say: Callable[[str], None] = log.info,
) -> tuple[SearchConfig, bool]:
    """`config` with its latency budget as a number (or None), and whether it is the auto budget.

    Auto: the budget recorded when the run in `run_dir` started (a resume keeps it, whatever the profile's
    model became), else derived now and told to `say` in one line. A number equal to the one an auto run
    recorded (as `--resume` reads it from config.json) is that run's auto budget."""
    recorded = _recorded(run_dir)
    if config.latency_budget_ms != AUTO_BUDGET:
        auto = recorded is not None and config.latency_budget_ms == recorded
        return config, auto
    if recorded is not None:
        return dataclasses.replace(config, latency_budget_ms=recorded), True
    budget = default_budget_ms(space, profile, num_classes)
    if budget is None:
        say(
            f"no latency budget: profile {profile.name} has no latency model to derive one from "
            "(--latency-budget-ms MS sets one)"
        )
    else:
        say(
            f"latency budget {budget:g} ms, as {profile.name}'s model predicts: its {QUANTILE * 100:.0f}th "
            f"percentile over the space {space.name} (--latency-budget-ms MS sets another, none: no budget)"
        )
    return dataclasses.replace(config, latency_budget_ms=budget), True


def budget_record(budget_ms: float | None, latency_mode: str) -> dict[str, Any]:
    """What config.json records of an auto budget: its value, how it was derived and what it is checked on."""
    return {
        "auto_ms": budget_ms,
        "rule": f"{QUANTILE * 100:.0f}th percentile of the profile's predicted latency over {SAMPLES} "
        f"architectures of the space (seed {SAMPLE_SEED})",
        "checked_on": "the profile's predicted latency" if latency_mode == "measured" else "the latency",
    }


def budget_for_run(config: SearchConfig, auto: bool, latency_mode: str) -> SearchConfig:
    """The settings the driver runs with. The auto budget is derived from the profile's model, so with latency
    measured on this machine it is checked on the model's prediction (a budget on the profile, as --budget
    gives one): against measurements it would also cut by this machine's speed and load."""
    if not auto or config.latency_budget_ms is None or latency_mode != "measured":
        return config
    budgets = {**config.budget_by_profile, config.profile: config.latency_budget_ms}
    return dataclasses.replace(config, latency_budget_ms=None, budgets=budgets)


def _recorded(run_dir: Path | None) -> float | None:
    """The auto budget an existing run recorded in its config.json (None: none, or no such run; a config.json
    that cannot be read is reported by the run directory's own checks)."""
    try:
        document = json.loads((run_dir / "config.json").read_text()) if run_dir is not None else {}
        record = document.get("latency_budget") or {}
        return record.get("auto_ms")
    except (OSError, ValueError, AttributeError):
        return None
