"""An executor that runs every task in the test's own process: no Ray start-up for a unit test."""

from __future__ import annotations

from nas.search import Executor, TaskFailed


class _Handle:
    value = None
    error = None


class SerialExecutor(Executor):
    """Runs every task in this process, one after another."""

    workers = 1

    def put(self, value):
        return value

    def submit(self, fn, *args):
        handle = _Handle()
        try:
            handle.value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - mirrors RayExecutor: a task failure, not a crash
            handle.error = f"{type(exc).__name__}: {exc}"
        return handle

    def wait_one(self, handles):
        return handles[0]

    def result(self, handle):
        if handle.error is not None:
            raise TaskFailed(handle.error)
        return handle.value
