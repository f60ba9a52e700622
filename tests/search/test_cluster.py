"""`--ray-address` to a cluster that is not there. Searches on a cluster that runs (a head and a second node
started with `ray start`, several searches one after another on it) are tested in test_device_node.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
