"""--ray-address is checked, never ignored, and joins a token-authenticated cluster with the user's token."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def test_a_given_token_turns_on_token_mode_and_nothing_turns_it_off(monkeypatch):
    from nas.search._executor import _use_given_ray_token

    given = {"RAY_AUTH_TOKEN_PATH": "/secrets/ray-token"}
    _use_given_ray_token(given)
    assert given["RAY_AUTH_MODE"] == "token"
    chosen = {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "t"}  # the user's explicit choice stands
    _use_given_ray_token(chosen)
    assert chosen["RAY_AUTH_MODE"] == "disabled"
    nothing_given: dict[str, str] = {}  # Ray's own default decides (2.60: token auth for a local Ray)
    _use_given_ray_token(nothing_given)
    assert "RAY_AUTH_MODE" not in nothing_given


JOIN_AND_RUN_ONE_TASK = """
import sys
from nas.search import RayExecutor

def negate(x):
    return -x

executor = RayExecutor(address=sys.argv[1])
print(executor.result(executor.submit(negate, 3)))
executor.close()
"""


def test_a_token_auth_cluster_is_joined_with_the_users_token_file(tmp_path):
    """A real `ray start --head` with RAY_AUTH_MODE=token; the search process is given only the token file."""
    token = secrets.token_hex(16)
    token_file = tmp_path / "ray-token"
    token_file.write_text(token)
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head_env = {
        **base,
        "HOME": str(tmp_path / "head-home"),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
    }
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=1", "--include-dashboard=false",
         "--object-store-memory=100000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=head_env, start_new_session=True,
    )  # fmt: skip
    try:
        client_env = {**base, "HOME": str(tmp_path / "client-home"), "RAY_AUTH_TOKEN_PATH": str(token_file)}
        deadline = time.time() + 60
        while True:  # ready once the GCS port accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.time() < deadline, "ray head did not start"
                time.sleep(0.3)
        done = subprocess.run(
            [sys.executable, "-c", JOIN_AND_RUN_ONE_TASK, f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120, env=client_env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip() == "-3"
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the cluster is this test's alone; its session dir is in /tmp
        head.wait(timeout=30)
