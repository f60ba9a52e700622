"""ONNX graph featurizer: walks an ONNX model's nodes into the `GraphFeatures` a latency model needs.

`graph_features(model)` runs ONNX shape inference (static shapes: a symbolic batch dimension of a graph
input becomes ``batch_size``; any other symbolic dimension is a `NasError` naming the input) and gives
every computing node its kind (`nas.latency._op_kinds`) and feature vector (`nas.latency._features`).

Constants are initializers, outputs of Constant nodes, and the outputs of any node whose inputs are all
constants or shape values (``Shape`` outputs and what is computed from them only): such a node is
folded away by every runtime, so it is ignored whatever its operator. A primitive's declaration maps
further operators to these kinds (`latency=` of `nas.space.declare_primitive`). Any other operator raises
``NasError("model.onnx: node 'name' (OpType): operator not supported by the latency model")``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from nas.errors import NasError, first_line
from nas.latency._features import GraphFeatures, NodeFeatures, conv_kind, conv_shape, node_features
from nas.latency._op_kinds import IGNORED_OPS, op_kinds

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


def _inferred(proto: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception as error:  # onnx raises InferenceError / ValidationError
        raise NasError(f"{label}: ONNX shape inference failed: {first_line(error)}") from None


_SHAPE_VALUE_OPS = frozenset(
    {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Div", "Mul", "Add", "Sub", "Cast", "Floor"}
)
_MAX_SHAPE_VALUE = 16  # elements: a shape vector, never a weight


def _fold_shape_values(proto: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """A copy of `proto` whose shape arithmetic (Shape -> Gather -> Div -> Concat -> Reshape, as a graph
    exported with a dynamic batch computes a channel shuffle's shape) is replaced by the constants it equals
    once the batch is fixed. ONNX's data propagation covers only some operators (not Div), which left such a
    Reshape's output shape unknown. Only the shapes are taken from the copy: the node walk stays on
    `proto`, where these computations are ignored as shape values anyway."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    folded = onnx.ModelProto()
    folded.CopyFrom(proto)
    values = {
        init.name: numpy_helper.to_array(init)
        for init in folded.graph.initializer
        if init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        and math.prod(init.dims) <= _MAX_SHAPE_VALUE
    }
    not_shapes: set[str] = set()  # first outputs of nodes that gave a float or a weight: not evaluated again
    for _ in range(len(folded.graph.node)):
        shapes = _shapes(_inferred(folded, label))
        fresh: dict[str, np.ndarray] = {}  # the values folded in this pass
        for node in folded.graph.node:
            outputs = [o for o in node.output if o]
            if not outputs or outputs[0] in not_shapes or all(o in values for o in outputs):
                continue
            inputs = [i for i in node.input if i]
            if node.op_type == "Shape" and shapes.get(node.input[0]) is not None:
                full = shapes[node.input[0]]
                start, end = _attribute(node, "start", 0), _attribute(node, "end", len(full))
                fresh[outputs[0]] = np.array(full[start:end], dtype=np.int64)
            elif (node.op_type == "Constant" or (node.op_type in _SHAPE_VALUE_OPS and inputs)) and all(
                i in values for i in inputs
            ):
                results = [
                    np.asarray(r) for r in ReferenceEvaluator(node).run(None, {i: values[i] for i in inputs})
                ]
                if not all(r.dtype.kind in "iu" and r.size <= _MAX_SHAPE_VALUE for r in results):
                    not_shapes.add(outputs[0])  # a weight or a float constant: not shape arithmetic
                    continue
                fresh.update(zip(outputs, results))
            values.update(fresh)  # later nodes of this pass may use them
        if not fresh:
            break
        kept = [node for node in folded.graph.node if not any(o in fresh for o in node.output)]
        del folded.graph.node[:]
        folded.graph.node.extend(kept)
        folded.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in fresh.items())
    return folded


def _attribute(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


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
    proto = _inferred(proto, label)
    shapes = _shapes(proto)
    if any(shapes.get(o, ()) is None for node in proto.graph.node for o in node.output if o):
        shapes = {**shapes, **_shapes(_inferred(_fold_shape_values(proto, label), label))}

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
        if node.op_type in IGNORED_OPS:
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
