"""Graph features of a PyTorch module without exporting it: one recorded forward pass.

Exporting a block to ONNX costs about 15 ms; the latency model only needs, per node of the exported
graph, its operator and shapes. `traced_features` runs the module once on a zero input under a
`TorchFunctionMode` that records every torch call and maps it to the node the TorchScript exporter
(`export_onnx(fast=True)`) emits for it, with the same per-node features (`nas.latency._features`):
Conv (with batch norm folded into its bias), Relu, Clip (ReLU6, with its 2 bound constants), HardSwish,
HardSigmoid, Sigmoid, GlobalAveragePool, Add, Mul, Reshape (its shape constant), Transpose, Flatten and
Gemm, plus the calls a primitive's declaration maps (`trace=` of `nas.space.declare_primitive`: an
element-wise operator reading its tensor inputs and writing its output); contiguous(), shape queries
and dropout in eval mode emit nothing. Any other call returns None,
and the caller exports instead, so an unknown module can never be featurized wrongly. Tests check that
the features equal those of the exported graph for every primitive.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from nas.latency._features import GraphFeatures, NodeFeatures, conv_kind, conv_shape, node_features
from nas.latency._op_kinds import op_kinds
from nas.space import declared_traced_ops

_ACTIVATIONS = {
    "relu": "Relu",
    "relu_": "Relu",
    "hardswish": "HardSwish",
    "hardsigmoid": "HardSigmoid",
    "sigmoid": "Sigmoid",
    "sigmoid_": "Sigmoid",
}
_SILENT = {"contiguous", "size", "dim", "__get__", "dropout", "__len__", "numel"}


class _Unsupported(Exception):
    pass


def _numel(shape) -> int:
    return math.prod(shape)


class _Recorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.declared = declared_traced_ops()  # torch function name -> ONNX operator, from declarations
        self.nodes: list[dict[str, Any]] = []
        self.conv_of: dict[int, dict[str, Any]] = {}  # id(conv output) -> its node, for batch norm folding

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _SILENT:  # dropout included: the module runs in eval mode
            return out
        self._record(func, name, args, kwargs, out)
        return out

    def _add(self, op: str, kind: str | None, elements: int, params: int = 0, **extra) -> dict:
        node = {"op": op, "kind": kind, "elements": elements, "params": params, **extra}
        self.nodes.append(node)
        return node

    def _record(self, func, name, args, kwargs, out) -> None:
        if func is F.conv2d:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            shapes = (tuple(x.shape), tuple(w.shape), tuple(out.shape), int(groups))
            kind, macs, pm, pin, pout = conv_kind(*shapes)
            node = self._add(
                "Conv",
                kind,
                _numel(x.shape) + _numel(out.shape),
                _numel(w.shape) + (out.shape[1] if bias is not None else 0),
                macs=macs,
                padded=(pm, pin, pout),
                bias=bias is not None,
                shape=conv_shape(*shapes),
            )
            self.conv_of[id(out)] = node
        elif func is F.batch_norm:
            conv = self.conv_of.get(id(args[0]))
            if conv is None or conv["bias"]:
                raise _Unsupported("batch norm not after a bias-free convolution")
            conv["params"] += out.shape[1]  # folded into the convolution's bias
            conv["bias"] = True
            self.conv_of[id(out)] = conv
        elif name in _ACTIVATIONS:
            self._add(_ACTIVATIONS[name], None, 2 * _numel(out.shape))
        elif func is F.hardtanh or name == "hardtanh_":
            self._add("Clip", None, 2 * _numel(out.shape), params=2)
        elif func is F.adaptive_avg_pool2d and tuple(out.shape[2:]) == (1, 1):
            self._add(
                "GlobalAveragePool",
                "pool",
                _numel(args[0].shape) + _numel(out.shape),
                macs=_numel(args[0].shape),
            )
        elif name in ("__add__", "add", "__mul__", "mul") and all(
            isinstance(a, torch.Tensor) for a in args[:2]
        ):
            self._add(
                "Add" if "add" in name else "Mul",
                None,
                _numel(args[0].shape) + _numel(args[1].shape) + _numel(out.shape),
            )
        elif name in ("view", "reshape"):
            self._add("Reshape", "memory", _numel(args[0].shape) + _numel(out.shape), params=out.dim())
        elif name == "transpose":
            self._add("Transpose", "memory", _numel(args[0].shape) + _numel(out.shape))
        elif func is torch.flatten or name == "flatten":
            self._add("Flatten", "memory", _numel(args[0].shape) + _numel(out.shape))
        elif func is F.linear:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            self._add(
                "Gemm",
                "gemm",
                _numel(x.shape) + _numel(out.shape),
                _numel(w.shape) + (_numel(bias.shape) if bias is not None else 0),
                macs=_numel(out.shape) * w.shape[1],
                shape=(int(w.shape[1]), int(w.shape[0])),
            )
        elif name in self.declared:  # a primitive's own element-wise operator: bytes in and out
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            self._add(self.declared[name], None, sum(_numel(t.shape) for t in tensors) + _numel(out.shape))
        else:
            raise _Unsupported(name or repr(func))


def traced_features(module: torch.nn.Module, input_shape: tuple[int, ...]) -> GraphFeatures | None:
    """The features of `export_onnx(module, fast=True, input_shape=...)`, or None when the module calls
    something this tracer does not map (then export it)."""
    kinds = op_kinds()
    recorder = _Recorder()
    was_training = module.training
    module.eval()
    example = torch.zeros(input_shape, device=next(module.parameters(), torch.zeros(0)).device)
    try:
        with torch.no_grad(), recorder:
            module(example)
    except _Unsupported:
        return None
    finally:
        module.train(was_training)
    nodes: list[NodeFeatures] = []
    for i, n in enumerate(recorder.nodes):
        kind = n["kind"] or kinds[n["op"]]
        nodes.append(
            node_features(
                f"#{i}",
                n["op"],
                kind,
                float(n.get("macs", 0.0)),
                n["elements"],
                n["params"],
                *n.get("padded", (0.0, 0.0, 0.0)),
                shape=n.get("shape", ()),
            )
        )
    return GraphFeatures.from_nodes(nodes)
