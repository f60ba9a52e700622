"""The cheap objectives of a batch, each followed by its constraints, before anything trains.

As archai filters by cheap objectives before expensive ones: costs (params, MACs, memory) and latency
cost milliseconds to a second per candidate, a training minutes, so a candidate a size or latency bound
rejects is never trained. To measure latency, the workers build, count and export every candidate in
parallel, and the size constraints spare the measurement; to predict it, the latency (cheaper still)
comes first and only candidates within the budget are counted, here on the driver. `BatchDriver` holds a
`CheapObjectives` and runs its `phases` in order.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Iterator, Sequence

from nas.errors import NasError
from nas.evaluate import CostCounter, Memory, MemoryCounter, graph_memory
from nas.latency import ArchitectureFeaturizer, HardwareProfile, measure_latency
from nas.records import Attr
from nas.search._candidate import Candidate
from nas.search._config import SearchConfig
from nas.search._constraints import (
    Constraint,
    DeviceBudget,
    first_violation,
    latency_violation,
    measure_fleet,
    with_device_nodes,
)
from nas.search._device_nodes import DeviceMeasurer, device_attrs
from nas.search._executor import Executor
from nas.search._exits import exit_segment_attrs, screening_attrs
from nas.search._hybrid import HybridLatency, prediction_attrs
from nas.search._ledger import TrialLedger
from nas.search._tasks import export_untrained, prepare_candidate

Verdicts = Iterator[tuple[Candidate, "str | None"]]  # (candidate, why it is infeasible or None)


class CheapObjectives:
    """Costs, memory and latency of candidates, and the constraints on them. A candidate whose costs or
    latency cannot be had fails its trial (in the ledger) and is not yielded."""

    def __init__(
        self,
        config: SearchConfig,
        *,
        profile: HardwareProfile,
        num_classes: int,
        constraints: Sequence[Constraint],
        ledger: TrialLedger,
        executor: Executor,
        submit: Callable[..., Any],
        as_completed: Callable[[dict[Any, Candidate], str], Iterator[tuple[Candidate, Any]]],
    ):
        """submit, as_completed: the driver's way to run a task on a worker and collect it (the worker
        loads the search's plugins first; a task that failed fails its trial)."""
        self.profile, self.num_classes, self.seed = profile, num_classes, config.seed
        self.constraints, self.ledger = tuple(constraints), ledger
        self._submit, self._as_completed = submit, as_completed
        self.budget = config.latency_budget_ms
        self.latency_mode = resolve_latency_mode(profile, config.latency)
        measurer = (  # refuses here, at the start, when no device node is in the cluster
            DeviceMeasurer.connect(executor, profile, config.device_timeout, self.latency_mode)
            if self.latency_mode in ("device", "hybrid")
            else None
        )
        self.device = measurer if self.latency_mode == "device" else None
        if measurer is not None:  # the fleet's devices (--budget) with a node are measured there too
            self.constraints = with_device_nodes(self.constraints, executor, config.device_timeout)
        self._featurizer = ArchitectureFeaturizer(num_classes)
        if self.latency_mode == "hybrid":  # ... and, in hybrid mode, their models refitted as they are
            self.constraints = HybridLatency.calibrated_fleet(
                self.constraints, ledger.study.get_trials(deepcopy=False), self._featurizer
            )
        self.hybrid = (  # refits from the device measurements a resumed run already has
            HybridLatency(
                profile,
                measurer,
                self._featurizer,
                export=self._exported_on_workers,
                budget_ms=self.budget,
                fleet=self.constraints,
                trials=ledger.study.get_trials(deepcopy=False),
            )
            if self.latency_mode == "hybrid"
            else None
        )
        self._costs = CostCounter(num_classes)
        # What the latency phase runs inside: nothing for the batch driver (its workers idle then) or a
        # prediction; the steady driver's freeze of the workers when it measures here (nas.search._freeze).
        self.quiet: Callable[[], ContextManager[Any]] = nullcontext
        # The fleet's budgets judged on a prediction: a candidate with exits has its segments predicted there too.
        self._fleet = [
            c.profile for c in self.constraints if isinstance(c, DeviceBudget) and c.measurer is None
        ]
        # Predicted latency exports nothing: memory costs an export per distinct part, paid only when a
        # memory bound needs it (measured latency reads it from the graph the workers export anyway).
        bounded = config.max_peak_memory_kb is not None or config.max_weights_kb is not None
        self._memory = MemoryCounter(num_classes) if bounded else None

    @property
    def phases(self) -> tuple[Callable[[list[Candidate]], Verdicts], ...]:
        """The cheap phases in the order that spares the most work: costs first when the workers export
        a graph to measure anyway, latency first when it is only predicted."""
        if self.latency_mode == "measured":  # budgets on a prediction first: they spare the rest
            return (self._predicted_budgets, self._prepared_on_workers, self._check_latency)
        if self.latency_mode == "device":
            return (self._prepared_on_workers, self._check_latency)
        return (self._check_latency, self._counted_here)

    def _predicted_budgets(self, batch: list[Candidate]) -> Verdicts:
        """The budgets checked on a profile's predicted latency (`DeviceBudget` without a device node), before
        the workers export and this machine measures: a candidate they reject costs neither."""
        predicted = [c for c in self.constraints if isinstance(c, DeviceBudget) and c.measurer is None]
        for cand in batch:
            if not predicted or cand.arch.exits:  # early exits: judged on the segments, in the latency phase
                yield cand, None
                continue
            try:
                reason = latency_violation(predicted, cand, self._featurizer)
            except Exception as exc:
                self.ledger.failed(cand, f"latency: {type(exc).__name__}: {exc}")
                continue
            yield cand, reason

    def _prepared_on_workers(self, batch: list[Candidate]) -> Verdicts:
        """Build, params and MACs (fvcore) and the ONNX graph to measure, in parallel on the workers; then
        the size constraints."""
        handles = {self._submit(prepare_candidate, c.arch, self.num_classes, self.seed): c for c in batch}
        for cand, out in list(self._as_completed(handles, "prepare")):  # all end before measuring
            start = time.perf_counter()
            try:  # from the exported graph, here: a few ms
                memory = graph_memory(out["onnx"])
            except Exception as exc:
                self.ledger.failed(cand, f"memory: {type(exc).__name__}: {exc}")
                continue
            cand.onnx = out["onnx"]
            cand.attrs.update(
                {
                    Attr.PARAMS: out["params"],
                    Attr.MACS: out["macs"],
                    **_memory_attrs(memory),
                    Attr.PREPARE_SECONDS: round(out["seconds"] + time.perf_counter() - start, 3),
                }
            )
            reason = first_violation(self.constraints, "costs", cand.attrs)
            if reason is not None:
                cand.onnx = None
            yield cand, reason

    def _exported_on_workers(self, cands: Sequence[Candidate]) -> Iterator[tuple[Candidate, bytes]]:
        """(candidate, its untrained ONNX graph), exported in parallel on the workers; a candidate whose
        export failed fails its trial and is left out."""
        handles = {self._submit(export_untrained, c.arch, self.num_classes, self.seed): c for c in cands}
        yield from self._as_completed(handles, "export")

    def _counted_here(self, batch: list[Candidate]) -> Verdicts:
        """Params and MACs on the driver, fvcore counting each distinct part of the networks once (far less
        than a worker's count of the whole network), memory when a bound asks for it; then the size
        constraints."""
        for cand in batch:
            start = time.perf_counter()
            try:
                costs = self._costs.costs(cand.arch)
                memory = self._memory.memory(cand.arch) if self._memory is not None else None  # part by part
            except Exception as exc:
                self.ledger.failed(cand, f"prepare: {type(exc).__name__}: {exc}")
                continue
            cand.attrs.update(
                {
                    Attr.PARAMS: costs.params,
                    Attr.MACS: costs.macs,
                    **(_memory_attrs(memory) if memory is not None else {}),
                    Attr.PREPARE_SECONDS: round(time.perf_counter() - start, 3),
                }
            )
            yield cand, first_violation(self.constraints, "costs", cand.attrs)

    def _check_latency(self, batch: list[Candidate]) -> Verdicts:
        """Latency (measured on the exported graph, or predicted from the parts' graph features), then the
        latency constraints."""
        if self.device is not None:
            yield from self._measured_on_device(batch)
            return
        for cand in batch:  # the measuring phase: nothing else runs on the workers now
            start = time.perf_counter()
            try:
                with self.quiet():
                    cand.attrs.update(self._latency(cand))
                    cand.attrs.update(  # early exits: each segment's latency too (nas.search._exits)
                        exit_segment_attrs(
                            cand.arch,
                            self.num_classes,
                            self.profile,
                            self.latency_mode,
                            self.seed,
                            self._fleet,
                        )
                    )
                if cand.arch.exits:  # what pre-screening ranks it by (nas.search._exits)
                    cand.attrs.update(
                        screening_attrs(cand.attrs, self.ledger.study.get_trials(deepcopy=False))
                    )
            except Exception as exc:  # a graph ORT cannot run is a failed candidate, not a crash
                self.ledger.failed(cand, f"latency: {type(exc).__name__}: {exc}")
                continue
            finally:
                cand.onnx = None
            cand.attrs[Attr.LATENCY_SECONDS] = round(time.perf_counter() - start, 3)
            yield cand, latency_violation(self.constraints, cand, self._featurizer)  # with the fleet's

    def _latency(self, cand: Candidate) -> dict[str, Any]:
        if self.hybrid is not None:  # predicted by the model as the device's measurements refitted it
            return self.hybrid.predicted_attrs(cand)
        if self.latency_mode == "predicted":  # the exported graph's features, composed from cached parts
            return prediction_attrs(self.profile.predict(self._featurizer.features(cand.arch)), self.budget)
        m = measure_latency(cand.onnx, self.profile.measurement)
        return {
            Attr.LATENCY_MS: m.median_ms,
            Attr.LATENCY_SPREAD: m.spread,
            Attr.LATENCY_STABLE: m.stable,
            Attr.LATENCY_ATTEMPTS: m.attempts,
            Attr.LATENCY_SOURCE: "measured",
        }

    def confirm(self, chosen: list[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
        """The candidates chosen for training, each measured on the device node in a hybrid search (the
        model refitted on it), then the latency constraints again: (those that still train, the rejected
        with the reason). A candidate the device could not measure fails its trial. Other modes: as they are."""
        if self.hybrid is None or not chosen:
            return chosen, []
        kept, rejected = [], []
        for cand, failure in self.hybrid.measure(chosen):
            if failure is not None:
                self.ledger.failed(cand, failure)
                continue
            reason = first_violation(self.constraints, "latency", cand.attrs)
            if reason is None:
                kept.append(cand)
            else:
                rejected.append((cand, reason))
        return kept, rejected

    def _measured_on_device(self, batch: list[Candidate]) -> Verdicts:
        """Every graph of the batch sent to the device node at once, measured there one at a time; then the
        latency constraints. A measurement the device could not give fails its trial with the reason."""
        graphs = [cand.onnx for cand in batch]
        for cand in batch:
            cand.onnx = None
        fleet_failures = measure_fleet(self.constraints, batch, graphs)
        for index, out, reason in self.device.measure_all(graphs):
            cand = batch[index]
            if out is None or index in fleet_failures:
                self.ledger.failed(cand, reason or fleet_failures[index])
                continue
            cand.attrs.update(device_attrs(out))
            yield cand, latency_violation(self.constraints, cand, self._featurizer)  # with the fleet's


def _memory_attrs(memory: Memory) -> dict[str, float]:
    return {Attr.PEAK_MEMORY_KB: memory.peak_memory_kb, Attr.WEIGHTS_KB: memory.weights_kb}


def resolve_latency_mode(profile: HardwareProfile, mode: str, device_node: bool = False) -> str:
    """`auto`: hybrid when a device node advertises the profile (`device_node`) and the profile has a model,
    else measure on the local device and predict for a remote one; `device`: measure on the device node
    that advertises the profile (any profile: its measurement protocol); `hybrid`: predict, and measure on
    that node what trains (`_hybrid`). Impossible choices are user errors."""
    if mode == "auto" and device_node and getattr(profile, "latency_model", None) is not None:
        mode = "hybrid"
    if mode == "auto":
        mode = "measured" if profile.latency == "measured" else "predicted"
    if mode == "measured" and profile.latency != "measured":
        raise NasError(
            f"profile {profile.name!r} is a remote device: its latency can only be predicted (--latency predicted)"
        )
    if mode in ("predicted", "hybrid") and getattr(profile, "latency_model", None) is None:
        raise NasError(
            f"profile {profile.name!r} has no latency model to predict with: fit one with `nas profile fit`, "
            f"or use --latency {'device' if mode == 'hybrid' else 'measured'}"
        )
    return mode
