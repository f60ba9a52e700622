"""Latency measured on the device itself: a board that joined the search's Ray cluster as a node.

The device node advertises the custom resource `nas-device:<profile name>` with a count of 1 and no CPUs
(`ray start --address=HEAD:PORT --num-cpus=0 --resources='{"nas-device:raspberry-pi-4": 1}'`). Each
candidate's ONNX graph goes to a task that asks for that resource and no CPU: Ray runs one measurement at
a time per device (the count is 1), and nothing that asks for a CPU (building, exporting, training) is
ever scheduled there.

Each graph travels without its weights (`nas.latency.strip_weights`: the shapes decide the latency,
and the weights are most of the bytes), in chunks of CHUNK per task, all submitted at once: the device
measures one chunk while the next ones arrive.

Faults: a device node that leaves mid-search leaves its measurements pending; they wait up to `timeout_s`
for a node with the resource to come back, then their trials fail with a one-line reason. The absence is
remembered across batches, so a search whose device is gone fails each later measurement at once instead
of waiting again. A measuring process that dies is retried once by Ray (`max_retries=1`), then the trial
fails with the reason.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

from nas.errors import NasError, NasRuntimeError, first_line, raise_if_stopped
from nas.latency import (
    MeasurementSettings,
    WeightlessGraph,
    device_resource,
    full_graph,
    measure_on_device,
    strip_weights,
)
from nas.records import Attr

# How often the driver wakes while measurements are pending (seconds), to notice a stop; and how often it
# then asks the cluster whether the device node is still there (at most a quarter of the timeout): each
# question costs the head and the driver some CPU, which on one machine is taken from the measurement.
_POLL_S = 0.5
_NODE_CHECK_S = 2.0
# Graphs measured by one task: each task's scheduling wakes Ray's processes, which on a small device (or
# one machine standing in for it) take CPU from the measurement; a few graphs per task keep that rare.
CHUNK = 8


def measure_chunk(
    measure: Callable[[bytes, MeasurementSettings], dict],
    graphs: Sequence[WeightlessGraph | bytes],
    settings: MeasurementSettings,
) -> list[tuple[dict | None, str | None]]:
    """What a device task runs: each graph (its weights filled back) measured in turn; a graph the runtime
    refuses is that graph's one-line reason, not the chunk's (a process that dies takes the chunk with it,
    and Ray retries it)."""
    out: list[tuple[dict | None, str | None]] = []
    for graph in graphs:
        try:
            out.append((measure(full_graph(graph), settings), None))
        except Exception as exc:  # noqa: BLE001 - the graph's failure, reported with its trial
            out.append((None, f"device: {type(exc).__name__}: {first_line(exc)}"))
    return out


# In the device node's environment: keep one idle worker process there. A node with no CPUs keeps none
# (Ray's soft limit is its CPU count), so each batch's measurements would start a new Python process and
# import ONNX Runtime again (about 1-5 s here, more on a board).
KEEP_WORKER = "RAY_num_workers_soft_limit=1"


def start_command(resource: str) -> str:
    """The command that makes a machine a device node of the cluster at HEAD:PORT."""
    return f"{KEEP_WORKER} ray start --address=HEAD:PORT --num-cpus=0 --resources='{{\"{resource}\": 1}}'"


def device_present(executor: Any, profile_name: str) -> bool:
    """Whether the executor is Ray's and a live node of its cluster advertises `nas-device:<profile>`."""
    ray = getattr(executor, "ray", None)
    if ray is None:
        return False
    return bool(DeviceMeasurer(ray, profile_name, MeasurementSettings(), timeout_s=0).nodes())


def device_attrs(out: dict[str, Any]) -> dict[str, Any]:
    """A trial's latency facts from a `measure_on_device` result."""
    return {
        Attr.LATENCY_MS: out["median_ms"],
        Attr.LATENCY_SPREAD: out["spread"],
        Attr.LATENCY_STABLE: out["stable"],
        Attr.LATENCY_ATTEMPTS: out["attempts"],
        Attr.LATENCY_SOURCE: "device",
        Attr.LATENCY_NODE_ID: out["node_id"],
        Attr.LATENCY_HOST: out["host"],
        Attr.LATENCY_SECONDS: round(out["seconds"], 3),
    }


class DeviceMeasurer:
    """Measures ONNX graphs on the Ray nodes that advertise `nas-device:<profile>`, one at a time each."""

    def __init__(
        self,
        ray: Any,
        profile_name: str,
        settings: MeasurementSettings,
        timeout_s: float,
        measure: Callable[[bytes, MeasurementSettings], dict] = measure_on_device,
        weightless: bool = True,
    ):
        """measure: what runs on the device for each graph (`measure_on_device`). weightless: send each graph
        without its weights (`strip_weights`); False sends them as they are (to compare, in a benchmark)."""
        self._ray = ray
        self.resource = device_resource(profile_name)
        self.settings = settings
        self.timeout_s = timeout_s
        self._absent_since: float | None = None  # when the last device node was seen leaving
        self._measure = measure
        self._send = strip_weights if weightless else (lambda graph: graph)
        self._task = ray.remote(
            num_cpus=0, resources={self.resource: 1}, max_retries=1, retry_exceptions=False
        )(measure_chunk)

    @classmethod
    def connect(cls, executor: Any, profile: Any, timeout_s: float, mode: str = "device") -> "DeviceMeasurer":
        """The measurer for `profile`'s device nodes in the executor's Ray cluster; a user error when the
        executor is not Ray's or no node advertises the resource (said in one line, with the fix). `mode`:
        the --latency that asks for it, as the message names it."""
        from nas.search._executor import RayExecutor

        if not isinstance(executor, RayExecutor):
            raise NasError(
                f"--latency {mode} measures on Ray nodes: it needs the Ray executor, not {type(executor).__name__}"
            )
        measurer = cls(executor.ray, profile.name, profile.measurement, timeout_s)
        if (
            not measurer.nodes()
        ):  # the settings are fine, the cluster lacks the device: exit 1, like no cluster
            raise NasRuntimeError(
                f"--latency {mode}: no Ray node advertises {measurer.resource!r}; on the device run "
                f"`{start_command(measurer.resource)}` and pass --ray-address HEAD:PORT"
            )
        return measurer

    def nodes(self) -> list[dict[str, Any]]:
        """The live nodes advertising the resource."""
        return [
            node
            for node in self._ray.nodes()
            if node.get("Alive") and node.get("Resources", {}).get(self.resource, 0) > 0
        ]

    def measure_all(self, graphs: Sequence[bytes]) -> Iterator[tuple[int, dict | None, str | None]]:
        """Measure every graph on the device, all submitted at once (Ray queues them on the resource, so
        transfers overlap measurements). Yields (index, result of `measure_on_device`, None) or
        (index, None, the one-line reason it failed), in the order they finish."""
        if self._device_gone_too_long():
            for index in range(len(graphs)):
                yield index, None, self._gone_reason()
            return
        pending = {  # each chunk submitted as soon as its graphs are stripped: the first starts at once
            self._task.remote(
                self._measure, [self._send(g) for g in graphs[start : start + CHUNK]], self.settings
            ): list(range(start, min(start + CHUNK, len(graphs))))
            for start in range(0, len(graphs), CHUNK)
        }
        check_s, checked = min(_NODE_CHECK_S, max(self.timeout_s / 4, 0.1)), time.monotonic()
        while pending:
            raise_if_stopped()
            ready, _ = self._ray.wait(list(pending), num_returns=1, timeout=min(_POLL_S, check_s))
            for ref in ready:
                indices = pending.pop(ref)
                outcomes, reason = self._result(ref)
                for index, (result, graph_reason) in zip(
                    indices, outcomes or [(None, reason)] * len(indices)
                ):
                    yield index, result, graph_reason
            if ready or time.monotonic() - checked < check_s:
                continue
            checked = time.monotonic()
            if not self._device_gone_too_long():
                continue
            for ref in pending:  # the device left and did not come back: give its measurements up
                self._ray.cancel(ref, force=False)
            for index in sorted(i for indices in pending.values() for i in indices):
                yield index, None, self._gone_reason()
            pending.clear()

    def _device_gone_too_long(self) -> bool:
        """Whether no node has advertised the resource for timeout_s (the clock starts when one is missed)."""
        if self.nodes():
            self._absent_since = None
            return False
        now = time.monotonic()
        if self._absent_since is None:
            self._absent_since = now
        return now - self._absent_since >= self.timeout_s

    def _gone_reason(self) -> str:
        return (
            f"device: no Ray node advertises {self.resource!r} (the device node left and did not come back "
            f"within {self.timeout_s:g} s)"
        )

    def _result(self, ref: Any) -> tuple[dict | None, str | None]:
        from ray import exceptions as rex

        try:
            return self._ray.get(ref), None
        except rex.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return None, f"device: {type(cause).__name__}: {first_line(cause)}"
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError) as exc:
            return None, f"device: the measuring process died twice ({type(exc).__name__})"
        except rex.RayError as exc:
            return None, f"device: {type(exc).__name__}: {first_line(exc)}"
