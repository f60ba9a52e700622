"""`SearchConfig`: every setting of a search, declared once with `setting`, and its validation.

The run directory's identity (resume or refuse) is `_run_dir`; how a field becomes a flag, `_arguments`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from nas.errors import NasError
from nas.plugins import load_plugins
from nas.search._samplers import SAMPLERS, is_sampler_instance, sampler_name
from nas.search._selection import SELECTORS
from nas.search._setting import canonical_path, setting
from nas.search._tracking import parse_tracker

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

LATENCY_MODES = ("auto", "measured", "predicted", "device", "hybrid")
TRAINING_DEVICES = ("auto", "cpu", "cuda")  # nas.evaluate.DEVICES, without importing torch here
MAX_PRESCREEN = 64  # --prescreen 100000 asked hundreds of thousands of trials before training one
AUTO_BUDGET = "auto"  # latency_budget_ms derived from the profile's model and the space (_default_budget)


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search: the API takes it, `nas search` derives its flags from its fields, and a
    config file (`nas search --config FILE`) names them."""

    space: str = setting(
        "mobilenet",
        "built-in space name or path to a space YAML (default: %(default)s)",
        identity=True,
        path=True,
    )
    profile: str = setting(
        "x86-cpu", "hardware profile name or YAML path (default: %(default)s)", identity=True, path=True
    )
    latency: str = setting(
        "auto",
        "'measured' on this machine with ONNX Runtime, 'predicted' by the profile's latency model, "
        "'device': measured on the Ray node advertising the resource nas-device:PROFILE (a board that joined "
        "the cluster, see docs/devices.md), or 'hybrid': predicted by the profile's model, the candidates "
        "that train measured on that node and the model refitted on them as the search goes; auto: hybrid "
        "when such a node is in the cluster, else measured for the local profile, predicted for remote "
        "devices (default: %(default)s)",
        identity=True,
        choices=LATENCY_MODES,
    )
    device_timeout: float = setting(
        120.0,
        "--latency device or hybrid: seconds a measurement waits for a device node that left to come back "
        "before its trial fails (hybrid: keeps its predicted latency, marked fallback) (default: %(default)s)",
        metavar="SECONDS",
    )
    dataset: str = setting(
        "builtin",
        "'builtin' (real CIFAR-10 subset shipped with nas), an image folder root/<class>/*.png|jpg, or an .npz "
        "with x, y (default: %(default)s)",
        identity=True,
        path=True,
    )
    trials: int = setting(20, "candidates to evaluate, infeasible ones included (default: %(default)s)")
    epochs: int = setting(4, "proxy training epochs per candidate (default: %(default)s)", identity=True)
    train_subset: int | None = setting(
        2500, "training images per epoch, or 'all' (default: %(default)s)", identity=True, none_word="all"
    )
    workers: int | None = setting(
        None, "parallel Ray workers, one CPU and one thread each (default: all CPUs)"
    )
    # Not part of a run's identity (a run may be extended on a GPU machine); config.json records where its
    # trainings ran, since CUDA results differ numerically from the CPU's.
    device: str = setting(
        "auto",
        "where candidates train: cpu, or cuda (the GPU Ray gives each training); auto: cuda when this machine "
        "or the Ray cluster has a GPU, else cpu (default: %(default)s)",
        choices=TRAINING_DEVICES,
    )
    gpus_per_trial: float | None = setting(
        None,
        "share of a GPU each training asks Ray for: 0.25 packs four trainings per GPU, 1 gives each its own "
        "(default: 0.25 on cuda, 0 on cpu)",
        metavar="F",
    )
    # 'auto' is resolved when the search starts (`resolve_latency_budget`): a run records the number.
    latency_budget_ms: float | str | None = setting(
        AUTO_BUDGET,
        "reject candidates slower than this on the profile before training; auto: the 80th percentile of "
        "the profile's predicted latency over the space (mobilenet on x86-cpu: 0.51 ms; none without a "
        "latency model); none: no budget (default: %(default)s)",
        identity=True,
        metavar="MS",
        none_word="none",
    )
    budgets: tuple[str, ...] = setting(
        (),
        "reject candidates whose latency on PROFILE (measured on its device node with --latency device, "
        "else predicted by its model) is over MS before training, so the result runs within budget on every "
        "device of a fleet; the search's own --profile "
        "is the same as --latency-budget-ms; repeatable (the API also takes a mapping, e.g. "
        "{'jetson-tx2': 8.0})",
        identity=True,
        flag="--budget",
        metavar="PROFILE=MS",
    )
    max_params: int | None = setting(
        None, "reject candidates with more parameters before training", identity=True
    )
    max_macs: int | None = setting(
        None, "reject candidates with more MACs (fvcore) before training", identity=True
    )
    max_peak_memory_kb: float | None = setting(
        None,
        "reject candidates whose peak activation memory (KiB, tensor lifetimes over the ONNX graph, batch 1) "
        "is larger, before training",
        identity=True,
        metavar="KB",
    )
    max_weights_kb: float | None = setting(
        None,
        "reject candidates whose weights (KiB of the ONNX graph's constants) are larger, before training",
        identity=True,
        metavar="KB",
    )
    max_energy_mj: float | None = setting(
        None,
        "reject candidates whose predicted energy per inference (mJ, the profile's energy model, e.g. "
        "jetson-tx2's) is larger, before training; refused on a profile without an energy model",
        identity=True,
        metavar="MJ",
    )
    # The defaults are the best configuration measured (the search-efficiency benchmark): random
    # proposals, 8 per trained candidate, the ones with the largest expected hypervolume improvement train,
    # in batches of 4.
    sampler: str | BaseSampler = setting(
        "random",
        f"Optuna sampler: {', '.join(SAMPLERS.names())}, or one a --plugin registers (default: %(default)s); "
        "the API also takes an optuna.samplers.BaseSampler instance, recorded by its class name",
        identity=True,
    )
    population: int = setting(
        4,
        "NSGA-II population / TPE start-up trials; also the batch size (default: %(default)s)",
        identity=True,
    )
    seed: int = setting(
        0, "seed of the sampler, data split and training (default: %(default)s)", identity=True
    )
    val_fraction: float = setting(
        0.1, "share of the dataset held out for validation (default: %(default)s)", identity=True
    )
    out: str | None = setting(None, "run directory (default: results/search-SPACE-PROFILE-seedSEED)")
    ray_address: str | None = setting(
        None, "join an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)"
    )
    robust_weight: float | None = setting(
        None,
        "robust search: maximize (1-W) x clean + W x mean corrupted accuracy (noise, blur, contrast, "
        "JPEG at severity 3 on 500 validation images), e.g. 0.5 (default: clean accuracy only)",
        identity=True,
    )
    exit_max_drop: float = setting(
        0.5,
        "early exits (a space with `exits`): accuracy points the calibrated cascade may lose against its "
        "final exit; its expected latency is then the latency objective (default: %(default)s)",
        identity=True,
    )
    prescreen: int = setting(
        8,
        "pre-screening: sample K candidates per trained one and train only the chosen ones "
        "(default: %(default)s; 1: off)",
        identity=True,
    )
    prescreen_score: str = setting(
        "ehvi",
        "how --prescreen chooses: ehvi, the expected hypervolume improvement from an accuracy model "
        "(costs and NASWOT) of the candidates trained so far, or a training-free score, the best of "
        "each latency band (default: %(default)s; with --sampler random --population 4 --prescreen 8, "
        "the defaults, the best configuration measured)",
        identity=True,
        choices=SELECTORS.names(),
    )
    rungs: tuple[int, ...] = setting(
        (),
        "multi-fidelity: comma-separated epochs of early rungs (each < --epochs), e.g. 1,2; a candidate "
        "dominated at a rung stops there (default: none)",
        identity=True,
    )
    stop_dominated_by: int = setting(
        2,
        "stop a candidate at a rung when this many candidates dominate it there (default: %(default)s)",
        identity=True,
    )
    stop_margin: float | None = setting(
        None,
        "at a rung, a dominating candidate must be this much more accurate (default: two standard errors "
        "of the accuracy difference on the validation split, so ties at chance stop nobody; 0: any)",
        identity=True,
    )
    allow_extrapolation: bool = setting(
        False,
        "predict node kinds the profile's device never measured with the profile's prior (a reference "
        "device's costs, scaled) instead of refusing; each trial records the share extrapolated",
    )
    allow_machine_change: bool = setting(
        False,
        "resume a run whose latency is measured on another CPU model than this one (its latencies then "
        "mix two CPUs; config.json records the change)",
    )
    plugins: tuple[str, ...] = setting(
        (),
        "import this module (a name, or a path to a .py file) before the search, in the driver and in "
        "every worker, e.g. to register primitives; repeatable",
        flag="--plugin",
        metavar="MODULE",
    )
    track: tuple[str, ...] = setting(
        (),
        "report every evaluated trial to an experiment tracker: mlflow, or mlflow:TRACKING_URI (needs "
        "pip install 'hwnas[track]'); repeatable",
        flag="--track",
        metavar="TRACKER[:URI]",
    )

    def __post_init__(self):
        _positive_int("trials", self.trials)
        _positive_int("epochs", self.epochs)
        _positive_int("population", self.population, minimum=2)
        if self.train_subset is not None:
            _positive_int("train_subset", self.train_subset)
        if self.workers is not None:
            _positive_int("workers", self.workers)
        for name in ("max_params", "max_macs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        energy = self.max_energy_mj
        if energy is not None and (
            isinstance(energy, bool)
            or not isinstance(energy, (int, float))
            or not (math.isfinite(energy) and energy > 0)
        ):
            raise NasError(f"max_energy_mj: must be a positive finite number of millijoules, got {energy!r}")
        for name in ("max_peak_memory_kb", "max_weights_kb"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            ):
                raise NasError(f"{name}: must be a positive finite number of KiB, got {value!r}")
        budget = self.latency_budget_ms
        if budget not in (None, AUTO_BUDGET) and (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not (math.isfinite(budget) and budget > 0)
        ):
            raise NasError(
                f"latency_budget_ms: must be a positive finite number of milliseconds, got {budget!r} (or "
                "'auto': derived from the profile; none: no budget)"
            )
        object.__setattr__(self, "budgets", canonical_budgets(self.budgets))
        if isinstance(self.device_timeout, bool) or not (
            isinstance(self.device_timeout, (int, float))
            and math.isfinite(self.device_timeout)
            and self.device_timeout > 0
        ):
            raise NasError(
                f"device_timeout: must be a positive number of seconds, got {self.device_timeout!r}"
            )
        if self.robust_weight is not None and not (
            isinstance(self.robust_weight, (int, float)) and 0 <= self.robust_weight <= 1
        ):
            raise NasError(f"robust_weight: must be a number in [0, 1], got {self.robust_weight!r}")
        if isinstance(self.exit_max_drop, bool) or not (
            isinstance(self.exit_max_drop, (int, float)) and 0 <= self.exit_max_drop <= 100
        ):
            raise NasError(
                f"exit_max_drop: must be a number of accuracy points in [0, 100], got {self.exit_max_drop!r}"
            )
        _positive_int("prescreen", self.prescreen)
        if (
            self.prescreen > MAX_PRESCREEN
        ):  # each sampled candidate is a study trial plus its costs and latency
            raise NasError(
                f"prescreen: at most {MAX_PRESCREEN} candidates sampled per trained one (each costs a "
                f"study trial, its costs and latency before any training), got {self.prescreen}"
            )
        _positive_int("stop_dominated_by", self.stop_dominated_by)
        if self.stop_margin is not None and not (
            isinstance(self.stop_margin, (int, float))
            and not isinstance(self.stop_margin, bool)
            and 0 <= self.stop_margin < 1
        ):
            raise NasError(f"stop_margin: must be an accuracy difference in [0, 1), got {self.stop_margin!r}")
        object.__setattr__(self, "rungs", tuple(self.rungs))
        for rung in self.rungs:
            if isinstance(rung, bool) or not isinstance(rung, int) or not 0 < rung < self.epochs:
                raise NasError(
                    f"rungs: each rung is a number of epochs below --epochs ({self.epochs}), got {rung!r}"
                )
        if list(self.rungs) != sorted(set(self.rungs)):
            raise NasError(f"rungs: must increase, got {list(self.rungs)}")
        SELECTORS.check(self.prescreen_score, "prescreen_score")
        if self.device not in TRAINING_DEVICES:
            raise NasError(
                f"device: unknown device {self.device!r} (choose from {', '.join(TRAINING_DEVICES)})"
            )
        share = self.gpus_per_trial
        if share is not None and (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or not (math.isfinite(share) and share >= 0)
            or (share > 1 and share != int(share))
        ):
            raise NasError(
                f"gpus_per_trial: a share of one GPU in [0, 1] or a whole number of GPUs, got {share!r}"
            )
        if share and self.device == "cpu":
            raise NasError(f"gpus_per_trial: {share:g} GPU per training, but --device cpu trains on the CPU")
        if self.latency not in LATENCY_MODES:
            raise NasError(f"latency: unknown mode {self.latency!r} (choose from {', '.join(LATENCY_MODES)})")
        if not is_sampler_instance(self.sampler):
            if self.sampler not in SAMPLERS.names() and self.plugins:  # a plugin may register it
                load_plugins(self.plugins)
            SAMPLERS.check(self.sampler, "sampler")
        if isinstance(self.plugins, str):
            raise NasError(f"plugins: a list of module names, got the string {self.plugins!r}")
        object.__setattr__(self, "plugins", tuple(self.plugins))
        for plugin in self.plugins:
            if not isinstance(plugin, str) or not plugin.strip():
                raise NasError(f"plugins: each is a module name or a path to a .py file, got {plugin!r}")
        if isinstance(self.track, str):
            raise NasError(
                f"track: a list of trackers such as mlflow[:TRACKING_URI], got the string {self.track!r}"
            )
        object.__setattr__(self, "track", tuple(self.track))
        for tracker in self.track:
            parse_tracker(tracker)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise NasError(
                f"seed: must be an integer from 0 to 2**32 - 1 (what the samplers accept), got {self.seed!r}"
            )

    @property
    def budget_by_profile(self) -> dict[str, float]:
        """--budget as {profile: milliseconds}."""
        return dict(_split_budget(budget) for budget in self.budgets)

    @property
    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        return Path("results") / f"search-{Path(self.space).stem}-{Path(self.profile).stem}-seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """As stored in config.json (tuples become lists), so a resume compares like with like."""
        return json.loads(
            json.dumps({f.name: self._recorded(f.name) for f in fields(self) if f.metadata["identity"]})
        )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready (a sampler instance by its class name)."""
        return {f.name: self._recorded(f.name) for f in fields(self)}

    def _recorded(self, name: str) -> Any:
        value = getattr(self, name)
        return sampler_name(value) if name == "sampler" else value

    def canonical_paths(self) -> dict[str, Any]:
        """The space, profile and dataset as absolute paths (built-in names as they are), stored in config.json
        so a resume from another folder, or with another spelling of the same path, is recognised."""
        return {
            f.name: canonical_path(f.name, getattr(self, f.name)) for f in fields(self) if f.metadata["path"]
        }


def canonical_budgets(budgets: Any) -> tuple[str, ...]:
    """--budget as `PROFILE=MS` strings sorted by profile, one spelling per budget (a run's identity compares
    them), from a mapping or from `PROFILE=MS` strings; malformed, non-positive or repeated ones refused."""
    if isinstance(budgets, str):
        raise NasError(f"budgets: a list of PROFILE=MS or a mapping, got the string {budgets!r}")
    if isinstance(budgets, Mapping):
        pairs = [(name, _budget_ms(name, ms)) for name, ms in budgets.items()]
    else:
        pairs = [_split_budget(budget) for budget in budgets]
    names = [name for name, _ in pairs]
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise NasError(f"budgets: a profile name or path is required, got {name!r}")
        if names.count(name) > 1:
            raise NasError(f"budgets: profile {name!r} is given more than one budget")
    return tuple(f"{name}={ms!r}" for name, ms in sorted(pairs))


def _split_budget(budget: Any) -> tuple[str, float]:
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
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NasError(f"{name}: must be an integer >= {minimum}, got {value!r}")
