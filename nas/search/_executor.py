"""Where evaluations run. Parallelism wraps the evaluators; it does not change them.

`Executor` is the extension point; `RayExecutor` runs each call as a Ray task, on an embedded local
Ray (started and stopped here) or on an existing cluster (`address`), and starts every worker's imports
as soon as Ray is up (`warm_up`). A task that raises is not
retried (the candidate is failed with the reason); a worker process that dies is retried by Ray up
to `max_retries` times. Each task asks for one CPU; a training also asks for `gpus_per_trial` of a GPU
(`task_resources`), so Ray packs that many trainings per GPU and gives each its own.
"""

from __future__ import annotations

import logging
import os
import socket
from abc import ABC, abstractmethod
from typing import Any, Callable

from nas.errors import NasError, first_line
from nas.search._tasks import task_resources, warm_up


class TaskFailed(Exception):
    """A task ended without a result: its exception, or a worker that died more than max_retries times."""


class Executor(ABC):
    workers: int
    gpus_per_trial: float = 0.0  # the GPU share a training asks for (an executor may ignore it)

    @property
    def gpus(self) -> float:
        """The GPUs the workers have: this machine's CUDA devices, unless the executor knows better."""
        import torch

        return float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0

    @abstractmethod
    def put(self, value: Any) -> Any:
        """Share a large read-only value (the dataset) with every task once."""

    @abstractmethod
    def submit(self, fn: Callable, *args: Any) -> Any:
        """Start fn(*args) on a worker with one CPU (a training: and `gpus_per_trial` of a GPU); returns a
        handle."""

    @abstractmethod
    def wait_one(self, handles: list[Any]) -> Any:
        """Block until one of `handles` is finished and return it."""

    @abstractmethod
    def result(self, handle: Any) -> Any:
        """The value of a finished handle, or TaskFailed with a one-line reason."""

    def close(self) -> None:
        """Release the workers."""

    def local_raylet_pid(self) -> int | None:
        """The raylet process whose children are all the workers, when the executor started it on this
        machine (what lets `nas.search._freeze` stop them while latency is measured); None otherwise."""
        return None


class FinishedRunExecutor(Executor):
    """Where a re-run of a finished search runs nothing: its trials are all told, so no Ray starts (seconds of
    start-up and every worker's imports, for a table printed again)."""

    workers = 1
    gpus = 0.0

    def put(self, value):
        return None

    def submit(self, fn, *args):
        raise RuntimeError("a finished run has nothing to submit")

    def wait_one(self, handles):
        raise RuntimeError("a finished run has nothing to wait for")

    def result(self, handle):
        raise RuntimeError("a finished run has no results to give")


WARM_UP_SETTLE_S = 15.0  # the longest a shutdown waits for workers still importing torch and the package


class RayExecutor(Executor):
    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        max_retries: int = 2,
        object_store_mb: int = 512,
        gpus_per_trial: float = 0.0,
    ):
        _use_given_ray_token(os.environ)
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        import ray
        from ray import exceptions as ray_exceptions

        # Ray before 2.52 has no token authentication (nor this exception)
        AuthenticationError = getattr(ray_exceptions, "AuthenticationError", ())

        self._ray = ray
        self.max_retries = max_retries
        self.gpus_per_trial = gpus_per_trial
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._address = address
        self._owns_ray = not ray.is_initialized()
        if address:
            _check_reachable(address)
        if not self._owns_ray and address:
            _check_same_cluster(ray, address)
        if self._owns_ray:
            kwargs: dict[str, Any] = dict(
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
            sigterm = _sigterm_handler()
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    # address="local": always a fresh embedded Ray, even if `ray start` left one running here.
                    ray.init(
                        address="local",
                        num_cpus=workers or os.cpu_count() or 1,
                        object_store_memory=object_store_mb * 1024 * 1024,
                        **kwargs,
                    )
            except AuthenticationError as exc:
                raise NasError(_authentication_problem(address, exc)) from None
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if address == "auto":
                    raise NasError(
                        "--ray-address auto: no Ray cluster is running on this machine; start one with "
                        "`ray start --head` and pass the address it prints (HOST:PORT), or leave "
                        "--ray-address out for a local Ray"
                    ) from None
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                # Ray reports a missing or refused token only as a failed connection, after ~20 s of retries.
                hint = f"; {_TOKEN_HINT}" if address and isinstance(exc, ConnectionError) else ""
                raise NasError(f"cannot start {where}: {first_line(exc)}{hint}") from None
            finally:
                _restore_sigterm(sigterm)
            _keep_ray_messages_off_stdout()
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cluster_cpus) if workers else cluster_cpus
        self._remote: dict[tuple[Callable, float], Any] = {}
        # Each worker imports torch and the package (seconds) now, while the driver opens the study and asks
        # the first candidates; nothing waits for these tasks (a failed import fails the first real task).
        self.warming = [self.submit(warm_up) for _ in range(self.workers)]

    @property
    def ray(self):
        """The `ray` module this executor initialised (what a task pinned to a device node is submitted with)."""
        return self._ray

    def put(self, value):
        return self._ray.put(value)

    def local_raylet_pid(self) -> int | None:
        """The process id of the raylet of the Ray node this executor started on this machine, whose
        children are all the workers (`nas.search._freeze`); None when it joined an existing Ray or cluster
        (other nodes' workers are out of reach) or Ray does not say."""
        if not self._owns_ray or self._address:
            return None
        try:
            node = self._ray._private.worker._global_node  # Ray's record of the processes it started here
            return int(node.all_processes["raylet"][0].process.pid)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            return None

    @property
    def gpus(self) -> float:
        """The cluster's GPU resources (Ray counts a machine's CUDA devices when it starts there)."""
        return float(self._ray.cluster_resources().get("GPU", 0))

    def submit(self, fn, *args):
        resources = task_resources(fn, args, self.gpus_per_trial)
        key = (fn, resources.get("num_gpus", 0))
        if key not in self._remote:
            self._remote[key] = self._ray.remote(
                **resources, max_retries=self.max_retries, retry_exceptions=False
            )(fn)
        return self._remote[key].remote(*args)

    def wait_one(self, handles):
        ready, _ = self._ray.wait(list(handles), num_returns=1)
        return ready[0]

    def result(self, handle):
        from ray import exceptions as rex

        try:
            return self._ray.get(handle)
        except rex.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise TaskFailed(f"{type(cause).__name__}: {first_line(cause)}") from None
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError) as exc:
            raise TaskFailed(f"worker died {self.max_retries + 1} times ({type(exc).__name__})") from None
        except rex.RayError as exc:  # e.g. OutOfMemoryError from Ray's memory monitor, after its own retries
            raise TaskFailed(f"{type(exc).__name__}: {first_line(exc)}") from None

    def close(self):
        if self._owns_ray and self._ray.is_initialized():
            self._settle_warm_up()
            self._ray.shutdown()

    def _settle_warm_up(self, timeout_s: float = WARM_UP_SETTLE_S) -> None:
        """Wait (bounded) for warm-up tasks still importing: cut off by the shutdown, such a task fails with its
        owner gone, and Ray's core worker then logs "Failed to push error to driver" to stderr, beside the one
        line a start refused right after Ray came up prints. Once a search has trained, they are long done."""
        pending = getattr(self, "warming", [])
        if pending:
            self._ray.wait(pending, num_returns=len(pending), timeout=timeout_s)


def _use_given_ray_token(environ) -> None:
    """Ray's own settings decide authentication; the package never turns it off. One inference: a token the
    user gave (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH) with RAY_AUTH_MODE unset means token mode, since Ray
    itself enables it only for a local cluster and would join an explicit address without the token."""
    given_token = environ.get("RAY_AUTH_TOKEN") or environ.get("RAY_AUTH_TOKEN_PATH")
    if given_token and not environ.get("RAY_AUTH_MODE"):
        environ["RAY_AUTH_MODE"] = "token"


_TOKEN_HINT = (
    "a cluster with Ray token authentication needs its token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
    "(or RAY_AUTH_MODE=token with the token in ~/.ray/auth_token)"
)


def _authentication_problem(address: str | None, exc: Exception) -> str:
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    return f"cannot start {where}: {first_line(exc)}; {_TOKEN_HINT}"


def _sigterm_handler():
    """The SIGTERM handler a host program installed in Python (the CLI's: exit 143 after clean-up), if any."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGTERM)
    return handler if callable(handler) else None


def _restore_sigterm(handler) -> None:
    """ray.init replaces SIGTERM's handler (Python's, then its core worker's C++ one, which dumps a stack and
    aborts): give the host program its own back."""
    import signal

    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def _keep_ray_messages_off_stdout() -> None:
    """Ray prints the raylet's error messages (a worker that died, ...) to stdout, coloured, from a background
    thread: they would land inside a Pareto table or a pipe. They go to stderr, as plain `(raylet) ...` lines;
    the trial that lost its worker records the failure itself."""
    import re
    import sys

    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    if getattr(ray_worker.print_to_stdstream, "_nas_stderr", False) or not hasattr(
        ray_worker, "print_to_stdstream"
    ):
        return
    ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

    def to_stderr(data, ignore_prefix=False):
        try:
            pid = data.get("pid", "ray")
            for line in data.get("lines", ()):
                for part in str(line).splitlines():
                    if part.strip():
                        print(f"({pid}) {ansi.sub('', part)}", file=sys.stderr)
        except Exception:  # a message that cannot be printed is not worth a crashed listener thread
            pass

    to_stderr._nas_stderr = True
    ray_worker.print_to_stdstream = to_stderr


def _check_same_cluster(ray, address: str) -> None:
    """A process already connected to Ray (a notebook, a host program) searches on that cluster: an address
    naming another one is a mistake to say, not to ignore."""
    current = ray.get_runtime_context().gcs_address
    wanted = address.split("://", 1)[-1]
    if address != "auto" and _host_port(wanted) != _host_port(current):
        raise NasError(
            f"--ray-address {address}: this process is already connected to the Ray cluster at {current}; "
            "leave --ray-address out to search there, or run in a new process"
        )


def _host_port(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return ("127.0.0.1" if host in ("localhost", "") else host), port


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast: ray.init keeps retrying an address where nothing listens for minutes."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise NasError(
            f"cannot reach the Ray cluster at {address}: nothing answers there ({exc.strerror or exc})"
        ) from None
