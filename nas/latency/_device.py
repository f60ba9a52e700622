"""What runs on a device node: one ONNX graph measured with the profile's protocol, and where it ran.

A board that joins a search as a Ray node (`ray start --address=HEAD:PORT --num-cpus=0
--resources='{"nas-device:PROFILE": 1}'`) imports this module and `nas.latency`'s measuring code only:
numpy, onnx, onnxruntime and pyyaml, never torch, fvcore or optuna, so the board needs none of them.

A graph travels to the board without its weights (`WeightlessGraph`): latency depends on the shapes, not
the values, and an untrained candidate's weights are most of its bytes (a mobilenet candidate: 0.2-17 MB,
some 50 KB without them). The board fills them back with fixed pseudo-random values before measuring.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.latency._measure import MeasurementSettings, measure_latency

DEVICE_RESOURCE_PREFIX = "nas-device:"
# Float initializers of at least this many elements travel without their values: the weights. Smaller
# ones (a Clip's bounds, a Resize's scales, biases) keep theirs, since some of them shape the computation.
WEIGHTLESS_MIN_ELEMENTS = 1024
_FILL = {"float32": b"", "float16": b""}  # fixed pseudo-random values, grown as needed (`_fill_bytes`)


@dataclass(frozen=True)
class WeightlessGraph:
    """An ONNX graph without the values of its weight tensors (`strip_weights`); `restore` gives it back
    with fixed pseudo-random values of the same shapes and types."""

    skeleton: bytes  # the serialized ModelProto, the stripped initializers without data
    stripped: tuple[str, ...]  # their names

    def restore(self) -> bytes:
        import onnx

        model = onnx.load_from_string(self.skeleton)
        names = set(self.stripped)
        for init in model.graph.initializer:
            if init.name in names:
                dtype = "float16" if init.data_type == onnx.TensorProto.FLOAT16 else "float32"
                init.raw_data = _fill_bytes(dtype, _elements(init.dims))
        return model.SerializeToString()


def strip_weights(onnx_bytes: bytes) -> "WeightlessGraph | bytes":
    """The graph to send to a device: a `WeightlessGraph` when it has weights to leave out, else the bytes as
    they are (also bytes that do not parse as ONNX: the device reports what it makes of them)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(onnx_bytes)
    except (DecodeError, ValueError):
        return onnx_bytes
    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    stripped = []
    for init in model.graph.initializer:
        if (
            init.data_type in float_types
            and init.raw_data
            and _elements(init.dims) >= WEIGHTLESS_MIN_ELEMENTS
        ):
            init.ClearField("raw_data")
            stripped.append(init.name)
    if not stripped:
        return onnx_bytes
    return WeightlessGraph(model.SerializeToString(), tuple(stripped))


def full_graph(graph: "WeightlessGraph | bytes") -> bytes:
    """The ONNX bytes of a graph as `strip_weights` sent it."""
    return graph.restore() if isinstance(graph, WeightlessGraph) else graph


def _elements(dims: Any) -> int:
    return int(np.prod(dims, dtype=np.int64)) if len(dims) else 1


def _fill_bytes(dtype: str, count: int) -> bytes:
    """`count` values of `dtype` from one fixed pseudo-random sequence (normal, std 0.05, as small as a
    network's initial weights), kept in this process and grown by doubling: a slice is one copy."""
    itemsize = np.dtype(dtype).itemsize
    size = itemsize * count
    if len(_FILL[dtype]) < size:
        grown = max(count, 2 * len(_FILL[dtype]) // itemsize, 1 << 16)
        values = np.random.default_rng(0).standard_normal(grown)
        _FILL[dtype] = (values * 0.05).astype(dtype).tobytes()
    return _FILL[dtype][:size]


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
