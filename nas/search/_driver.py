"""The ask/tell driver: one batch of candidates at a time, in three phases.

1. costs: to measure latency, the workers build, count params and MACs (fvcore) and export an ONNX
   graph of each candidate in parallel; to predict it, the driver counts params and MACs itself, once per
   distinct part of the networks (`CostCounter`), and only for candidates within the latency budget.
   The size constraints reject candidates here;
2. latency (the driver alone, every worker idle): measured with ONNX Runtime, or predicted by the
   profile's latency model from the graph features (composed from the architecture's cached parts, equal
   to the exported graph's, so a predicted latency needs no export; being cheaper than the costs, it comes
   first); the latency budget rejects candidates here. With pre-screening (`_screening.PreScreening`), the
   feasible candidates are then scored without training (on the workers) and the ones to train chosen;
3. train (parallel, workers): proxy accuracy; each result is told to the study as it arrives.
Measurement never overlaps training because phase 2 starts only after every task of phase 3 of the
previous batch has returned, and no task is submitted until it ends.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import torch
from optuna.trial import TrialState

from nas._io import write_atomic
from nas.errors import NasError, raise_if_stopped
from nas.evaluate import CostCounter, ProxyTrainer, Trainer, TrainingRecipe
from nas.latency import HardwareProfile, measure_latency
from nas.latency._arch_features import ArchitectureFeaturizer
from nas.search._acquisition import rung_dominators
from nas.search._executor import Executor, TaskFailed
from nas.search._screening import PreScreening
from nas.search._study import COMPLETE, FAILED, INFEASIBLE, SCREENED_OUT, STOPPED_EARLY, finished
from nas.search._tasks import prepare_candidate, train_candidate
from nas.space import Architecture, SearchSpace


@dataclass
class Candidate:
    trial: optuna.trial.Trial
    arch: Architecture
    started: float = field(default_factory=time.perf_counter)
    onnx: bytes | None = None
    resume: bytes | None = None  # training state paused at the last rung (multi-fidelity)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """What the progress bar shows; the driver calls `update` after every finished trial."""

    total: int
    done: int = 0
    feasible: int = 0
    pareto: int = 0
    update: Callable[["Progress"], None] = lambda p: None


class BatchDriver(PreScreening):
    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        profile: HardwareProfile,
        dataset,
        *,
        executor: Executor,
        run_dir: Path,
        seed: int,
        trainer: Trainer | None = None,
        latency_budget_ms: float | None = None,
        max_params: int | None = None,
        max_macs: int | None = None,
        batch_size: int = 8,
        on_batch_end: Callable[[], None] = lambda: None,
        latency_mode: str = "auto",
        robust_weight: float | None = None,
        prescreen: int = 1,
        prescreen_score: str = "naswot",
        rungs: tuple[int, ...] = (),
        stop_dominated_by: int = 2,
        stop_margin: float | None = None,
    ):
        self.rungs, self.stop_dominated_by, self.stop_margin = tuple(rungs), stop_dominated_by, stop_margin
        self.val_size = len(dataset.y_val)
        self._uncounted: int | None = None
        self.robust_weight = robust_weight
        self.prescreen, self.prescreen_score = prescreen, prescreen_score
        self.latency_mode = resolve_latency_mode(profile, latency_mode)
        self._featurizer = ArchitectureFeaturizer(dataset.num_classes)
        self._costs = CostCounter(dataset.num_classes)
        self.study, self.space, self.profile = study, space, profile
        self.executor, self.run_dir, self.seed = executor, run_dir, seed
        self.trainer = trainer or ProxyTrainer(TrainingRecipe())
        self.budget, self.max_params, self.max_macs = latency_budget_ms, max_params, max_macs
        self.batch_size = batch_size
        self.on_batch_end = on_batch_end
        self.num_classes = dataset.num_classes
        self.dataset_ref = executor.put(dataset)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)

    def run(self, total: int, progress: Progress) -> None:
        while True:
            raise_if_stopped()
            done = sum(finished(t) for t in self.study.get_trials(deepcopy=False))
            progress.done = done
            progress.update(progress)
            if done >= total:
                return
            keep = min(self.batch_size, total - done)
            self._run_batch([self._ask() for _ in range(keep * self.prescreen)], keep, progress)
            self.on_batch_end()

    # --- one batch ---------------------------------------------------------------------------
    def _ask(self) -> Candidate:
        trial = self.study.ask()
        arch = self.space.sample(trial)
        trial.set_user_attr("arch_hash", arch.hash)
        trial.set_user_attr("summary", arch.summary())
        trial.set_user_attr("architecture", arch.to_dict())
        return Candidate(trial, arch)

    def _run_batch(self, batch: list[Candidate], keep: int, progress: Progress) -> None:
        # Pre-screening asks `prescreen` x keep candidates: at most `keep` of them may count toward --trials
        # (duplicates, infeasible, failed and trained ones alike), so it never overshoots the budget.
        self._uncounted = keep if self.prescreen > 1 else None
        known = self._known_results()
        fresh: dict[str, Candidate] = {}
        twins: list[tuple[Candidate, str]] = []
        for cand in batch:
            if cand.arch.hash in known:
                self._tell_duplicate(cand, known[cand.arch.hash], progress)
            elif cand.arch.hash in fresh and self.prescreen > 1:  # one of them is enough to score
                cand.attrs["infeasible_reason"] = (
                    f"screened out: the same architecture as trial {fresh[cand.arch.hash].trial.number}"
                )
                self._tell(cand, TrialState.PRUNED, SCREENED_OUT, progress)
            elif cand.arch.hash in fresh:
                twins.append((cand, cand.arch.hash))
            else:
                fresh[cand.arch.hash] = cand
        to_train, rejected = self._screen(list(fresh.values()), progress)
        if self.prescreen > 1:
            to_train = self._select(to_train, self._uncounted, progress)
        if self.rungs:
            to_train = self._early_rungs(to_train, progress)
        self._train(to_train, progress)
        for (
            cand,
            reason,
        ) in rejected:  # after the trained ones: they fill only what is left of the batch's share
            self._tell_infeasible(cand, reason, progress)
        known = self._known_results()
        for cand, arch_hash in twins:
            if arch_hash in known:
                self._tell_duplicate(cand, known[arch_hash], progress)
            else:  # its twin failed: the same architecture, the same failure
                cand.attrs["duplicate_of"] = fresh[arch_hash].trial.number
                self._tell_failed(
                    cand, fresh[arch_hash].attrs.get("failure_reason", "its twin failed"), progress
                )

    def _screen(
        self, batch: list[Candidate], progress: Progress
    ) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
        """Phases 1 and 2: costs and latency, each followed by its constraints. To measure, the workers build,
        count and export every candidate in parallel, and the size constraints spare the measurement; to
        predict, the latency (cheaper) comes first and only candidates within the budget are counted, on the
        driver. Returns the feasible candidates and, with pre-screening, the infeasible ones with their
        reasons, told after training: the pool is sampled to be screened, so a constraint it violates must
        not use up the batch's share of --trials (they count only when too few candidates were feasible, so
        a search whose samples are all infeasible still ends)."""
        if self.latency_mode == "measured":
            steps = (self._prepared_on_workers, self._check_latency)
        else:
            steps = (self._check_latency, self._counted_here)
        feasible, rejected = batch, []
        for step in steps:
            passed = []
            for cand, reason in step(feasible, progress):
                if reason is None:
                    passed.append(cand)
                elif self.prescreen > 1:
                    rejected.append((cand, reason))
                else:
                    self._tell_infeasible(cand, reason, progress)
            feasible = passed
        return feasible, rejected

    def _prepared_on_workers(
        self, batch: list[Candidate], progress: Progress
    ) -> Iterator[tuple[Candidate, str | None]]:
        """Build, params and MACs (fvcore) and the ONNX graph to measure, in parallel on the workers; then
        --max-params and --max-macs: (candidate, why it is infeasible or None)."""
        handles = {
            self.executor.submit(prepare_candidate, c.arch, self.num_classes, self.seed): c for c in batch
        }
        for cand, out in list(self._as_completed(handles, "prepare", progress)):  # all end before measuring
            cand.onnx = out["onnx"]
            cand.attrs.update(
                params=out["params"], macs=out["macs"], prepare_seconds=round(out["seconds"], 3)
            )
            reason = self._size_violation(cand)
            if reason is not None:
                cand.onnx = None
            yield cand, reason

    def _counted_here(
        self, batch: list[Candidate], progress: Progress
    ) -> Iterator[tuple[Candidate, str | None]]:
        """Params and MACs on the driver, fvcore counting each distinct part of the networks once (far less
        than a worker's count of the whole network); then --max-params and --max-macs."""
        for cand in batch:
            start = time.perf_counter()
            try:
                costs = self._costs.costs(cand.arch)
            except Exception as exc:
                self._tell_failed(cand, f"prepare: {type(exc).__name__}: {exc}", progress)
                continue
            cand.attrs.update(
                params=costs.params, macs=costs.macs, prepare_seconds=round(time.perf_counter() - start, 3)
            )
            yield cand, self._size_violation(cand)

    def _check_latency(
        self, batch: list[Candidate], progress: Progress
    ) -> Iterator[tuple[Candidate, str | None]]:
        """Latency (measured on the exported graph, or predicted from the parts' graph features), then the
        budget: (candidate, why it is infeasible or None)."""
        for cand in batch:  # the measuring phase: nothing else runs on the workers now
            start = time.perf_counter()
            try:
                cand.attrs.update(self._latency(cand))
            except Exception as exc:  # a graph ORT cannot run is a failed candidate, not a crash
                self._tell_failed(cand, f"latency: {type(exc).__name__}: {exc}", progress)
                continue
            finally:
                cand.onnx = None
            cand.attrs["latency_seconds"] = round(time.perf_counter() - start, 3)
            latency = cand.attrs["latency_ms"]
            over = self.budget is not None and latency > self.budget
            yield cand, f"latency {latency:.3f} ms > budget {self.budget:g} ms" if over else None

    def _latency(self, cand: Candidate) -> dict[str, Any]:
        if self.latency_mode == "predicted":  # the exported graph's features, composed from cached parts
            features = self._featurizer.features(cand.arch)
            prediction = self.profile.predict(features)
            attrs = {
                "latency_ms": prediction.latency_ms,
                "latency_source": "predicted",
                "latency_low_ms": prediction.low_ms,
                "latency_high_ms": prediction.high_ms,
                "latency_extrapolated": round(prediction.extrapolated_share, 4),
            }
            if self.budget is not None and prediction.straddles(self.budget):
                attrs["latency_straddles_budget"] = (
                    True  # verify on the device: the interval holds the budget
                )
            return attrs
        m = measure_latency(cand.onnx, self.profile.measurement)
        return {
            "latency_ms": m.median_ms,
            "latency_spread": m.spread,
            "latency_stable": m.stable,
            "latency_attempts": m.attempts,
            "latency_source": "measured",
        }

    def _size_violation(self, cand: Candidate) -> str | None:
        if self.max_params is not None and cand.attrs["params"] > self.max_params:
            return f"params {cand.attrs['params']} > max {self.max_params}"
        if self.max_macs is not None and cand.attrs["macs"] > self.max_macs:
            return f"MACs {cand.attrs['macs']} > max {self.max_macs}"
        return None

    def _train(self, batch: list[Candidate], progress: Progress) -> None:
        # Largest first (MACs predict training time), so the batch does not end on one long straggler.
        batch = sorted(batch, key=lambda c: c.attrs["macs"], reverse=True)
        handles = {
            self.executor.submit(
                train_candidate, self.trainer, c.arch, self.dataset_ref, self.seed, None, c.resume
            ): c
            for c in batch
        }
        for cand, result in self._as_completed(handles, "train", progress):
            cand.resume = None
            checkpoint = self.run_dir / "checkpoints" / f"trial_{cand.trial.number:05d}_{cand.arch.hash}.pt"
            write_atomic(checkpoint, result.state_dict)
            cand.attrs.update(
                train_seconds=round(result.train_seconds, 3),
                eval_seconds=round(result.eval_seconds, 3),
                val_loss=result.val_loss,
                epochs=result.epochs,
                clean_accuracy=result.accuracy,
                checkpoint=str(checkpoint.relative_to(self.run_dir)),
            )
            objective = result.accuracy
            robust = result.robustness
            if self.robust_weight is not None and robust is None:
                self._tell_failed(
                    cand,
                    "train: robust search, but the trainer measured no corrupted accuracy "
                    "(TrainingRecipe.robust is off)",
                    progress,
                )
                continue
            if self.robust_weight is not None:
                cand.attrs.update(
                    corrupted_accuracy=robust["mean_corrupted_accuracy"],
                    worst_slice=robust["worst_slice"],
                    worst_slice_accuracy=robust["worst_slice_accuracy"],
                    robust_seconds=round(robust["seconds"], 3),
                )
                objective = (1 - self.robust_weight) * result.accuracy + self.robust_weight * robust[
                    "mean_corrupted_accuracy"
                ]
            self._tell(
                cand, TrialState.COMPLETE, COMPLETE, progress, values=[objective, cand.attrs["latency_ms"]]
            )

    def _early_rungs(self, batch: list[Candidate], progress: Progress) -> list[Candidate]:
        """Pareto-aware multi-fidelity: training pauses at each rung (after that many epochs of the full
        schedule) for a validation; a candidate dominated there (see `rung_dominators`) by `stop_dominated_by`
        others, of this batch or earlier ones, stops and is never trained to the end. Survivors resume where
        they paused. Latency is known before training, so dominance uses the real latency."""
        survivors = batch
        for epochs in self.rungs:
            ordered = sorted(survivors, key=lambda c: c.attrs["macs"], reverse=True)
            handles = {
                self.executor.submit(
                    train_candidate, self.trainer, c.arch, self.dataset_ref, self.seed, epochs, c.resume
                ): c
                for c in ordered
            }
            alive = []
            for cand, result in self._as_completed(handles, f"rung {epochs}", progress):
                cand.resume = result.resume_state
                cand.attrs.setdefault("rung_accuracy", {})[str(epochs)] = result.accuracy
                cand.attrs["rung_seconds"] = round(
                    cand.attrs.get("rung_seconds", 0.0) + result.train_seconds + result.eval_seconds, 3
                )
                alive.append(cand)
            points = [
                (t.user_attrs["rung_accuracy"][str(epochs)], t.user_attrs["latency_ms"])
                for t in self.study.get_trials(deepcopy=False)
                if str(epochs) in t.user_attrs.get("rung_accuracy", {})
                and t.user_attrs.get("duplicate_of") is None
            ]
            points += [(c.attrs["rung_accuracy"][str(epochs)], c.attrs["latency_ms"]) for c in alive]
            survivors = []
            for cand in alive:
                acc, lat = cand.attrs["rung_accuracy"][str(epochs)], cand.attrs["latency_ms"]
                better = rung_dominators(acc, lat, points, self.val_size, self.stop_margin)
                if better >= self.stop_dominated_by:
                    cand.attrs["infeasible_reason"] = (
                        f"stopped at the {epochs}-epoch rung: accuracy {acc:.3f} dominated "
                        f"by {better} candidates at {lat:.3f} ms or faster"
                        + ("" if self.stop_margin == 0 else " by more than the margin")
                    )
                    cand.resume = None
                    self._tell(cand, TrialState.PRUNED, STOPPED_EARLY, progress)
                else:
                    survivors.append(cand)
        return survivors

    def _as_completed(self, handles: dict[Any, Candidate], phase: str, progress: Progress):
        """Yield (candidate, result) as tasks finish; a task that failed fails its trial with the reason."""
        while handles:
            raise_if_stopped()  # a Ctrl-C or SIGTERM whose exception a library swallowed
            handle = self.executor.wait_one(list(handles))
            raise_if_stopped()
            cand = handles.pop(handle)
            try:
                result = self.executor.result(handle)
            except TaskFailed as exc:
                self._tell_failed(cand, f"{phase}: {exc}", progress)
                continue
            yield cand, result

    # --- telling -----------------------------------------------------------------------------
    def _known_results(self) -> dict[str, optuna.trial.FrozenTrial]:
        known = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            # A screened-out candidate was never evaluated: proposed again, it is a new candidate.
            if (
                t.user_attrs.get("duplicate_of") is None
                and "arch_hash" in t.user_attrs
                and t.user_attrs.get("status") != SCREENED_OUT
            ):
                known.setdefault(t.user_attrs["arch_hash"], t)
        return known

    def _tell_duplicate(
        self, cand: Candidate, original: optuna.trial.FrozenTrial, progress: Progress
    ) -> None:
        """The sampler proposed an architecture already evaluated: reuse its result (same seed, same answer)."""
        copied = {k: v for k, v in original.user_attrs.items() if k not in _NOT_COPIED}
        cand.attrs.update(copied)
        cand.attrs["duplicate_of"] = original.number
        status = copied.get("status", COMPLETE)
        state = TrialState.COMPLETE if original.state == TrialState.COMPLETE else TrialState.PRUNED
        self._tell(
            cand, state, status, progress, values=original.values if state == TrialState.COMPLETE else None
        )

    def _tell_infeasible(self, cand: Candidate, reason: str, progress: Progress) -> None:
        cand.attrs["infeasible_reason"] = reason
        self._tell(cand, TrialState.PRUNED, INFEASIBLE, progress)

    def _tell_failed(self, cand: Candidate, reason: str, progress: Progress) -> None:
        cand.attrs["failure_reason"] = reason
        self._tell(cand, TrialState.FAIL, FAILED, progress)

    def _tell(self, cand: Candidate, state: TrialState, status: str, progress: Progress, values=None) -> None:
        if self._uncounted is not None and status != SCREENED_OUT:
            if self._uncounted <= 0:  # beyond this batch's share of --trials: recorded, not counted
                reason = (
                    cand.attrs.get("failure_reason")
                    or cand.attrs.get("infeasible_reason")
                    or (
                        f"a duplicate of trial {cand.attrs['duplicate_of']}"
                        if "duplicate_of" in cand.attrs
                        else status
                    )
                )
                cand.attrs["infeasible_reason"] = (
                    f"screened out: this batch's share of --trials was used ({reason})"
                )
                state, status, values = TrialState.PRUNED, SCREENED_OUT, None
            else:
                self._uncounted -= 1
        cand.attrs["status"] = status
        cand.attrs["wall_seconds"] = round(time.perf_counter() - cand.started, 3)
        for key, value in cand.attrs.items():
            cand.trial.set_user_attr(key, value)
        self.study.tell(cand.trial, values=values, state=state)
        progress.done += status != SCREENED_OUT
        if status == COMPLETE:
            progress.feasible += 1
        progress.update(progress)


# What a duplicate does not inherit: it spent no time of its own.
_NOT_COPIED = (
    "requeued_from",
    "train_seconds",
    "eval_seconds",
    "prepare_seconds",
    "latency_seconds",
    "robust_seconds",
    "rung_seconds",
    "wall_seconds",
    "checkpoint",
)


def resolve_latency_mode(profile: HardwareProfile, mode: str) -> str:
    """`auto`: measure on the local device, predict for a remote one. Impossible choices are user errors."""
    if mode == "auto":
        mode = "measured" if profile.latency == "measured" else "predicted"
    if mode == "measured" and profile.latency != "measured":
        raise NasError(
            f"profile {profile.name!r} is a remote device: its latency can only be predicted (--latency predicted)"
        )
    if mode == "predicted" and getattr(profile, "latency_model", None) is None:
        raise NasError(
            f"profile {profile.name!r} has no latency model to predict with: fit one with `nas profile fit`, "
            "or use --latency measured"
        )
    return mode


def load_checkpoint(run_dir: Path, relative: str) -> dict[str, torch.Tensor]:
    """A trial's weights; a missing or damaged checkpoint (truncated, overwritten) is a one-line NasError."""
    path = run_dir / relative
    try:
        return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError(
            f"{path}: checkpoint missing; restore it, or re-run the search in a new --out"
        ) from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        pickle.UnpicklingError,
    ):  # torch's words name its zip reader
        raise NasError(
            f"{path}: damaged checkpoint (truncated, or not the weights nas wrote); restore it from a "
            "backup, or re-run the search in a new --out to train that candidate again"
        ) from None
