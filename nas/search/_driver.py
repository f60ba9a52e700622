"""The ask/tell driver: one batch of candidates at a time, in three phases.

1. costs: to measure latency, the workers build, count params and MACs (fvcore) and export an ONNX
   graph of each candidate in parallel; to predict it, the driver counts params and MACs itself, once per
   distinct part of the networks (`CostCounter`), and only for candidates within the latency budget.
   The size constraints reject candidates here;
2. latency (the driver alone, every worker idle): measured with ONNX Runtime here or on a device node
   that joined the Ray cluster (`_device_nodes`), or predicted by the profile's latency model from the
   graph features (composed from the architecture's cached parts, equal to the exported graph's, so a
   predicted latency needs no export; being cheaper than the costs, it comes first); the latency budget
   rejects candidates here. With pre-screening, a `Selector` then chooses which feasible candidates train;
3. train (parallel, workers): proxy accuracy, through the fidelity schedule's rungs; each result is told
   to the study as it arrives.
Measurement never overlaps training because phase 2 starts only after every task of phase 3 of the
previous batch has returned, and no task is submitted until it ends.
That barrier is needed only when latency is measured on this machine and the workers cannot be frozen
while it is (`_freeze`: a cluster address, another system, a custom executor); otherwise `SteadyDriver`
(`_steady_driver`) runs the same strategies without it.

The driver is composed: the cheap objectives of phases 1 and 2 (`CheapObjectives`, `_cheap_objectives`)
with their `Constraint` filters (`_constraints`), a `Selector` (`_selection`), the `FidelitySchedule`
(`_fidelity`) and the `TrialLedger` (`_ledger`), which alone tells Optuna and counts the trial budget.
`BatchDriver.from_config` builds them from a `SearchConfig`. While a driver runs, the study commits to
SQLite's write-ahead log (`fast_commits`, `_study`): a trial is about 50 commits.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import optuna

from nas._io import CHECKPOINT_SUFFIX, write_atomic
from nas.errors import raise_if_stopped
from nas.evaluate import ProxyTrainer, Trainer, TrainingRecipe
from nas.latency import HardwareProfile
from nas.plugins import loaded_plugins
from nas.records import Attr
from nas.search._candidate import Candidate, Progress
from nas.search._cheap_objectives import CheapObjectives, resolve_latency_mode
from nas.search._config import AUTO_BUDGET, SearchConfig
from nas.search._constraints import Constraint, constraints_from, first_violation
from nas.search._default_budget import budget_for_run, resolve_latency_budget
from nas.search._executor import Executor, TaskFailed
from nas.search._exits import expected_latency_attrs
from nas.search._fidelity import FidelitySchedule
from nas.search._ledger import TrialLedger
from nas.search._selection import SELECTORS, SelectionContext, Selector
from nas.search._study import fast_commits, save_trials
from nas.search._tasks import score_candidate, train_candidate, with_plugins
from nas.space import SearchSpace


class BatchDriver:
    """Asks the sampler for batches until --trials candidates are finished; `from_config` composes it."""

    def __init__(
        self,
        config: SearchConfig,
        *,
        study: optuna.Study,
        space: SearchSpace,
        profile: HardwareProfile,
        dataset,
        executor: Executor,
        trainer: Trainer,
        selector: Selector | None,
        constraints: Sequence[Constraint],
        schedule: FidelitySchedule,
        ledger: TrialLedger,
        on_batch_end: Callable[[], None] = lambda: None,
    ):
        """selector: chooses what trains when the batch is oversampled (config.prescreen > 1); None: all."""
        self.config, self.study, self.space, self.profile = config, study, space, profile
        self.executor, self.trainer, self.on_batch_end = executor, trainer, on_batch_end
        self.selector, self.schedule, self.ledger = selector, schedule, ledger
        self.run_dir, self.seed = config.run_dir, config.seed
        self.budget = config.latency_budget_ms
        self.oversampled = config.prescreen > 1
        self.batch_size = max(config.population, 2 * executor.workers)
        self.cheap = CheapObjectives(  # refuses here, at the start, a latency mode the profile cannot give
            config,
            profile=profile,
            num_classes=dataset.num_classes,
            constraints=constraints,
            ledger=ledger,
            executor=executor,
            submit=self._submit,
            as_completed=self._as_completed,
        )
        self.plugins = tuple(loaded_plugins())  # what every worker loads before a task
        self.num_classes = dataset.num_classes
        self.dataset_ref = executor.put(dataset)
        self.selection = SelectionContext(
            score=self._score,
            screen_out=ledger.screened_out,
            trained_points=ledger.trained_points,
            budget_ms=self.budget,
            run_dir=self.run_dir,
        )
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(
        cls,
        config: SearchConfig,
        *,
        study: optuna.Study,
        space: SearchSpace,
        profile: HardwareProfile,
        dataset,
        executor: Executor,
        trainer: Trainer | None = None,
        on_batch_end: Callable[[], None] = lambda: None,
        callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], Any]] = (),
    ) -> "BatchDriver":
        """The driver with the strategies `config` names: chosen here, once. `callbacks`: called with each
        trial that counts toward --trials (`TrialLedger`)."""
        if config.latency_budget_ms == AUTO_BUDGET:  # nas.search resolves it first; a driver built alone here
            config, auto = resolve_latency_budget(config, space, profile, dataset.num_classes)
            config = budget_for_run(config, auto, resolve_latency_mode(profile, config.latency))
        return cls(
            config,
            study=study,
            space=space,
            profile=profile,
            dataset=dataset,
            executor=executor,
            trainer=trainer or ProxyTrainer(TrainingRecipe()),
            selector=SELECTORS.create(config.prescreen_score) if config.prescreen > 1 else None,
            constraints=constraints_from(config),
            schedule=FidelitySchedule.from_config(config, len(dataset.y_val)),
            ledger=TrialLedger(study, callbacks=callbacks),
            on_batch_end=on_batch_end,
        )

    def run(self, total: int, progress: Progress) -> None:
        """Search until `total` trials count toward --trials, the study committing fast meanwhile."""
        with fast_commits(self.study):
            self._search(total, progress)

    def _search(self, total: int, progress: Progress) -> None:
        """Batches: ask, screen, train, tell (see the module's docstring)."""
        self.ledger.progress = progress
        while True:
            raise_if_stopped()
            progress.done = self.ledger.finished_count()
            progress.update(progress)
            if progress.done >= total:
                return
            keep = min(self.batch_size, total - progress.done)
            self._run_batch([self._ask() for _ in range(keep * self.config.prescreen)], keep)
            self.on_batch_end()

    # --- one batch ---------------------------------------------------------------------------
    def _ask(self) -> Candidate:
        trial = self.study.ask()
        arch = self.space.sample(trial)
        trial.set_user_attr(Attr.ARCH_HASH, arch.hash)
        trial.set_user_attr(Attr.SUMMARY, arch.summary())
        trial.set_user_attr(Attr.ARCHITECTURE, arch.to_dict())
        save_trials(self.study)  # parameters and architecture in one commit: re-queued if the driver dies
        return Candidate(trial, arch)

    def _run_batch(self, batch: list[Candidate], keep: int) -> None:
        # An oversampled batch asks `prescreen` x keep candidates: at most `keep` of them may count toward
        # --trials (duplicates, infeasible, failed and trained ones alike), so it never overshoots the budget.
        ledger = self.ledger
        ledger.start_batch(keep if self.oversampled else None)
        known = ledger.known_results()
        fresh: dict[str, Candidate] = {}
        twins: list[tuple[Candidate, str]] = []
        for cand in batch:
            if cand.arch.hash in known:
                ledger.duplicate(cand, known[cand.arch.hash])
            elif cand.arch.hash in fresh and self.oversampled:  # one of them is enough to score
                ledger.screened_out(
                    cand, f"the same architecture as trial {fresh[cand.arch.hash].trial.number}"
                )
            elif cand.arch.hash in fresh:
                twins.append((cand, cand.arch.hash))
            else:
                fresh[cand.arch.hash] = cand
        to_train, rejected = self._screen(list(fresh.values()))
        if self.selector is not None:
            to_train = self.selector.select(to_train, ledger.share_left, self.selection)
        to_train, late = self.cheap.confirm(to_train)  # hybrid: measured on the device before it trains
        rejected = [*rejected, *late]
        for epochs in self.schedule.rungs:
            to_train = self._rung(to_train, epochs)
        self._train(to_train)
        for cand, reason in rejected:  # after the trained ones: they fill only what is left of the share
            ledger.infeasible(cand, reason)
        known = ledger.known_results()
        for cand, arch_hash in twins:
            if arch_hash in known:
                ledger.duplicate(cand, known[arch_hash])
            else:  # its twin failed: the same architecture, the same failure
                cand.attrs[Attr.DUPLICATE_OF] = fresh[arch_hash].trial.number
                ledger.failed(cand, fresh[arch_hash].attrs.get(Attr.FAILURE_REASON, "its twin failed"))

    def _screen(self, batch: list[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
        """Phases 1 and 2: costs and latency, each followed by its constraints, in the order of
        `CheapObjectives.phases`. Returns the feasible candidates and, when oversampled, the infeasible ones with their
        reasons, told after training: the pool is sampled to be screened, so a constraint it violates must
        not use up the batch's share of --trials (they count only when too few candidates were feasible, so
        a search whose samples are all infeasible still ends)."""
        feasible, rejected = batch, []
        for step in self.cheap.phases:
            passed = []
            for cand, reason in step(feasible):
                if reason is None:
                    passed.append(cand)
                elif self.oversampled:
                    rejected.append((cand, reason))
                else:
                    self.ledger.infeasible(cand, reason)
            feasible = passed
        return feasible, rejected

    def _score(self, candidates: list[Candidate], score: str, attr: str) -> list[Candidate]:
        """The training-free `score` of each candidate, computed on the workers, stored in `attr`; its
        seconds add to the candidate's prepare_seconds. Returns the scored candidates in their order; a
        failure fails its trial."""
        handles = {
            self._submit(score_candidate, c.arch, self.num_classes, self.seed, self.dataset_ref, score): c
            for c in candidates
        }
        scored = set()
        for cand, out in self._as_completed(handles, "score"):
            cand.attrs[attr] = out["score"]
            cand.attrs[Attr.PREPARE_SECONDS] = round(cand.attrs[Attr.PREPARE_SECONDS] + out["seconds"], 3)
            scored.add(id(cand))
        return [c for c in candidates if id(c) in scored]

    def _rung(self, batch: list[Candidate], epochs: int) -> list[Candidate]:
        """Train to the `epochs` rung and validate (see `FidelitySchedule`); the dominated stop there, the
        others resume from the state they paused in."""
        handles = {self._submit_training(c, epochs): c for c in longest_first(batch)}
        alive = []
        for cand, result in self._as_completed(handles, f"rung {epochs}"):
            self._record_rung(cand, epochs, result)
            alive.append(cand)
        points = self.ledger.rung_points(epochs) + [_rung_point(c, epochs) for c in alive]
        return [cand for cand in alive if not self._stops_at_rung(cand, epochs, points)]

    def _record_rung(self, cand: Candidate, epochs: int, result) -> None:
        """Keep the state the training paused in and the rung's accuracy and seconds."""
        cand.resume = result.resume_state
        cand.attrs.setdefault(Attr.RUNG_ACCURACY, {})[str(epochs)] = result.accuracy
        cand.attrs[Attr.RUNG_SECONDS] = round(
            cand.attrs.get(Attr.RUNG_SECONDS, 0.0) + result.train_seconds + result.eval_seconds, 3
        )

    def _stops_at_rung(self, cand: Candidate, epochs: int, points: list[tuple[float, float]]) -> bool:
        """Whether `cand` is dominated at the rung among `points` (its own included): if so, it is told as
        stopped early."""
        accuracy, latency = _rung_point(cand, epochs)
        reason = self.schedule.stop_reason(epochs, accuracy, latency, points)
        if reason is None:
            return False
        cand.resume = None
        self.ledger.stopped_early(cand, reason)
        return True

    def _train(self, batch: list[Candidate]) -> None:
        handles = {self._submit_training(c, None): c for c in longest_first(batch)}
        for cand, result in self._as_completed(handles, "train"):
            self._finish_training(cand, result)

    def _finish_training(self, cand: Candidate, result) -> None:
        """Write the checkpoint and tell the trained candidate's objective."""
        robust_weight = self.config.robust_weight
        cand.resume = None
        name = f"trial_{cand.trial.number:05d}_{cand.arch.hash}{CHECKPOINT_SUFFIX}"
        checkpoint = self.run_dir / "checkpoints" / name
        write_atomic(checkpoint, result.state_dict)
        cand.attrs.update(
            {
                Attr.TRAIN_SECONDS: round(result.train_seconds, 3),
                Attr.TRAIN_DEVICE: result.device,
                Attr.EVAL_SECONDS: round(result.eval_seconds, 3),
                Attr.VAL_LOSS: result.val_loss,
                Attr.EPOCHS: result.epochs,
                Attr.CLEAN_ACCURACY: result.accuracy,
                Attr.CHECKPOINT: str(checkpoint.relative_to(self.run_dir)),
            }
        )
        objective, robust = result.accuracy, result.robustness
        if getattr(result, "exits", None) is not None:  # early exits: the expected latency is the objective
            try:
                cand.attrs.update(expected_latency_attrs(cand.attrs, result.exits, self.budget))
            except ValueError as exc:
                self.ledger.failed(cand, f"latency: {exc}")
                return
            reason = first_violation(self.cheap.constraints, "latency", cand.attrs)  # judged on it now
            if reason is not None:
                self.ledger.infeasible(cand, reason)
                return
        if robust_weight is not None and robust is None:
            self.ledger.failed(
                cand,
                "train: robust search, but the trainer measured no corrupted accuracy "
                "(TrainingRecipe.robust is off)",
            )
            return
        if robust_weight is not None:
            cand.attrs.update(
                {
                    Attr.CORRUPTED_ACCURACY: robust["mean_corrupted_accuracy"],
                    Attr.WORST_SLICE: robust["worst_slice"],
                    Attr.WORST_SLICE_ACCURACY: robust["worst_slice_accuracy"],
                    Attr.ROBUST_SECONDS: round(robust["seconds"], 3),
                }
            )
            objective = (1 - robust_weight) * result.accuracy + robust_weight * robust[
                "mean_corrupted_accuracy"
            ]
        self.ledger.complete(cand, objective)

    # --- the workers -------------------------------------------------------------------------
    def _submit(self, task: Callable, *args: Any) -> Any:
        """Run `task(*args)` on a worker, after the worker has loaded this search's plugins."""
        return self.executor.submit(with_plugins, self.plugins, task, *args)

    def _submit_training(self, cand: Candidate, epochs: int | None) -> Any:
        """Train `cand` to the `epochs` rung (None: to the end), from the state it paused in, if any."""
        return self._submit(
            train_candidate, self.trainer, cand.arch, self.dataset_ref, self.seed, epochs, cand.resume
        )

    def _as_completed(self, handles: dict[Any, Candidate], phase: str):
        """Yield (candidate, result) as tasks finish; a task that failed fails its trial with the reason."""
        while handles:
            raise_if_stopped()  # a Ctrl-C or SIGTERM whose exception a library swallowed
            handle = self.executor.wait_one(list(handles))
            raise_if_stopped()
            cand = handles.pop(handle)
            try:
                result = self.executor.result(handle)
            except TaskFailed as exc:
                self.ledger.failed(cand, f"{phase}: {exc}")
                continue
            yield cand, result


def longest_first(cands: Sequence[Candidate]) -> list[Candidate]:
    """The order trainings start in: the longest expected training first, so that the last to start are
    short and the workers finish together instead of waiting for one long straggler. A latency measured on
    this machine predicts a training's time best (Spearman 0.93 against MACs' 0.84 over the trainings of
    benchmarks/search_throughput.py), so it orders the candidates when all of them have one; MACs otherwise
    (a predicted latency is another device's, a device node's is another machine's)."""
    measured_here = all(c.attrs.get(Attr.LATENCY_SOURCE) == "measured" for c in cands)
    key = Attr.LATENCY_MS if measured_here else Attr.MACS
    return sorted(cands, key=lambda c: c.attrs[key], reverse=True)


def _rung_point(cand: Candidate, epochs: int) -> tuple[float, float]:
    """(accuracy at the `epochs` rung, latency) of a candidate validated there."""
    return cand.attrs[Attr.RUNG_ACCURACY][str(epochs)], cand.attrs[Attr.LATENCY_MS]
