"""What runs on a device node: one ONNX graph measured with the profile's protocol, and where it ran.

A board that joins a search as a Ray node (`ray start --address=HEAD:PORT --num-cpus=0
--resources='{"nas-device:PROFILE": 1}'`) imports this module and `nas.latency`'s measuring code only:
numpy, onnx, onnxruntime and pyyaml, never torch, fvcore or optuna, so the board needs none of them.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

from nas.latency._measure import MeasurementSettings, measure_latency

DEVICE_RESOURCE_PREFIX = "nas-device:"


def device_resource(profile_name: str) -> str:
    """The Ray custom resource a device node advertises for the profile `profile_name`."""
    return f"{DEVICE_RESOURCE_PREFIX}{profile_name}"


def measure_on_device(onnx_bytes: bytes, settings: MeasurementSettings) -> dict[str, Any]:
    """Measure `onnx_bytes` here with `settings` (warm-up, rounds, median, spread, re-measured while
    unstable) and say where: the Ray node id (None outside Ray) and the host name."""
    start = time.perf_counter()
    measurement = measure_latency(onnx_bytes, settings)
    ray = sys.modules.get("ray")  # already imported when Ray runs this task; never imported here
    node_id = ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else None
    return {
        "median_ms": measurement.median_ms,
        "spread": measurement.spread,
        "stable": measurement.stable,
        "attempts": measurement.attempts,
        "node_id": node_id,
        "host": socket.gethostname(),
        "seconds": time.perf_counter() - start,
    }
