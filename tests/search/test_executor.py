"""The Ray executor: its workers start their imports as soon as Ray is up."""

from __future__ import annotations

import os


def test_every_worker_is_warmed_up_as_ray_starts(ray_executor):
    pids = [ray_executor.result(handle) for handle in ray_executor.warming]
    assert len(pids) == ray_executor.workers and os.getpid() not in pids
