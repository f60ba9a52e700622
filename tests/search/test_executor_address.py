"""A process already connected to Ray still honours --ray-address: it is checked, never ignored."""

from __future__ import annotations

import socket

import pytest

from nas.errors import NasError
from nas.search import RayExecutor


def test_an_unreachable_address_is_refused_even_when_ray_is_already_running(ray_executor):
    with pytest.raises(NasError, match="cannot reach the Ray cluster at 127.0.0.1:9"):
        RayExecutor(address="127.0.0.1:9")


def test_an_address_of_another_cluster_is_refused_when_connected_to_one(ray_executor):
    with socket.socket() as listener:  # something answers there, but it is not this process's cluster
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        other = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(NasError, match=f"--ray-address {other}: this process is already connected"):
            RayExecutor(address=other)


def test_the_address_of_the_connected_cluster_is_accepted(ray_executor):
    import ray

    executor = RayExecutor(address=ray.get_runtime_context().gcs_address)
    assert executor.workers == ray_executor.workers
    executor.close()  # not its Ray to shut down
    assert ray.is_initialized()
