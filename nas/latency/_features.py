"""Feature vectors of nodes and graphs, shared by the ONNX featurizer and the torch tracer.

Every computing node gets a feature vector over `FEATURES`:

* ``count``: 1;
* ``macs``: multiply-accumulates. Conv: ``out_elements * (c_in / group) * kh * kw``; Gemm / MatMul:
  ``M * N * K`` (``out_elements * K``, batch dimensions included); pooling: ``out_elements * kh * kw``
  (AveragePool, MaxPool) or ``in_elements`` (GlobalAveragePool, ReduceMean); 0 for every other kind
  (their cost is in ``bytes``);
* ``bytes``: float32 bytes (4 per element, whatever the dtype) of the activations the node reads and
  writes: its inputs that are not constants, plus its outputs;
* ``params``: elements of its constant inputs (weights, biases, BN statistics);
* ``padded_macs``, ``padded_in_bytes`` and ``padded_out_bytes`` (convolutions only): MACs and the
  input and output activation bytes with every channel count rounded up to a multiple of
  `CHANNEL_BLOCK` (16). ONNX Runtime's x86 CPU kernels run convolutions in the blocked NCHWc layout (16
  channels per block on AVX-512, the vector width), so a convolution with 24 channels costs about what
  one with 32 costs. Measured on the x86-cpu bundle, padding took the held-out MAPE from 7.2% to 4.4%
  (benchmarks/latency_x86.py). A device whose runtime does not pad simply gets no weight on them.

`GraphFeatures` keeps the per-kind sums (kinds: `nas.latency._op_kinds`) and the per-node list (for a
per-node latency breakdown). Features are additive: the features of a network are the sum of those of
its blocks (``a + b``), which is how a network is composed from cached block features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from nas.latency._op_kinds import CHANNEL_BLOCK, KERNEL_BUCKETS, KINDS, SPATIAL_BUCKETS

FEATURES = ("count", "macs", "bytes", "params", "padded_macs", "padded_in_bytes", "padded_out_bytes")
# Every column a latency model can have a weight for: "kind.feature".
COLUMNS = tuple(f"{kind}.{feature}" for kind in KINDS for feature in FEATURES)
BYTES_PER_ELEMENT = 4  # float32


@dataclass(frozen=True)
class NodeFeatures:
    """One computing node: its name, operator, kind and feature vector (over `FEATURES`)."""

    name: str
    op_type: str
    kind: str
    features: np.ndarray = field(compare=False)
    shape: tuple[int, ...] = field(default=(), compare=False)  # see SHAPE_FIELDS; () for other operators


# What `NodeFeatures.shape` holds, per operator family: the attributes a profile's coverage records the
# measured range of (a prediction for a node outside that range is an extrapolation in size).
SHAPE_FIELDS = {"conv": ("c_in", "c_out", "height", "kernel", "stride", "groups"), "gemm": ("in", "out")}


def shape_fields(kind: str) -> tuple[str, ...]:
    """The names of `NodeFeatures.shape` for nodes of `kind`."""
    return (
        SHAPE_FIELDS["conv"] if kind.startswith("conv_") else SHAPE_FIELDS["gemm"] if kind == "gemm" else ()
    )


def conv_shape(x_shape, w_shape, y_shape, group: int) -> tuple[int, ...]:
    """(c_in, c_out, output height, largest kernel side, stride, groups) of a convolution."""
    height_in = x_shape[2] if len(x_shape) > 2 else 1
    height_out = y_shape[2] if len(y_shape) > 2 else 1
    stride = max(1, round(height_in / max(height_out, 1)))
    return (
        int(x_shape[1]),
        int(y_shape[1]),
        int(height_out),
        int(max(w_shape[2:], default=1)),
        int(stride),
        int(group),
    )


def _zero() -> np.ndarray:
    return np.zeros(len(FEATURES), dtype=np.float64)


@dataclass(frozen=True)
class GraphFeatures:
    """Per-kind summed feature vectors (`kinds[kind]` over `FEATURES`) and the per-node list.

    Only kinds that occur are keys of `kinds`. `a + b` is the features of running a then b (used to
    compose a network from cached block features); `sum(list_of_features)` works too.
    """

    kinds: dict[str, np.ndarray]
    nodes: tuple[NodeFeatures, ...] = ()

    @staticmethod
    def empty() -> "GraphFeatures":
        return GraphFeatures(kinds={}, nodes=())

    @staticmethod
    def from_nodes(nodes: Iterable["NodeFeatures"]) -> "GraphFeatures":
        nodes = tuple(nodes)
        kinds: dict[str, np.ndarray] = {}
        for node in nodes:
            kinds[node.kind] = (
                kinds[node.kind] + node.features if node.kind in kinds else node.features.copy()
            )
        return GraphFeatures(kinds=kinds, nodes=nodes)

    def __add__(self, other: "GraphFeatures") -> "GraphFeatures":
        if not isinstance(other, GraphFeatures):
            return NotImplemented
        kinds = {kind: vector.copy() for kind, vector in self.kinds.items()}
        for kind, vector in other.kinds.items():
            kinds[kind] = kinds[kind] + vector if kind in kinds else vector.copy()
        return GraphFeatures(kinds=kinds, nodes=self.nodes + other.nodes)

    def __radd__(self, other: object) -> "GraphFeatures":
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def get(self, kind: str, feature: str) -> float:
        """One feature of one kind (0 when the kind does not occur)."""
        vector = self.kinds.get(kind)
        return 0.0 if vector is None else float(vector[FEATURES.index(feature)])

    def vector(self, columns: Iterable[str] = COLUMNS) -> np.ndarray:
        """The features as one vector over `columns` ("kind.feature" names; default: `COLUMNS`)."""
        values = []
        for column in columns:
            kind, _, feature = column.partition(".")
            if kind not in KINDS or feature not in FEATURES:
                raise ValueError(f"unknown feature column {column!r}")
            values.append(self.get(kind, feature))
        return np.asarray(values, dtype=np.float64)

    def total(self, feature: str) -> float:
        """One feature summed over every kind (e.g. total MACs)."""
        index = FEATURES.index(feature)
        return float(sum(vector[index] for vector in self.kinds.values()))

    def to_dict(self) -> dict[str, dict[str, float]]:
        """JSON-friendly per-kind sums (the per-node list is left out)."""
        return {kind: dict(zip(FEATURES, map(float, vector))) for kind, vector in self.kinds.items()}


def _padded(channels: int) -> int:
    return -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK


def conv_kind(x_shape, w_shape, y_shape, group: int) -> tuple[str, float, float, float, float]:
    """(kind, macs, padded_macs, padded_in_bytes, padded_out_bytes) of a Conv node, from its input, weight
    and output shapes (also used by `nas.latency._trace`, which featurizes without exporting)."""
    c_in, c_out = x_shape[1], y_shape[1]
    kernel = math.prod(w_shape[2:])
    side = max(w_shape[2:], default=1)
    k = next(name for name, limit in KERNEL_BUCKETS if limit is None or side <= limit)
    if group == 1 and c_in < CHANNEL_BLOCK:
        kind = "conv_input"
    elif group == 1:
        kind = f"conv_dense_k{k}" if kernel > 1 else "conv_pointwise"
    elif group == c_in:
        kind = f"conv_depthwise_k{k}"
    else:
        kind = "conv_grouped"
    if kind != "conv_input":
        height = y_shape[2] if len(y_shape) > 2 else 1
        kind += "_" + next(name for name, limit in SPATIAL_BUCKETS if limit is None or height <= limit)
    out_pixels = math.prod(y_shape) // c_out  # batch x spatial
    in_pixels = math.prod(x_shape) // c_in
    macs = out_pixels * c_out * (c_in / group) * kernel
    per_group_in = 1 if group == c_in else (c_in // group if kind == "conv_input" else _padded(c_in // group))
    padded_macs = out_pixels * _padded(c_out) * per_group_in * kernel
    padded_in = c_in if kind == "conv_input" else _padded(c_in)
    return (
        kind,
        float(macs),
        float(padded_macs),
        float(in_pixels * padded_in * BYTES_PER_ELEMENT),
        float(out_pixels * _padded(c_out) * BYTES_PER_ELEMENT),
    )


def node_features(
    name: str,
    op_type: str,
    kind: str,
    macs: float,
    elements: int,
    params: int,
    padded_macs: float = 0.0,
    padded_in: float = 0.0,
    padded_out: float = 0.0,
    shape: tuple[int, ...] = (),
) -> NodeFeatures:
    """One node's feature vector over `FEATURES`; `elements`: activation elements read plus written."""
    vector = np.array(
        [1.0, macs, float(elements * BYTES_PER_ELEMENT), float(params), padded_macs, padded_in, padded_out],
        dtype=np.float64,
    )
    return NodeFeatures(name=name, op_type=op_type, kind=kind, features=vector, shape=tuple(shape))
