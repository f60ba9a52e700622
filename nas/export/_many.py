"""Deployment training of several exported models: a run's exported front (`pareto_exports`) or any list
of model folders, one after another here or in parallel as tasks of an executor (one CPU each). A model
that fails is reported with its reason and the others go on; the progress lines carry an ETA."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from nas._io import read_json
from nas.errors import NasError, NasRuntimeError, first_line
from nas.export._deploy import DEPLOYED_SUFFIX, EpochDone, check_settings, deploy_train
from nas.export._litert import check_export_format
from nas.export._run import _EXPORT_DIR
from nas.export._teacher import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE
from nas.export._transfer import check_freeze, read_init

BASELINES_FOLDER = "baselines"  # RUN_DIR/baselines/NAME: hand-designed networks exported by nas baselines


@dataclass(frozen=True)
class TrainOutcome:
    source: Path
    out: Path | None  # the deployed model folder, when training succeeded
    metrics: dict | None  # its metrics.json
    error: str | None = None  # one line, when it failed


def train_command(
    sources: list[str],
    *,
    executor_factory: Callable[[int], Any],
    pareto: bool = False,
    baselines: bool = False,
    workers: int = 1,
    quiet: bool = False,
    stream: TextIO | None = None,
    **settings: Any,
) -> list[TrainOutcome]:
    """What `nas train` does: resolve the models (`pareto`, `baselines`: the one source is a run directory
    whose exported front, exported baselines or both are trained), train them here one after another or with
    `executor_factory(workers)` in parallel, print a line per model and the progress; raises
    NasRuntimeError (exit 1) when any model failed, after training all the others."""
    stream = stream or sys.stdout
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise NasError(f"--workers: must be an integer >= 1, got {workers!r}")
    if pareto or baselines:
        flag = "--pareto" if pareto else "--baselines"
        if len(sources) != 1:
            raise NasError(f"{flag}: give one run directory, got {len(sources)} paths")
        run_dir = sources[0]
        sources = (pareto_exports(run_dir) if pareto else []) + (
            baseline_exports(run_dir) if baselines else []
        )
    check_settings(*(settings.get(k, d) for k, d in _DEFAULTS))
    check_export_format(settings.get("export_format", "onnx"))  # the litert extra: before any training
    check_freeze(settings.get("freeze_stages", 0), settings.get("head_only", False))
    if settings.get("init") is not None:  # a bad --init is one line before any model trains
        read_init(settings["init"])
    workers = parallel_workers(workers, len(sources))
    executor = executor_factory(workers) if workers > 1 else None
    progress = None if quiet or executor is not None else ProgressLines(stream)
    models = ModelsProgress(len(sources), workers, stream) if executor is not None and not quiet else None

    def report(outcome: TrainOutcome) -> None:
        if models is not None:
            models(outcome)
        if outcome.error is None:
            print(describe_outcome(outcome), file=stream, flush=True)
        else:
            print(f"nas: error: {outcome.source}: {outcome.error}", file=sys.stderr, flush=True)

    try:
        outcomes = train_exports(sources, executor=executor, progress=progress, on_done=report, **settings)
    finally:
        if executor is not None:
            executor.close()
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise NasRuntimeError(
            f"{len(failed)} of {len(outcomes)} models failed to train (reasons above); the others are trained"
        )
    return outcomes


def pareto_exports(run_dir: str | Path) -> list[Path]:
    """The model folders `nas export` wrote for a run (RUN_DIR/export/NN_HASH), in rank order."""
    run_dir = _run_dir(run_dir)
    export = run_dir / "export"
    folders = (
        sorted(p for p in export.iterdir() if p.is_dir() and _EXPORT_DIR.match(p.name))
        if export.is_dir()
        else []
    )
    if not folders:
        raise NasError(f"{run_dir}: no exported models in {export}; run `nas export {run_dir}` first")
    return folders


def baseline_exports(run_dir: str | Path) -> list[Path]:
    """The model folders `nas baselines --export` wrote for a run (RUN_DIR/baselines/NAME), by name."""
    run_dir = _run_dir(run_dir)
    folder = run_dir / BASELINES_FOLDER
    models = (
        sorted(
            p
            for p in folder.iterdir()
            if (p / "spec.json").is_file() and not p.name.endswith(DEPLOYED_SUFFIX)  # not nas train's outputs
        )
        if folder.is_dir()
        else []
    )
    if not models:
        raise NasError(
            f"{run_dir}: no exported baselines in {folder}; run `nas baselines {run_dir} --export` first"
        )
    return models


def _run_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise NasError(f"{run_dir}: not a nas run directory (missing config.json)")
    return run_dir


def parallel_workers(requested: int, models: int) -> int:
    """Workers worth starting: no more than models, nor than the CPUs here (one training per CPU)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(requested, models, cpus))


def train_exports(
    sources: list[str | Path],
    *,
    executor: Any = None,
    progress: Callable[[EpochDone], None] | None = None,
    on_done: Callable[[TrainOutcome], None] | None = None,
    **settings: Any,
) -> list[TrainOutcome]:
    """`deploy_train(source, **settings)` for each source, in order here, or as `executor` tasks (a
    `nas.search.Executor`: one CPU and one torch thread each; `progress` is then not called).

    Bad settings, an `out` with several models, or (with one model) a bad model folder raise NasError;
    with several models, each failure becomes an outcome with its `error`, and the others are trained.
    """
    check_settings(*(settings.get(k, d) for k, d in _DEFAULTS))
    seen: set[Path] = set()
    sources = [
        s for s in map(Path, sources) if not (s.resolve() in seen or seen.add(s.resolve()))
    ]  # once each
    if settings.get("out") is not None and len(sources) > 1:
        raise NasError(
            f"--out: one output folder for {len(sources)} models; leave it out (each goes next to its source)"
        )
    outcomes = []

    def done(outcome: TrainOutcome) -> None:
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    if executor is None:
        for source in sources:
            try:
                out = deploy_train(source, progress=progress, **settings)
            except Exception as exc:  # noqa: BLE001 - one model's failure is reported; the others go on
                if len(sources) == 1:
                    raise
                done(TrainOutcome(source, None, None, _reason(exc)))
                continue
            done(TrainOutcome(source, out, read_json(out / "metrics.json", "metrics")))
        return outcomes
    handles = {executor.submit(_train_task, str(source), settings): source for source in sources}
    while handles:
        handle = executor.wait_one(list(handles))
        source = handles.pop(handle)
        try:
            out, metrics = executor.result(handle)
        except Exception as exc:  # noqa: BLE001 - the task's failure (TaskFailed: its one-line reason)
            done(TrainOutcome(source, None, None, _reason(exc)))
            continue
        done(TrainOutcome(source, Path(out), metrics))
    return outcomes


_DEFAULTS = (
    ("epochs", 30),
    ("train_subset", None),
    ("seed", 0),
    ("kd_alpha", DEFAULT_KD_ALPHA),
    ("kd_temperature", DEFAULT_KD_TEMPERATURE),
)


def _train_task(source: str, settings: dict) -> tuple[str, dict]:
    """One model on a worker: one torch thread, as each task holds one CPU."""
    import torch

    torch.set_num_threads(1)
    out = deploy_train(source, **settings)
    return str(out), read_json(out / "metrics.json", "metrics")


def _reason(exc: BaseException) -> str:
    text = first_line(exc)
    return (
        text
        if isinstance(exc, NasError) or type(exc).__name__ == "TaskFailed"
        else f"{type(exc).__name__}: {text}"
    )


def describe_outcome(outcome: TrainOutcome) -> str:
    """The line `nas train` prints for a trained model."""
    m = outcome.metrics or {}
    proxy = f" (proxy {100 * m['proxy_accuracy']:.1f}%)" if m.get("proxy_accuracy") is not None else ""
    return (
        f"{outcome.out / 'model.onnx'}  accuracy {100 * m['accuracy']:.1f}%{proxy}, {m['train_seconds']:.0f} s, "
        f"ONNX Runtime vs PyTorch max |diff| {m['onnx_vs_torch_max_abs_diff']:.1e}{_transfer_note(m)}"
    )


def _transfer_note(metrics: dict) -> str:
    """What `--init` took: tensors matched and skipped (and why), and what stayed frozen."""
    t = metrics.get("transfer")
    if not t:
        return ""
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(t["skipped_because"].items()))
    frozen = f"; frozen: {', '.join(t['frozen_modules'])}" if t["frozen_modules"] else ""
    return (
        f"\n  init {t['init']}: {t['tensors_matched']} tensors matched, {t['tensors_skipped']} skipped"
        f"{' (' + why + ')' if why else ''}{frozen} ({t['trainable_params']:,} parameters trained)"
    )


class ProgressLines:
    """Epoch progress with an ETA: a bar rewritten in place on a terminal, else one line per epoch (logs)."""

    def __init__(self, stream: TextIO | None = None, width: int = 24):
        self.stream = stream or sys.stdout
        self.width = width
        self.tty = self.stream.isatty()

    def __call__(self, p: EpochDone) -> None:
        name = p.source.name
        resumed = f" (resumed after epoch {p.first_epoch})" if p.first_epoch else ""
        times = f"{_clock(p.seconds)} elapsed, ETA {_clock(p.eta_seconds)}"
        if self.tty:
            filled = round(self.width * p.epoch / p.epochs)
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if p.epoch == p.epochs else ""
            self.stream.write(f"\r{name}: [{bar}] epoch {p.epoch}/{p.epochs}, {times}{resumed}\033[K{end}")
        else:
            self.stream.write(f"{name}: epoch {p.epoch}/{p.epochs}, {times}{resumed}\n")
        self.stream.flush()


class ModelsProgress:
    """One line per finished model of a parallel training, with an ETA for the rest."""

    def __init__(self, total: int, workers: int, stream: TextIO | None = None):
        self.total, self.workers, self.done = total, workers, 0
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()

    def __call__(self, outcome: TrainOutcome) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        rounds_left = math.ceil((self.total - self.done) / self.workers)
        eta = elapsed / math.ceil(self.done / self.workers) * rounds_left
        state = "trained" if outcome.error is None else "FAILED"
        self.stream.write(
            f"[{self.done}/{self.total}] {state} {outcome.source}, {_clock(elapsed)} elapsed, ETA {_clock(eta)}\n"
        )
        self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
