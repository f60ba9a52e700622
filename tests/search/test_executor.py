"""The Ray executor: its workers start their imports as soon as Ray is up."""

from __future__ import annotations

import os


def test_every_worker_is_warmed_up_as_ray_starts(ray_executor):
    pids = [ray_executor.result(handle) for handle in ray_executor.warming]
    assert len(pids) == ray_executor.workers and os.getpid() not in pids


def test_close_waits_for_the_warm_up_tasks_before_shutting_ray_down():
    """A warm-up cut off by the shutdown fails with its owner gone, and Ray logs that to stderr."""
    from nas.search._executor import WARM_UP_SETTLE_S, RayExecutor

    calls = []

    class FakeRay:
        def is_initialized(self):
            return True

        def wait(self, refs, num_returns, timeout):
            calls.append(("wait", list(refs), num_returns, timeout))
            return refs, []

        def shutdown(self):
            calls.append(("shutdown",))

    executor = object.__new__(RayExecutor)
    executor._ray, executor._owns_ray, executor.warming = FakeRay(), True, ["warm-1", "warm-2"]
    executor.close()
    assert calls == [("wait", ["warm-1", "warm-2"], 2, WARM_UP_SETTLE_S), ("shutdown",)]
