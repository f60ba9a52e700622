"""The latency kinds: which kind each ONNX operator belongs to, the unit a latency model prices.

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
"""

from __future__ import annotations

from nas.errors import NasError
from nas.space import declared_latency_ops

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


IGNORED_OPS = frozenset({"Constant", "Shape", "Identity", "Cast", "Dropout"})
