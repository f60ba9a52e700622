"""`nas.search(...)`: everything `nas search` does, as a function."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from nas._io import remove_stale_temp_files, write_json_atomic
from nas.data import load_dataset
from nas.errors import NasError, NasRuntimeError, Terminated
from nas.evaluate import ProxyTrainer, Trainer, TrainingRecipe, preprocessing_spec
from nas.latency import check_space_coverage, load_profile, local_profile
from nas.plugins import load_plugins
from nas.records import Attr
from nas.search._cheap_objectives import resolve_latency_mode
from nas.search._config import SearchConfig
from nas.search._constraints import check_energy, fold_objective_budget, load_budget_profile
from nas.search._default_budget import budget_for_run, budget_record, resolve_latency_budget
from nas.search._device_nodes import device_present
from nas.search._executor import Executor, FinishedRunExecutor, RayExecutor
from nas.search._machine_record import machine_change, machine_record
from nas.search._progress import progress_display
from nas.search._results import write_pareto_json, write_trials_csv
from nas.search._run_dir import (
    START_MARKER,
    check_fingerprints,
    check_run_dir,
    clear_unfinished_start,
    fingerprints,
    finished_already,
)
from nas.search._steady_driver import driver_class
from nas.search._study import COMPLETE, FAILED, INFEASIBLE, finished, open_study, recover_interrupted
from nas.search._tasks import training_placement
from nas.search._tracking import TrialCallback, tracker_callbacks
from nas.space import load_space

# Latency modes that need no device node: a finished run re-run in one starts no Ray (`FinishedRunExecutor`).
LOCAL_MODES = ("measured", "predicted")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    pareto: list[dict[str, Any]]
    finished: int
    complete: int
    infeasible: int
    failed: int
    recovered: int  # trials found interrupted (driver killed) and re-queued on this start
    seconds: float
    first_failures: tuple[str, ...] = ()  # "trial N: reason" of the first failed (then infeasible) trials

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "run_dir": str(self.run_dir)}


def _stderr(message: str) -> None:
    """A line the user of `nas search` sees (with its progress), such as the budget the search derived."""
    import sys

    print(f"search: {message}", file=sys.stderr, flush=True)


def _calibration_progress(profile):
    """A one-line counter on stderr while a profile is calibrated for this machine (minutes, once)."""
    import sys

    def show(done: int, total: int) -> None:
        print(
            f"\rcalibrating profile {profile.name} for this machine: measured {done}/{total} networks",
            end="\n" if done == total else "",
            file=sys.stderr,
            flush=True,
        )

    return show


def search(
    config: SearchConfig | None = None,
    *,
    trainer: Trainer | None = None,
    executor: Executor | None = None,
    show_progress: bool = False,
    callbacks: Sequence[TrialCallback] = (),
    **settings: Any,
) -> SearchResult:
    """Run (or resume) a hardware-aware search, as `config` says; `settings` are `SearchConfig` fields (given
    alone, or replacing those of `config`). The sampler may be an `optuna.samplers.BaseSampler` instance.

    Re-running with the same settings and run directory resumes: finished trials are kept, trials the
    previous driver left unfinished are re-run. A custom `trainer` or `executor` replaces the default
    proxy training or the Ray workers. `callbacks`: Optuna callbacks `(study, frozen_trial)`, such as
    `optuna_integration.MLflowCallback`, called with each trial that counts toward `trials`, after the
    trackers `track` names.
    """
    config = replace(config, **settings) if config else SearchConfig(**settings)
    started = time.perf_counter()
    load_plugins(config.plugins)  # before the space: it may use a plugin's primitives
    space = load_space(config.space)
    profile = load_profile(config.profile)
    latency_mode = resolve_latency_mode(
        profile, config.latency
    )  # a user error before anything is written or started
    if space.exits and latency_mode in ("device", "hybrid"):  # nas.search._exits measures segments here
        raise NasError(
            f"--latency {latency_mode}: space {space.name} has early exits, whose expected latency needs each "
            "segment measured here or predicted; use --latency measured or predicted"
        )
    if latency_mode in ("predicted", "hybrid"):
        check_space_coverage(space, profile, allow_extrapolation=config.allow_extrapolation)
    check_energy(space, profile, config)  # --max-energy-mj, and the energy model's coverage
    config = fold_objective_budget(config, profile.name)
    for (
        name
    ) in config.budget_by_profile:  # the fleet's devices, predicted: refused as the objective's would be
        device = load_budget_profile(name)
        resolve_latency_mode(device, "predicted")
        check_space_coverage(space, device, allow_extrapolation=config.allow_extrapolation)
    dataset = load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
    budget_said: list[str] = []  # told once the cluster is up: an error before it stays one line
    config, auto_budget = resolve_latency_budget(
        config, space, profile, dataset.num_classes, config.run_dir, say=budget_said.append
    )
    recipe = TrainingRecipe(
        epochs=config.epochs, train_subset=config.train_subset, robust=config.robust_weight is not None
    )
    own_trainer = trainer is None  # the default trainer trains on the device chosen below
    trainer = trainer or ProxyTrainer(recipe, exit_max_drop=config.exit_max_drop)
    run_dir = config.run_dir
    resuming = check_run_dir(config, run_dir)
    callbacks = [*tracker_callbacks(config.track, run_dir), *callbacks]  # a tracker's errors: before any work
    if resuming and config.latency == "auto":  # an auto run goes on in the mode it started in
        latency_mode = _recorded_latency_mode(run_dir) or latency_mode
    if (
        latency_mode == "predicted"
    ):  # a local profile measured on another machine: its calibrated copy for this one
        profile = local_profile(
            profile, calibrate=True, progress=_calibration_progress(profile) if show_progress else None
        )
    content = fingerprints(space, profile, dataset, latency_mode)
    machine, change = machine_record(), None
    if resuming:
        check_fingerprints(run_dir, content)
        saved = json.loads((run_dir / "config.json").read_text())
        change = machine_change(saved, machine, latency_mode, config.allow_machine_change, run_dir)
        log.info(f"resuming the search in {run_dir}")
        if change is not None:
            log.info(f"{run_dir}: resumed on another machine ({machine['cpu']}); recorded in config.json")
    if config.rungs and not isinstance(trainer, ProxyTrainer):
        raise NasError(
            "multi-fidelity rungs need the proxy trainer (its recipe sets the epochs of each rung)"
        )
    if config.robust_weight is not None and not getattr(getattr(trainer, "recipe", None), "robust", False):
        raise NasError(
            "robust search needs a trainer that measures corrupted accuracy (TrainingRecipe(robust=True))"
        )
    # Ray first: a cluster or local Ray that cannot start leaves no run directory behind (a retry with other
    # settings is then a new search, not "a different search" in a half-made folder).
    own_executor = executor is None
    # the same command again after the search finished: no trial left to evaluate, so no Ray to start
    nothing_left = (
        own_executor and resuming and latency_mode in LOCAL_MODES and finished_already(run_dir, config.trials)
    )
    try:
        if nothing_left:
            executor = FinishedRunExecutor()
        else:
            executor = executor or RayExecutor(workers=config.workers, address=config.ray_address)
    except NasRuntimeError:
        raise
    except NasError as exc:  # the settings were fine: the cluster (or a local Ray) is not there
        raise NasRuntimeError(str(exc)) from None
    except SystemExit as exc:  # SIGTERM while ray.init runs: Ray's own handler calls sys.exit(SIGTERM)
        raise _terminated_while_ray_starts(exc) from None
    try:  # where trainings run, once the cluster's GPUs are known
        if nothing_left:  # where its trainings ran, as recorded: nothing trains now to change it
            last = _last_training(saved)
            device, gpu_share = last["device"], last["gpus_per_trial"]
        else:
            device, gpu_share = training_placement(config.device, config.gpus_per_trial, executor.gpus)
        if not resuming and config.latency == "auto":  # hybrid when the cluster has the profile's device
            present = device_present(executor, profile.name)
            if resolve_latency_mode(profile, "auto", device_node=present) == "hybrid":
                latency_mode = "hybrid"
                check_space_coverage(space, profile, allow_extrapolation=config.allow_extrapolation)
                content = fingerprints(space, profile, dataset, latency_mode)
    except BaseException:
        if own_executor:
            executor.close()
        raise
    executor.gpus_per_trial = gpu_share
    for line in budget_said:
        (_stderr if show_progress else log.info)(line)
    if own_trainer:
        trainer = ProxyTrainer(recipe, device=device, exit_max_drop=config.exit_max_drop)
    # recorded in config.json: CUDA results differ numerically from the CPU's
    training = {"device": device, "gpus_per_trial": gpu_share}
    created, lock = _Created(), None  # what this invocation makes, removed again if the start fails
    try:
        created.note(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        created.note(run_dir / ".lock")
        lock = _lock_run_dir(run_dir)
        if not resuming:  # a start killed before it finished left files that are no run yet
            clear_unfinished_start(run_dir)
            created.note(run_dir / START_MARKER)
            (run_dir / START_MARKER).touch()
        for folder in (run_dir, run_dir / "checkpoints"):  # half-written files of a killed writer
            remove_stale_temp_files(folder)
    except BaseException:
        _abandon_start(executor if own_executor else None, lock, created)
        raise
    context = {
        "space": space.name,
        "profile": profile.name,
        "dataset": dataset.name,
        "accuracy_objective": "clean validation accuracy"
        if config.robust_weight is None
        else f"{1 - config.robust_weight:g} x clean + {config.robust_weight:g} x mean corrupted validation accuracy",
        "preprocessing": preprocessing_spec(
            dataset.mean, dataset.std, max(space.resolution), dataset.classes
        ),
    }

    def write_outputs() -> None:
        write_trials_csv(study, run_dir / "trials.csv")
        write_pareto_json(study, run_dir / "pareto.json", context)

    try:
        created.note(run_dir / "config.json")
        if not resuming:
            write_json_atomic(
                run_dir / "config.json",
                {
                    "search": config.to_dict(),
                    # how a resume recognises the same files, however they are spelled
                    "paths": config.canonical_paths(),
                    "space": space.describe(),
                    "profile": profile.describe(),
                    "dataset": dataset.describe(),
                    "recipe": getattr(trainer, "recipe", None) and trainer.recipe.to_dict(),
                    "preprocessing": context["preprocessing"],
                    "fingerprints": content,
                    "latency_mode": latency_mode,  # what --latency resolved to (auto: hybrid, measured, ...)
                    # the auto budget: its number, its rule, what it is checked on
                    **(
                        {"latency_budget": budget_record(config.latency_budget_ms, latency_mode)}
                        if auto_budget
                        else {}
                    ),
                    "machine": machine,
                    "training": training,
                },
            )
        elif change is not None:  # resumed on another machine: said where, and with what
            saved["machine_changes"] = [*(saved.get("machine_changes") or []), change]
            write_json_atomic(run_dir / "config.json", saved)
        if resuming:  # trainings that now run elsewhere (a GPU machine, or the CPU): each change is recorded
            if _last_training(saved) != training:
                saved["training_changes"] = [*(saved.get("training_changes") or []), training]
                write_json_atomic(run_dir / "config.json", saved)
        created.note(run_dir / "study.db")
        study = open_study(run_dir, config.sampler, config.population, config.seed)
        recovered = recover_interrupted(study)
        created.note(run_dir / "checkpoints")
        run_config = budget_for_run(  # auto resolved, for the driver's strategies
            replace(config, latency=latency_mode), auto_budget, latency_mode
        )
        driver = driver_class(run_config, profile, executor).from_config(
            run_config,
            study=study,
            space=space,
            profile=profile,
            dataset=dataset,
            executor=executor,
            trainer=trainer,
            on_batch_end=write_outputs,
            callbacks=callbacks,
        )
        (run_dir / START_MARKER).unlink(missing_ok=True)  # the run exists from here on
    except BaseException:  # the search never started: leave things as they were
        _abandon_start(executor if own_executor else None, lock, created)
        raise
    try:
        with progress_display(show_progress, study, config.trials, config.latency_budget_ms) as progress:
            driver.run(config.trials, progress)
    except (
        BaseException
    ):  # Ctrl-C, SIGTERM (nas.errors.Terminated) or a failure: what finished is written first
        with contextlib.suppress(Exception):
            write_outputs()
        raise
    finally:
        if own_executor:
            executor.close()
        lock.close()
    write_outputs()
    trials = study.get_trials(deepcopy=False)
    statuses = [t.user_attrs.get(Attr.STATUS) for t in trials if finished(t)]
    return SearchResult(
        run_dir=run_dir,
        pareto=json.loads((run_dir / "pareto.json").read_text())["pareto"],
        finished=len(statuses),
        complete=statuses.count(COMPLETE),
        infeasible=statuses.count(INFEASIBLE),
        failed=statuses.count(FAILED),
        recovered=recovered,
        seconds=time.perf_counter() - started,
        first_failures=_first_failures(trials),
    )


def _last_training(saved: dict) -> dict:
    """Where a run's trainings ran last ({"device", "gpus_per_trial"}; runs made before it was recorded: the CPU)."""
    first = saved.get("training") or {"device": "cpu", "gpus_per_trial": 0.0}
    return (saved.get("training_changes") or [first])[-1]


def _recorded_latency_mode(run_dir: Path) -> str | None:
    """The latency mode a run started in (config.json; None for a run from before it was recorded)."""
    return json.loads((run_dir / "config.json").read_text()).get("latency_mode")


def _first_failures(trials, limit: int = 3) -> tuple[str, ...]:
    """`trial N: reason` of the first failed trials (then infeasible ones), for a search that trained nothing."""
    counted = [t for t in trials if finished(t) and t.user_attrs.get(Attr.STATUS) in (FAILED, INFEASIBLE)]
    counted.sort(key=lambda t: (t.user_attrs.get(Attr.STATUS) != FAILED, t.number))
    return tuple(
        f"trial {t.number}: "
        + str(
            t.user_attrs.get(Attr.FAILURE_REASON)
            or t.user_attrs.get(Attr.INFEASIBLE_REASON)
            or t.user_attrs.get(Attr.STATUS)
        )[:200]
        for t in counted[:limit]
    )


def _terminated_while_ray_starts(exc: SystemExit) -> BaseException:
    """Ray's handler ends a SIGTERM during its start with sys.exit(15): exit code 15 without a word. It becomes
    the CLI's Terminated (one line, exit 143; what Ray had started stops at exit); any other exit stays."""
    import signal

    return Terminated() if exc.code == signal.SIGTERM else exc


class _Created:
    """Paths that did not exist when noted (a folder: it and its missing parents), so a start that fails can
    remove what this invocation made, and only that."""

    def __init__(self):
        self.paths: list[Path] = []

    def note(self, path: Path) -> None:
        missing = []
        while not path.exists() and path != path.parent:
            missing.append(path)
            path = path.parent
        self.paths.extend(reversed(missing))  # outermost first

    def roll_back(self) -> None:
        for path in reversed(self.paths):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # only if empty: anything else in it is not ours to remove
                else:
                    path.unlink()


def _abandon_start(executor: Executor | None, lock, created: _Created) -> None:
    if executor is not None:
        executor.close()
    if lock is not None:
        lock.close()
    created.roll_back()


class _RunLock:
    """One driver per run directory: a second one would fail the first one's running trials. An OS file lock
    (filelock: flock on POSIX, msvcrt on Windows), so a killed driver leaves no stale lock behind."""

    def __init__(self, run_dir: Path):
        from filelock import FileLock, Timeout

        self._lock = FileLock(str(run_dir / ".lock"))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise NasError(f"{run_dir}: another nas search is running in this run directory") from None

    def close(self) -> None:
        self._lock.release()


def _lock_run_dir(run_dir: Path) -> _RunLock:
    return _RunLock(run_dir)
