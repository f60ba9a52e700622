"""Benchmark: measuring through a device node costs no more than measuring in-process.

`--latency device` sends each candidate's ONNX graph to a Ray task pinned to the node that advertises
`nas-device:x86-cpu` (here a second Ray node on this machine). This benchmark measures the same random
networks of the mobilenet space twice with the x86-cpu protocol: in this process, one after another, and
through a device node (all submitted at once, without their weights, which the node fills back, measured
there one at a time, as the search does), and reports the throughput ratio and the bytes sent. Target:
through the device node >= 90% of the in-process throughput (transfer and scheduling overhead under 10%).
Run it on a quiet machine: both sides share its CPUs.

    python benchmarks/device_node.py               # ~1 min; writes results/benchmarks/device_node.json
    python benchmarks/device_node.py --graphs 4 --out /tmp/device_node.json   # a quick check
    python benchmarks/device_node.py --with-weights-too   # + passes that send the graphs with their weights
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/NAME.py`: import the benchmarks package from the root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._harness import Benchmark, BenchmarkError, run_main, write_result  # noqa: E402

BENCHMARK = Benchmark(cost="cheap", seconds=140)

PROFILE = "x86-cpu"


class RandomChoices:
    """Samples a space uniformly (the `suggest_categorical` a space asks of an Optuna trial)."""

    def __init__(self, seed: int):
        import numpy as np

        self.rng = np.random.default_rng(seed)

    def suggest_categorical(self, name, choices):
        return choices[int(self.rng.integers(len(choices)))]


def graphs(count: int, seed: int) -> list[bytes]:
    """`count` random untrained networks of the mobilenet space, exported as the search exports them."""
    import nas

    space = nas.load_space("mobilenet")
    chooser = RandomChoices(seed)
    out = []
    for _ in range(count):
        arch = space.sample(chooser)
        out.append(nas.export_onnx(nas.build_model(arch, 10, seed=seed), arch.resolution, fast=True))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TwoNodeCluster:
    """A Ray head with no CPU (the driver's node) and a device node advertising nas-device:PROFILE."""

    def __init__(self, resource: str):
        ray_cli = str(Path(sys.executable).with_name("ray"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = tempfile.mkdtemp(prefix="nasray", dir="/tmp")  # short: Ray's socket paths
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
        common = [ray_cli, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=0"]
        self.nodes = [
            subprocess.Popen(
                [*common, "--head", "--include-dashboard=false", f"--port={self.port}",
                 "--object-store-memory=100000000", f"--temp-dir={self.temp_dir}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        ]  # fmt: skip
        self._wait_for_port()
        device_env = {**env, "RAY_num_workers_soft_limit": "1"}  # as docs/devices.md starts a device node
        self.nodes.append(
            subprocess.Popen(
                [*common, f"--address={self.address}", f"--resources={json.dumps({resource: 1})}",
                 "--object-store-memory=100000000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=device_env, start_new_session=True,
            )
        )  # fmt: skip

    def _wait_for_port(self) -> None:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.nodes[0].poll() is not None or time.time() > deadline:
                    raise BenchmarkError("the Ray head did not start") from None
                time.sleep(0.3)

    def close(self) -> None:
        import shutil

        for node in reversed(self.nodes):  # the processes this benchmark started, by their group
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
                try:
                    node.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(node.pid, signal.SIGKILL)
                    node.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def main() -> int:
    started = time.perf_counter()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from nas.latency import device_resource, load_profile, measure_on_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=40, help="networks measured each way (default: 40)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating passes each way (default: 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the result here instead of results/benchmarks/device_node.json")
    parser.add_argument(
        "--with-weights-too",
        action="store_true",
        help="a third kind of pass, alternating with the others: the same graphs sent to the node with their "
        "weights (8 per task, all at once), to compare the time outside the measuring in one run; each device "
        "pass then follows an in-process pass (twice as many of those)",
    )
    args = parser.parse_args()
    if args.graphs < 1:
        raise BenchmarkError(f"--graphs: must be at least 1, got {args.graphs}")

    settings = load_profile(PROFILE).measurement
    models = graphs(args.graphs, args.seed)

    measure_on_device(models[0], settings)  # ONNX Runtime loads once, before timing (as on the device side)

    import ray

    from nas.search import DeviceMeasurer

    resource = device_resource(PROFILE)
    cluster = TwoNodeCluster(resource)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        measurer = DeviceMeasurer(ray, PROFILE, settings, timeout_s=60.0)
        deadline = time.time() + 60
        while not measurer.nodes():
            if time.time() > deadline:
                raise BenchmarkError(f"no node advertised {resource} within 60 s")
            time.sleep(0.3)
        list(measurer.measure_all(models[:1]))  # the device node's worker process starts before timing
        # Alternating passes, with the cluster's processes running during both kinds: they share this
        # machine's cores, and its speed drifts between passes; each figure is the median over the passes.
        local_passes, device_passes, measuring_passes, weighted = [], [], [], []
        with_weights = (
            DeviceMeasurer(ray, PROFILE, settings, timeout_s=60.0, weightless=False)
            if args.with_weights_too
            else None
        )
        for _ in range(args.repeats):
            local, seconds = _in_process(models, settings)
            local_passes.append(seconds)
            if with_weights is not None:  # each device pass follows an in-process one, as a search's follow
                # trainings: the node's idle worker process is gone by then, and each pass starts a new one
                weighted.append(_with_weights_pass(with_weights, models))
                local_passes.append(_in_process(models, settings)[1])
            start = time.perf_counter()
            remote = sorted(measurer.measure_all(models), key=lambda item: item[0])
            device_passes.append(time.perf_counter() - start)
            failures = [reason for _, out, reason in remote if out is None]
            if failures:
                raise BenchmarkError(f"{len(failures)} measurements failed on the device node: {failures[0]}")
            measuring_passes.append(sum(out["seconds"] for _, out, _ in remote))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.close()
    in_process_s, device_s = statistics.median(local_passes), statistics.median(device_passes)
    measure_s = statistics.median(measuring_passes)
    overhead = statistics.median((d - m) / d for d, m in zip(device_passes, measuring_passes))
    ratio = in_process_s / device_s
    body = {
        "profile": PROFILE,
        "graphs": args.graphs,
        "seed": args.seed,
        "measurement": settings.to_dict(),
        "in_process_seconds": round(in_process_s, 3),
        "repeats": args.repeats,
        "in_process_passes_seconds": [round(x, 3) for x in local_passes],
        "device_node_passes_seconds": [round(x, 3) for x in device_passes],
        "device_node_seconds": round(device_s, 3),
        "device_node_measuring_seconds": round(measure_s, 3),  # inside the tasks: the rest is overhead
        "overhead_share": round(overhead, 4),  # transfer and scheduling: device pass minus measuring
        "overhead_seconds": round(
            statistics.median(d - m for d, m in zip(device_passes, measuring_passes)), 3
        ),
        "graph_megabytes": round(sum(map(len, models)) / 1e6, 2),  # the graphs with their weights
        "sent_megabytes": round(sum(len(_sent(m)) for m in models) / 1e6, 2),  # what goes to the node
        "throughput_ratio": round(ratio, 4),
        "target_ratio": 0.9,
        "meets_target": ratio >= 0.9,
        "median_latency_ms": {
            "in_process": sorted(m["median_ms"] for m in local)[len(local) // 2],
            "device_node": sorted(out["median_ms"] for _, out, _ in remote)[len(remote) // 2],
        },
    }
    if weighted:  # (pass seconds, seconds measuring) of each pass that sent the graphs with their weights
        body["with_weights"] = {
            "passes_seconds": [round(w, 3) for w, _ in weighted],
            "measuring_seconds": [round(m, 3) for _, m in weighted],
            "overhead_seconds": round(statistics.median(w - m for w, m in weighted), 3),
            "overhead_share": round(statistics.median((w - m) / w for w, m in weighted), 4),
            "throughput_ratio": round(in_process_s / statistics.median(w for w, _ in weighted), 4),
        }
    write_result("device_node", body, started=started, out=args.out)
    print(
        json.dumps(
            {
                k: body[k]
                for k in ("in_process_seconds", "device_node_seconds", "throughput_ratio", "overhead_share")
            }
        )
    )
    return 0


def _with_weights_pass(measurer, models: list[bytes]) -> tuple[float, float]:
    """(pass seconds, seconds measuring) of the graphs sent with their weights (`measurer`: weightless=False)."""
    start = time.perf_counter()
    outs = [out for _, out, _ in measurer.measure_all(models)]
    if any(out is None for out in outs):
        raise BenchmarkError("a measurement of a graph sent with its weights failed on the device node")
    return time.perf_counter() - start, sum(out["seconds"] for out in outs)


def _sent(graph: bytes) -> bytes:
    """The bytes of what the device node receives for `graph` (`strip_weights`)."""
    from nas.latency import WeightlessGraph, strip_weights

    sent = strip_weights(graph)
    return sent.skeleton if isinstance(sent, WeightlessGraph) else sent


def _in_process(models: list[bytes], settings) -> tuple[list[dict], float]:
    from nas.latency import measure_on_device

    start = time.perf_counter()
    measured = [measure_on_device(model, settings) for model in models]
    return measured, time.perf_counter() - start


if __name__ == "__main__":
    run_main(main)
