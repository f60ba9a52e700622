"""`--latency device` on a real two-node Ray cluster on this machine: a head with two CPUs for the workers,
and a device node with no CPU advertising `nas-device:x86-cpu`, whose Python cannot import torch, fvcore
or optuna (as on a board with only the measuring dependencies). Every latency must come from that node,
no training may run there, and a device node killed mid-search must fail its trials after the timeout,
never hang, and leave a run that resumes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
RESOURCE = "nas-device:x86-cpu"
# The device node's sitecustomize: torch, fvcore and optuna cannot be imported there, as on a board.
BLOCKER = """\
import sys

class _NotOnTheDevice:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "fvcore", "optuna"):
            raise ImportError(f"{name} is not installed on the device")
        return None

sys.meta_path.insert(0, _NotOnTheDevice())
"""
# The head notices a device node that was killed within about a second instead of Ray's default 15 s.
FAST_HEALTH_CHECK = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "300",
    "RAY_health_check_timeout_ms": "300",
    "RAY_health_check_failure_threshold": "3",
}

# Waits for a live node advertising RESOURCE, checks that a task placed there cannot import torch, and
# prints that node's id.
FIND_DEVICE = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
deadline = time.time() + 90
while True:
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get(sys.argv[2], 0) > 0]
    if nodes or time.time() > deadline:
        break
    time.sleep(0.3)

@ray.remote(num_cpus=0, resources={sys.argv[2]: 1})
def torch_importable():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True

print(json.dumps({"node_ids": [n["NodeID"] for n in nodes], "torch": ray.get(torch_importable.remote())}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`ray start --block ...` in a process group of its own, so killing the group ends that node only."""
    return subprocess.Popen(
        [RAY, "start", "--block", "--node-ip-address=127.0.0.1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def stop_node(node: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop the node's process group (only the processes this test started); killed when slow to stop."""
    if node.poll() is None:
        os.killpg(node.pid, sig)
        try:
            node.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(node.pid, signal.SIGKILL)  # what is left of the group: a raylet, its workers
    except ProcessLookupError:
        pass
    node.wait(timeout=30)


class Cluster:
    """A Ray head (two CPUs) and device nodes started and stopped by this test, by their process ids."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
        site = tmp / "device_site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCKER)
        self.device_env = {**self.env, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
        self.temp_dir = tempfile.mkdtemp(prefix="nasray", dir="/tmp")  # short: Ray's socket paths
        self.head = start_node(
            [
                "--head",
                "--include-dashboard=false",
                f"--port={self.port}",
                "--num-cpus=2",
                "--object-store-memory=100000000",
                f"--temp-dir={self.temp_dir}",
            ],
            {**self.env, **FAST_HEALTH_CHECK},
        )
        deadline = time.time() + 60
        while True:  # ready once the GCS port accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.head.poll() is None and time.time() < deadline, "ray head did not start"
                time.sleep(0.3)
        self.device: subprocess.Popen | None = None
        self.device_id: str | None = None

    def start_device(self) -> str:
        """Start a device node and return its node id once the cluster sees it."""
        self.device = start_node(
            [
                f"--address={self.address}",
                "--num-cpus=0",
                f"--resources={json.dumps({RESOURCE: 1})}",
                "--object-store-memory=80000000",
            ],
            self.device_env,
        )
        done = subprocess.run(
            [sys.executable, "-c", FIND_DEVICE, self.address, RESOURCE],
            capture_output=True,
            text=True,
            timeout=150,
            env=self.env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        found = json.loads(done.stdout.strip().splitlines()[-1])
        assert len(found["node_ids"]) == 1, found
        assert found["torch"] is False  # the device node's Python is a board's: no torch there
        self.device_id = found["node_ids"][0]
        return self.device_id

    def kill_device(self) -> None:
        """The device disappears: its raylet and workers are killed outright."""
        stop_node(self.device, signal.SIGKILL)

    def close(self) -> None:
        for node in (self.device, self.head):
            if node is not None:
                stop_node(node)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_device()
        yield cluster
    finally:
        cluster.close()


def search_command(cluster, space, dataset, out: Path, trials: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--space",
        str(space),
        "--dataset",
        str(dataset),
        "--trials",
        str(trials),
        "--population",
        "2",
        "--prescreen",
        "1",
        "--latency-budget-ms",  # the device node here is this busy machine: no budget from the model
        "none",
        "--workers",  # one training at a time: two searches share the head's two CPUs
        "1",
        "--epochs",
        "1",
        "--train-subset",
        "32",
        "--latency",
        "device",
        "--ray-address",
        cluster.address,
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def rows(run: Path) -> list[dict[str, str]]:
    path = run / "trials.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def test_auto_with_the_device_node_present_is_hybrid(tmp_path, cluster, tiny_space_file, tiny_dataset_file):
    """The default --latency auto finds the node: the pool is predicted, what trains is measured there."""
    run = tmp_path / "run"
    command = search_command(cluster, tiny_space_file, tiny_dataset_file, run, 2, "--latency", "auto")
    command[command.index("--prescreen") + 1] = "2"
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=cluster.env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["latency_mode"] == "hybrid"
    trials = rows(run)
    trained = [t for t in trials if t["status"] == "complete"]
    assert trained and all(
        t["latency_source"] == "device" and t["latency_node_id"] == cluster.device_id for t in trained
    )
    assert [t["latency_calibrated_on"] for t in trained] == [str(i) for i in range(len(trained))]
    assert {t["latency_source"] for t in trials if t["status"] == "screened_out"} <= {"predicted"}


def trained_sources(run: Path) -> list[str]:
    """latency_source of each trained trial, in trial order."""
    return [t["latency_source"] for t in rows(run) if t["status"] == "complete"]


def test_no_device_node_for_the_profile_is_refused_at_start(
    tmp_path, cluster, tiny_space_file, tiny_dataset_file
):
    run = tmp_path / "run"
    command = search_command(
        cluster, tiny_space_file, tiny_dataset_file, run, 1, "--profile", "raspberry-pi-4"
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=cluster.env)
    assert done.returncode == 1, done.stderr[-3000:]  # a runtime failure, as an unreachable cluster
    assert done.stderr.count("\n") == 1
    assert "no Ray node advertises 'nas-device:raspberry-pi-4'" in done.stderr
    assert "ray start --address=HEAD:PORT --num-cpus=0" in done.stderr
    assert not (run / "config.json").exists()


# A measurement whose process dies (counted in a file), and a graph ONNX Runtime refuses, on the device node.
CRASHES = """
import json, os, sys
import ray
from nas.latency import MeasurementSettings
from nas.search import DeviceMeasurer

address, attempts_file = sys.argv[1], sys.argv[2]

def crash(graph, settings):
    with open(attempts_file, "a") as f:
        f.write("x")
    os._exit(1)

ray.init(address=address, log_to_driver=False, logging_level="ERROR")
settings = MeasurementSettings(warmup_runs=2, rounds=2, round_ms=1.0)
crashing = DeviceMeasurer(ray, "x86-cpu", settings, timeout_s=30, measure=crash)
refused = DeviceMeasurer(ray, "x86-cpu", settings, timeout_s=30)
print(json.dumps({
    "crash": list(crashing.measure_all([b"graph"])),
    "refused": list(refused.measure_all([b"not an onnx graph"])),
    "attempts": len(open(attempts_file).read()),
}))
"""


def test_a_crashing_measurement_is_retried_once_then_fails_with_its_reason(tmp_path, cluster):
    done = subprocess.run(
        [sys.executable, "-c", CRASHES, cluster.address, str(tmp_path / "attempts")],
        capture_output=True,
        text=True,
        timeout=120,
        env=cluster.env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Ray may print its own "(raylet) A worker died ..." lines around the result.
    out = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert out["attempts"] == 2  # the first run and one retry
    [(index, result, reason)] = out["crash"]
    assert index == 0 and result is None
    assert reason.startswith("device: the measuring process died twice (")
    [(index, result, reason)] = out["refused"]
    assert result is None and reason.startswith("device: ") and "\n" not in reason
    assert "died" not in reason  # a graph ONNX Runtime refuses fails at once, not retried


def test_a_device_killed_mid_search_fails_its_trials_then_the_run_resumes(
    tmp_path, cluster, tiny_space_file, tiny_dataset_file
):
    """Two searches on the device when it is killed: --latency device fails the trials it measured there,
    --latency hybrid (started first, on the same cluster) keeps their predictions, marked."""
    run, hybrid_run = tmp_path / "run", tmp_path / "hybrid"
    # One worker each (search_command): each search holds one of the head's two CPUs, so neither waits for the
    # other's trainings.
    command = search_command(cluster, tiny_space_file, tiny_dataset_file, run, 4, "--device-timeout", "3")
    hybrid_command = search_command(  # more trials than it will reach: stopped once one fell back
        cluster, tiny_space_file, tiny_dataset_file, hybrid_run, 500, "--device-timeout", "3"
    )
    hybrid_command[hybrid_command.index("device")] = "hybrid"
    hybrid_command[hybrid_command.index("--prescreen") + 1] = "2"

    def start(c):
        return subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)

    def wait_for(what, process, done, seconds=240):
        deadline = time.time() + seconds
        while not done():
            assert process.poll() is None, f"{what} ended: {process.communicate()[1][-3000:]}"
            assert time.time() < deadline, f"{what}: not within {seconds} s"
            time.sleep(0.1)

    hybrid = start(hybrid_command)
    search = None
    try:
        wait_for("hybrid", hybrid, lambda: any(t["status"] == "complete" for t in rows(hybrid_run)))
        search = start(command)  # the hybrid search goes on measuring on the device meanwhile
        wait_for("device", search, lambda: any(t["status"] == "complete" for t in rows(run)))
        first_device = cluster.device_id
        cluster.kill_device()
        _, stderr = search.communicate(timeout=180)  # it ends: never waits for the device forever
        wait_for("hybrid", hybrid, lambda: "fallback" in trained_sources(hybrid_run))
        hybrid.terminate()  # it would go on predicting; what it did once the device left is written
        hybrid.communicate(timeout=60)
    finally:
        for s in (search, hybrid):
            if s is not None and s.poll() is None:
                s.kill()
    sources = trained_sources(hybrid_run)
    assert sources[0] == "device" and "fallback" in sources, sources
    for t in (t for t in rows(hybrid_run) if t["status"] == "complete"):
        if t["latency_source"] == "fallback":  # trained with the prediction the model made before measuring
            assert t["latency_ms"] == t["latency_predicted_ms"] and t["latency_node_id"] == ""
        else:
            assert t["latency_node_id"] == first_device
    trials = rows(run)
    failed = [t for t in trials if t["status"] == "failed"]
    assert failed, trials
    for t in failed:
        assert t["failure_reason"].startswith("device: "), t["failure_reason"]
        assert "\n" not in t["failure_reason"]
    assert any("within 3 s" in t["failure_reason"] for t in failed)
    complete = [t for t in trials if t["status"] == "complete"]
    assert complete and {t["latency_node_id"] for t in complete} == {first_device}
    for t in complete:  # measured there, before it left; training ran on the head (no torch on that node)
        assert t["latency_source"] == "device" and t["latency_host"]
        assert float(t["latency_ms"]) > 0 and float(t["latency_spread"]) >= 0

    # The device comes back (a new node): re-running with more trials resumes; the failed trials stay failed.
    second_device = cluster.start_device()
    more = search_command(cluster, tiny_space_file, tiny_dataset_file, run, 5, "--device-timeout", "3")
    done = subprocess.run(more, capture_output=True, text=True, timeout=240, env=cluster.env)
    assert done.returncode == 0, done.stderr[-3000:]
    after = rows(run)
    assert [t["number"] for t in after if t["status"] == "failed"] == [t["number"] for t in failed]
    resumed = [t for t in after if t["status"] == "complete" and int(t["number"]) > int(trials[-1]["number"])]
    assert resumed and {t["latency_node_id"] for t in resumed} == {second_device}
