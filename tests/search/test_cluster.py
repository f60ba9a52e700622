"""`--ray-address` joins a Ray cluster that already runs (here a head node started with `ray start`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    port = free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--object-store-memory=200000000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:  # ready once the GCS port accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None and time.time() < deadline, "ray head did not start"
            time.sleep(0.5)
    yield address
    os.killpg(head.pid, signal.SIGTERM)
    try:  # a graceful `ray start --block` shutdown takes half a minute; the cluster is this test's alone
        head.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)


def test_search_on_an_existing_cluster(tmp_path, ray_head, tiny_space_file, tiny_dataset_file):
    command = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(tiny_space_file),
        "--dataset",
        str(tiny_dataset_file),
        "--trials",
        "3",
        "--population",
        "3",
        "--epochs",
        "1",
        "--train-subset",
        "32",
        "--ray-address",
        ray_head,
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "RAY_AUTH_MODE": "disabled"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "trials.csv").read_text().count("complete") == 3
    # The cluster outlives the search: the driver only disconnected from it.
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import ray; ray.init(address='{ray_head}'); print(ray.cluster_resources()['CPU'])",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    assert again.returncode == 0 and "2.0" in again.stdout, again.stderr[-2000:]


def test_unreachable_cluster_is_a_one_line_error(tmp_path, tiny_space_file, tiny_dataset_file):
    command = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(tiny_space_file),
        "--dataset",
        str(tiny_dataset_file),
        "--trials",
        "1",
        "--ray-address",
        f"127.0.0.1:{free_port()}",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "RAY_AUTH_MODE": "disabled"}
    )
    assert done.returncode == 1, done.stderr[-3000:]  # a runtime failure, not a usage error
    assert done.stderr.startswith("nas: error: cannot reach the Ray cluster at 127.0.0.1:")
    assert done.stderr.count("\n") == 1
