"""`SearchConfig`: every setting of a search, declared once with `setting`; its validation is `_config_checks`.

The run directory's identity (resume or refuse) is `_run_dir`; how a field becomes a flag, `_arguments`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search._config_checks import (  # noqa: F401  (re-exported: where the other modules import them)
    AUTO_BUDGET,
    LATENCY_MODES,
    MAX_PRESCREEN,
    TRAINING_DEVICES,
    canonical_budgets,
    check_config,
    split_budget,
)
from nas.search._samplers import SAMPLERS, sampler_name
from nas.search._selection import SELECTORS
from nas.search._setting import canonical_path, setting

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


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
        check_config(self)

    @property
    def budget_by_profile(self) -> dict[str, float]:
        """--budget as {profile: milliseconds}."""
        return dict(split_budget(budget) for budget in self.budgets)

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
