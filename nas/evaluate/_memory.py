"""Peak activation memory and weight memory of a network, from its ONNX graph.

The way MCUNet bounds a microcontroller's SRAM: run the graph's nodes in order and keep every tensor
live from the node that produces it (the graph input: from the start) until its last consumer has run
(a graph output: until the end). The peak activation memory is the largest sum of live tensor bytes
while a node runs (its inputs and its outputs are live together). Assumptions:

- batch 1 (a symbolic first dimension counts as 1), each tensor at its own dtype (fp32 for an exported
  float network), shapes from ONNX shape inference;
- the graph's node order is the execution order (ONNX stores nodes topologically; a runtime that
  reorders them may need more or less);
- no in-place reuse: a node's output never takes its input's buffer (a runtime that reuses it needs less);
- an `Identity` node on an activation is an alias, no copy (runtimes remove it), and takes no step;
- initializers, `Constant` nodes and what a node computes from them alone (the exporter shares equal
  initializers of an untrained network through `Identity` nodes; a runtime folds such nodes) are weight
  memory (they sit in flash), never activations.

Weight memory is the bytes of those constants, each counted where the graph uses it under its own name
(so equal untrained weights shared by the exporter count as the separate tensors a trained network has).
Both come from the exported graph, so they hold for any primitive, a plugin's included.

A network is a chain of parts (`nas.builder.network_parts`) and only a part's output crosses into the
next part, so the network's peak is the largest of its parts' peaks and its weights are the sum of its
parts' weights: `MemoryCounter` exports each distinct part once (tests check the composition equals the
whole network's graph).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference


@dataclass(frozen=True)
class Memory:
    """Bytes of the largest set of activations live at once, and of the weights."""

    peak_activation_bytes: int
    weight_bytes: int

    @property
    def peak_memory_kb(self) -> float:
        return round(self.peak_activation_bytes / 1024, 3)

    @property
    def weights_kb(self) -> float:
        return round(self.weight_bytes / 1024, 3)


def _tensor_bytes(value_info: onnx.ValueInfoProto) -> int:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        raise ValueError(f"tensor {value_info.name!r}: no shape after shape inference")
    size = 1
    for axis, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value"):
            size *= dim.dim_value
        elif axis != 0:  # batch 1: only the first dimension may be symbolic
            raise ValueError(f"tensor {value_info.name!r}: unknown size of dimension {axis}")
    return size * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).itemsize


def graph_memory(model: bytes | onnx.ModelProto) -> Memory:
    """Peak activation and weight memory of a serialized (or loaded) ONNX model; see the module doc."""
    proto = onnx.load_from_string(model) if isinstance(model, bytes) else model
    graph = shape_inference.infer_shapes(proto, strict_mode=True).graph
    weights = {init.name: numpy_helper.to_array(init).nbytes for init in graph.initializer}
    infos = {v.name: v for v in (*graph.input, *graph.value_info, *graph.output)}

    def size(name: str) -> int:
        if name not in infos:
            raise ValueError(f"tensor {name!r}: no type after shape inference")
        return _tensor_bytes(infos[name])

    nodes, alias = [], {}
    for node in graph.node:  # Constant, and nodes computing on constants only, make weights
        if all(name in weights for name in node.input if name):
            weights.update({name: size(name) for name in node.output if name})
        elif node.op_type == "Identity":
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
        else:
            nodes.append(node)
    born: dict[str, int] = {v.name: -1 for v in graph.input if v.name not in weights}
    last_use = dict(born)
    for step, node in enumerate(nodes):
        for name in (alias.get(n, n) for n in node.input):
            if name and name not in weights:
                if name not in born:
                    raise ValueError(f"node {node.name or node.op_type!r} reads {name!r} before it is made")
                last_use[name] = step
        for name in node.output:
            if name and name not in weights:
                born[name] = last_use[name] = step
    for output in graph.output:
        last_use[alias.get(output.name, output.name)] = len(nodes)
    sizes = {name: size(name) for name in born}
    peak = sum(sizes[name] for name, b in born.items() if b < 0)  # the input, before the first node
    for step in range(len(nodes)):
        peak = max(peak, sum(s for name, s in sizes.items() if born[name] <= step <= last_use[name]))
    return Memory(peak_activation_bytes=peak, weight_bytes=sum(weights.values()))


class MemoryCounter:
    """`graph_memory` of an `Architecture`'s network without exporting it whole: the largest of its parts'
    peaks and the sum of their weights, each distinct part exported once (about 10-20 ms) and cached."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self._cache: dict[tuple, Memory] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def memory(self, arch) -> Memory:
        from nas.builder import network_parts
        from nas.onnx_io import export_onnx

        peak = weights = 0
        for key, build, shape in network_parts(arch, self.num_classes):
            if key not in self._cache:
                self._cache[key] = graph_memory(export_onnx(build(), shape[-1], fast=True, input_shape=shape))
            part = self._cache[key]
            peak, weights = max(peak, part.peak_activation_bytes), weights + part.weight_bytes
        return Memory(peak_activation_bytes=peak, weight_bytes=weights)
