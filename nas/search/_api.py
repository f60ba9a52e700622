"""`nas.search(...)`: everything `nas search` does, as a function."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, Trainer, TrainingRecipe, preprocessing_spec
from nas.latency import load_profile
from nas._io import write_json_atomic
from nas.search._config import SearchConfig, check_fingerprints, check_run_dir, fingerprints
from nas.search._driver import BatchDriver, Progress, resolve_latency_mode
from nas.search._executor import Executor, RayExecutor
from nas.search._results import hypervolume, pareto_trials, write_pareto_json, write_trials_csv
from nas.search._study import FAILED, INFEASIBLE, finished, open_study, recover_interrupted
from nas.space import load_space


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    pareto: list[dict[str, Any]]
    finished: int
    complete: int
    infeasible: int
    failed: int
    recovered: int           # trials found interrupted (driver killed) and re-queued on this start
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "run_dir": str(self.run_dir)}


def search(config: SearchConfig | None = None, *, trainer: Trainer | None = None, executor: Executor | None = None,
           show_progress: bool = False, **settings: Any) -> SearchResult:
    """Run (or resume) a hardware-aware search; `settings` are `SearchConfig` fields.

    Re-running with the same settings and run directory resumes: finished trials are kept, trials the
    previous driver left unfinished are re-run. A custom `trainer` or `executor` replaces the default
    proxy training or the Ray workers.
    """
    config = replace(config, **settings) if config else SearchConfig(**settings)
    started = time.perf_counter()
    space = load_space(config.space)
    profile = load_profile(config.profile)
    latency_mode = resolve_latency_mode(profile, config.latency)  # a user error before anything is written or started
    dataset = load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
    recipe = TrainingRecipe(epochs=config.epochs, train_subset=config.train_subset, robust=config.robust_weight is not None)
    trainer = trainer or ProxyTrainer(recipe)
    run_dir = config.run_dir
    resuming = check_run_dir(config, run_dir)
    content = fingerprints(space, profile, dataset, latency_mode)
    if resuming:
        check_fingerprints(run_dir, content)
    if config.rungs and not isinstance(trainer, ProxyTrainer):
        raise NasError("multi-fidelity rungs need the proxy trainer (its recipe sets the epochs of each rung)")
    if config.robust_weight is not None and not getattr(getattr(trainer, "recipe", None), "robust", False):
        raise NasError("robust search needs a trainer that measures corrupted accuracy (TrainingRecipe(robust=True))")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock_run_dir(run_dir)
    context = {
        "space": space.name,
        "profile": profile.name,
        "dataset": dataset.name,
        "accuracy_objective": "clean validation accuracy" if config.robust_weight is None else
        f"{1 - config.robust_weight:g} x clean + {config.robust_weight:g} x mean corrupted validation accuracy",
        "preprocessing": preprocessing_spec(dataset.mean, dataset.std, max(space.resolution), dataset.classes),
    }
    if not resuming:
        write_json_atomic(run_dir / "config.json", {
            "search": config.to_dict(),
            "space": space.describe(),
            "profile": profile.describe(),
            "dataset": dataset.describe(),
            "recipe": getattr(trainer, "recipe", None) and trainer.recipe.to_dict(),
            "preprocessing": context["preprocessing"],
            "fingerprints": content,
        })
    study = open_study(run_dir, config.sampler, config.population, config.seed)
    recovered = recover_interrupted(study)
    own_executor = executor is None
    executor = executor or RayExecutor(workers=config.workers, address=config.ray_address)
    def write_outputs() -> None:
        write_trials_csv(study, run_dir / "trials.csv")
        write_pareto_json(study, run_dir / "pareto.json", context)
    try:
        driver = BatchDriver(
            study, space, profile, dataset, executor=executor, run_dir=run_dir, seed=config.seed, trainer=trainer,
            latency_budget_ms=config.latency_budget_ms, max_params=config.max_params, max_macs=config.max_macs,
            batch_size=max(config.population, 2 * executor.workers), on_batch_end=write_outputs,
            latency_mode=config.latency, robust_weight=config.robust_weight, prescreen=config.prescreen,
            prescreen_score=config.prescreen_score, rungs=config.rungs, stop_dominated_by=config.stop_dominated_by,
            stop_margin=config.stop_margin,
        )
        with _progress_display(show_progress, study, config.trials, config.latency_budget_ms) as progress:
            driver.run(config.trials, progress)
    finally:
        if own_executor:
            executor.close()
        lock.close()
    write_outputs()
    trials = study.get_trials(deepcopy=False)
    statuses = [t.user_attrs.get("status") for t in trials if finished(t)]
    return SearchResult(
        run_dir=run_dir,
        pareto=json.loads((run_dir / "pareto.json").read_text())["pareto"],
        finished=len(statuses),
        complete=statuses.count("complete"),
        infeasible=statuses.count(INFEASIBLE),
        failed=statuses.count(FAILED),
        recovered=recovered,
        seconds=time.perf_counter() - started,
    )


def _lock_run_dir(run_dir: Path):
    """One driver per run directory: a second one would fail the first one's running trials."""
    import fcntl

    handle = open(run_dir / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise NasError(f"{run_dir}: another nas search is running in this run directory") from None
    return handle


class _progress_display:
    """A rich progress bar: trials done, feasible (trained), Pareto size, hypervolume, ETA.

    The hypervolume's reference latency is the budget, else 1.1 x the slowest Pareto member so far.
    """

    def __init__(self, enabled: bool, study, total: int, budget_ms: float | None):
        self.enabled, self.study, self.total, self.budget_ms = enabled, study, total, budget_ms
        self._bar = None

    def __enter__(self) -> Progress:
        progress = Progress(total=self.total)
        progress.feasible = sum(t.user_attrs.get("status") == "complete" for t in self.study.get_trials(deepcopy=False))
        if not self.enabled:
            return progress
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("search"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
            TextColumn("feasible {task.fields[feasible]}"), TextColumn("pareto {task.fields[pareto]}"),
            TextColumn("HV {task.fields[hv]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        )
        self._bar.start()
        task = self._bar.add_task("search", total=self.total, feasible=0, pareto=0, hv="-")

        def update(p: Progress) -> None:
            front = [(t.values[0], t.values[1]) for t in pareto_trials(self.study)]
            reference = self.budget_ms or max((lat for _, lat in front), default=0.0) * 1.1
            hv = f"{hypervolume(front, reference):.3g}" if front else "-"
            self._bar.update(task, completed=min(p.done, p.total), feasible=p.feasible, pareto=len(front), hv=hv)

        progress.update = update
        return progress

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
