"""ONNX graph featurizer: what a latency model needs to know about a network.

`graph_features(model)` runs ONNX shape inference (static shapes: a symbolic batch dimension of a graph
input becomes ``batch_size``; any other symbolic dimension is a `NasError` naming the input) and gives
every computing node a feature vector over `FEATURES`:

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

Nodes are grouped into kinds (`KINDS`):

=====================  ===============================================================================
kind                   operators
=====================  ===============================================================================
conv_input             Conv, group 1, fewer than `CHANNEL_BLOCK` input channels (an image input: the
                       blocked kernels read it unblocked)
conv_dense_kK_B        Conv, group 1, kernel larger than 1x1 (K: largest kernel side <= 3: 3, <= 5: 5,
                       larger: 7)
conv_pointwise_B       Conv, group 1, 1x1 kernel
conv_depthwise_kK_B    Conv, group == input channels (> 1), K as above
conv_grouped_B         Conv, any other group count
                       (B: output height <= 4: s, <= 8: m, larger: l; see SPATIAL_BUCKETS)
gemm                   Gemm, MatMul
activation_OP          one kind per activation (OP: relu, clip, leakyrelu, hardswish, hardsigmoid,
                       sigmoid, tanh): runtimes fuse some into the preceding convolution, not others
add                    Add, Sub
mul                    Mul, Div
pool                   GlobalAveragePool, AveragePool, MaxPool, ReduceMean
batchnorm              BatchNormalization
memory                 Reshape, Transpose, Flatten, Concat, Split, Slice, Squeeze, Unsqueeze, Pad, and
                       Gather on activations
(ignored)              Constant, Shape, Identity, Cast, Dropout, Gather on shapes or constants
=====================  ===============================================================================

Splitting dense and depthwise convolutions by kernel size took the held-out MAPE from 4.4% to 3.4%, one
kind per activation operator to 3.3% (one kind for activations and element-wise operators together:
3.6%), and separate padded input and output bytes to 3.1% (95% of networks within +-10%).

Constants are initializers, outputs of Constant nodes, and the outputs of any node whose inputs are all
constants or shape values (``Shape`` outputs and what is computed from them only): such a node is
folded away by every runtime, so it is ignored whatever its operator. A primitive's declaration maps
further operators to these kinds (`latency=` of `nas.space.declare_primitive`). Any other operator raises
``NasError("model.onnx: node 'name' (OpType): operator not supported by the latency model")``.

`GraphFeatures` keeps the per-kind sums and the per-node list (for a per-node latency breakdown).
Features are additive: the features of a network are the sum of those of its blocks (``a + b``), which
is how a network is composed from cached block features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
from onnx import shape_inference

from nas.errors import NasError, first_line
from nas.space import declared_latency_ops

FEATURES = ("count", "macs", "bytes", "params", "padded_macs", "padded_in_bytes", "padded_out_bytes")
CHANNEL_BLOCK = 16  # channels per block of ONNX Runtime's NCHWc convolution kernels (AVX-512)
KERNEL_BUCKETS = ((3, 3), (5, 5), (7, None))  # largest kernel side <= 3, <= 5, larger
_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh")
# Convolutions are also split by output size: the cost per MAC of a small feature map is higher (less
# work per call to vectorize over), which a single weight per conv kind cannot express. Measured on the
# x86-cpu bundle, this took the held-out MAPE from 9.0% to 7.2% (benchmarks/latency_x86.py).
SPATIAL_BUCKETS = (("s", 4), ("m", 8), ("l", None))  # output height <= 4, <= 8, larger
_CONV_KINDS = (
    *(f"conv_dense_k{k}" for k, _ in KERNEL_BUCKETS),
    "conv_pointwise",
    *(f"conv_depthwise_k{k}" for k, _ in KERNEL_BUCKETS),
    "conv_grouped",
)
KINDS = (
    "conv_input",
    *(f"{kind}_{bucket}" for kind in _CONV_KINDS for bucket, _ in SPATIAL_BUCKETS),
    "gemm",
    *(f"activation_{op.lower()}" for op in _ACTIVATIONS),
    "add",
    "mul",
    "pool",
    "batchnorm",
    "memory",
)
# Every column a latency model can have a weight for: "kind.feature".
COLUMNS = tuple(f"{kind}.{feature}" for kind in KINDS for feature in FEATURES)

_OP_KINDS = {
    "Gemm": "gemm",
    "MatMul": "gemm",
    **{op: f"activation_{op.lower()}" for op in _ACTIVATIONS},
    **{op: "add" for op in ("Add", "Sub")},
    **{op: "mul" for op in ("Mul", "Div")},
    **{op: "pool" for op in ("GlobalAveragePool", "AveragePool", "MaxPool", "ReduceMean")},
    "BatchNormalization": "batchnorm",
    **{
        op: "memory"
        for op in (
            "Reshape",
            "Transpose",
            "Flatten",
            "Concat",
            "Split",
            "Slice",
            "Squeeze",
            "Unsqueeze",
            "Pad",
        )
    },
}


def op_kinds() -> dict[str, str]:
    """ONNX operator -> kind: the table above plus what declared primitives add (`latency=` of
    `nas.space.declare_primitive`); a declared kind outside `KINDS` is a `NasError`."""
    declared = declared_latency_ops()
    for op, kind in declared.items():
        if kind not in KINDS:
            raise NasError(
                f"a primitive maps ONNX operator {op!r} to {kind!r}, not a latency kind ({', '.join(KINDS)})"
            )
    return {**declared, **_OP_KINDS}


_IGNORED_OPS = frozenset({"Constant", "Shape", "Identity", "Cast", "Dropout"})
_BYTES_PER_ELEMENT = 4  # float32


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


# ------------------------------------------------------------------------------------------- loading


def _load(model: bytes | str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """A copy of the model (never the caller's object) and the label used in error messages.

    onnx parses many non-ONNX byte strings into an empty model, so an empty graph is an error too."""
    proto, label = _parse(model)
    if not proto.graph.node or not proto.graph.input:
        raise NasError(f"{label}: not an ONNX model (no graph nodes or inputs)")
    return proto, label


def _parse(model: bytes | str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy, f"model {model.graph.name or '<unnamed>'}"
    if isinstance(model, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(model)), "model.onnx"
        except Exception as error:  # protobuf decode errors have no common public type
            raise NasError(f"model.onnx: not a loadable ONNX model: {error}") from None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise NasError(f"ONNX model file not found: {path}")
        try:
            return onnx.load(str(path)), str(path)
        except Exception as error:
            raise NasError(f"{path}: not a loadable ONNX model: {error}") from None
    raise TypeError(f"expected ONNX bytes, a path or an onnx.ModelProto, got {type(model).__name__}")


def _fix_batch(proto: onnx.ModelProto, label: str, batch_size: int) -> None:
    initializers = {init.name for init in proto.graph.initializer}
    for value in proto.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise NasError(f"{label}: input {value.name!r}: the shape is unknown; a static shape is needed")
        for axis, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = batch_size
            else:
                symbol = dim.dim_param or "?"
                raise NasError(
                    f"{label}: input {value.name!r}: dimension {axis} is symbolic ({symbol!r}); "
                    "only the batch dimension (0) may be symbolic"
                )


def _shapes(proto: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    shapes: dict[str, tuple[int, ...] | None] = {}
    for value in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
        else:
            shapes.setdefault(value.name, None)
    for init in proto.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


def _attribute(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


# ------------------------------------------------------------------------------------------- features


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
        float(in_pixels * padded_in * _BYTES_PER_ELEMENT),
        float(out_pixels * _padded(c_out) * _BYTES_PER_ELEMENT),
    )


def _gemm_macs(node: onnx.NodeProto, shape) -> float:
    a_shape, y_shape = shape(node.input[0]), shape(node.output[0])
    if node.op_type == "Gemm":
        k = a_shape[0] if _attribute(node, "transA", 0) else a_shape[-1]
    else:  # MatMul: (..., M, K) x (..., K, N); a 1-D A is (K,)
        k = a_shape[-1]
    return float(math.prod(y_shape) * k)


def _pool_macs(node: onnx.NodeProto, shape) -> float:
    if node.op_type in ("GlobalAveragePool", "ReduceMean"):
        return float(math.prod(shape(node.input[0])))
    kernel = _attribute(node, "kernel_shape", [1])
    return float(math.prod(shape(node.output[0])) * math.prod(kernel))


def graph_features(model: bytes | str | Path | onnx.ModelProto, batch_size: int = 1) -> GraphFeatures:
    """Featurize an ONNX model (serialized bytes, a file path or a ModelProto); see the module docstring."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise NasError(f"batch_size must be a positive integer, got {batch_size!r}")
    proto, label = _load(model)
    _fix_batch(proto, label, batch_size)
    try:
        proto = shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception as error:  # onnx raises InferenceError / ValidationError
        raise NasError(f"{label}: ONNX shape inference failed: {first_line(error)}") from None
    shapes = _shapes(proto)

    kinds = op_kinds()
    static: set[str] = {init.name for init in proto.graph.initializer}  # constants and shape values
    constants: set[str] = set(static)  # weights: counted as params, not as activation bytes
    nodes: list[NodeFeatures] = []

    for index, node in enumerate(proto.graph.node):
        name = node.name or f"#{index}"
        inputs = [i for i in node.input if i]
        if (
            node.op_type in ("Constant", "Shape")
            or (inputs and all(i in static for i in inputs))
            or not inputs
        ):
            # Folded at load time by any runtime: constants, shapes and what is computed from them only.
            static.update(o for o in node.output if o)
            if node.op_type != "Shape" and all(i in constants for i in inputs):
                constants.update(o for o in node.output if o)
            continue
        if node.op_type in _IGNORED_OPS:
            continue
        if node.op_type == "Gather":
            kind = "memory"  # Gather on activations (on shapes or constants it was ignored above)
        elif node.op_type == "Conv":
            kind = ""
        elif node.op_type in kinds:
            kind = kinds[node.op_type]
        else:
            raise NasError(
                f"{label}: node {name!r} ({node.op_type}): operator not supported by the latency model"
            )

        def shape(tensor: str, _node_name=name, _op=node.op_type) -> tuple[int, ...]:
            value = shapes.get(tensor)
            if value is None:
                raise NasError(
                    f"{label}: node {_node_name!r} ({_op}): the shape of tensor {tensor!r} could not be "
                    "inferred statically"
                )
            return value

        macs = padded_macs = padded_in = padded_out = 0.0
        node_shape: tuple[int, ...] = ()
        if node.op_type == "Conv":
            conv = (
                shape(node.input[0]),
                shape(node.input[1]),
                shape(node.output[0]),
                int(_attribute(node, "group", 1)),
            )
            kind, macs, padded_macs, padded_in, padded_out = conv_kind(*conv)
            node_shape = conv_shape(*conv)
        elif kind == "gemm":
            macs = _gemm_macs(node, shape)
            node_shape = _gemm_shape(node, shape)
        elif kind == "pool":
            macs = _pool_macs(node, shape)
        activations = [i for i in inputs if i not in static]
        params = sum(math.prod(shape(i)) for i in inputs if i in constants)
        elements = sum(math.prod(shape(t)) for t in activations) + sum(
            math.prod(shape(o)) for o in node.output if o
        )
        nodes.append(
            node_features(
                name,
                node.op_type,
                kind,
                macs,
                elements,
                params,
                padded_macs,
                padded_in,
                padded_out,
                shape=node_shape,
            )
        )
    return GraphFeatures.from_nodes(nodes)


def _gemm_shape(node: onnx.NodeProto, shape) -> tuple[int, ...]:
    a_shape, y_shape = shape(node.input[0]), shape(node.output[0])
    k = a_shape[0] if node.op_type == "Gemm" and _attribute(node, "transA", 0) else a_shape[-1]
    return (int(k), int(y_shape[-1]))


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
        [1.0, macs, float(elements * _BYTES_PER_ELEMENT), float(params), padded_macs, padded_in, padded_out],
        dtype=np.float64,
    )
    return NodeFeatures(name=name, op_type=op_type, kind=kind, features=vector, shape=tuple(shape))
