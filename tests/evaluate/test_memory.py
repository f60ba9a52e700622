"""Peak activation and weight memory: hand-built graphs worked out by hand, every built-in primitive against
its hand formula, and the per-part composition against the whole network's graph."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from onnx import TensorProto, helper, numpy_helper

from nas.builder import build_block, build_model, network_parts
from nas.evaluate import MemoryCounter, graph_memory
from nas.onnx_io import export_onnx
from nas.space import BlockSpec, load_space

F32 = 4  # bytes


def _model(nodes, inputs, outputs, initializers=(), elem=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, elem, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(name, elem, None) for name in outputs],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _weight(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.zeros(shape, dtype=dtype), name)


def test_chain():
    # X 1x4x8x8 (256 values) -> 1x1 conv to 8 channels (A, 512) -> Relu (B, 512) -> 2x2 max pool (C, 128).
    # Steps: conv X+A = 768, relu A+B = 1024 (X is dead), pool B+C = 640: peak 1024 values.
    model = _model(
        [
            helper.make_node("Conv", ["X", "W"], ["A"]),
            helper.make_node("Relu", ["A"], ["B"]),
            helper.make_node("MaxPool", ["B"], ["C"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        [("X", [1, 4, 8, 8])],
        ["C"],
        [_weight("W", (8, 4, 1, 1))],
    )
    memory = graph_memory(model.SerializeToString())
    assert memory.peak_activation_bytes == 1024 * F32
    assert memory.weight_bytes == 32 * F32
    assert memory.peak_memory_kb == 4.0 and memory.weights_kb == 0.125


def test_residual_keeps_the_input_live():
    # X (256) -> Relu A -> Relu B -> Add(B, X) Y. Steps: X+A = 512, X+A+B = 768, X+B+Y = 768.
    # Without the shortcut the peak would be 512: X is live until the Add.
    model = _model(
        [
            helper.make_node("Relu", ["X"], ["A"]),
            helper.make_node("Relu", ["A"], ["B"]),
            helper.make_node("Add", ["B", "X"], ["Y"]),
        ],
        [("X", [1, 4, 8, 8])],
        ["Y"],
    )
    assert graph_memory(model).peak_activation_bytes == 768 * F32


def test_branch():
    # X (256) -> conv A (512) and conv B (512) -> Concat C (1024).
    # Steps: X+A = 768, X+A+B = 1280, A+B+C = 2048 (X is dead after the second conv).
    model = _model(
        [
            helper.make_node("Conv", ["X", "W1"], ["A"]),
            helper.make_node("Conv", ["X", "W2"], ["B"]),
            helper.make_node("Concat", ["A", "B"], ["C"], axis=1),
        ],
        [("X", [1, 4, 8, 8])],
        ["C"],
        [_weight("W1", (8, 4, 1, 1)), _weight("W2", (8, 4, 1, 1))],
    )
    memory = graph_memory(model)
    assert memory.peak_activation_bytes == 2048 * F32
    assert memory.weight_bytes == 64 * F32


def test_constants_are_weights_and_identity_is_an_alias():
    # A shared initializer exposed again through Identity counts twice (a trained network has two tensors);
    # a Constant node is weight memory; Identity on an activation copies nothing and takes no step.
    # Steps: conv X+A (256+512), reshape A+R (1024): peak 1024 values.
    model = _model(
        [
            helper.make_node("Identity", ["W"], ["W_again"]),
            helper.make_node("Conv", ["X", "W_again"], ["A"]),
            helper.make_node("Identity", ["A"], ["A_alias"]),
            helper.make_node(
                "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([1, 512], np.int64))
            ),
            helper.make_node("Reshape", ["A_alias", "shape"], ["R"]),
        ],
        [("X", [1, 4, 8, 8])],
        ["R"],
        [_weight("W", (8, 4, 1, 1))],
    )
    memory = graph_memory(model)
    assert memory.peak_activation_bytes == 1024 * F32
    assert memory.weight_bytes == 2 * 32 * F32 + 2 * 8


def test_dtype_and_symbolic_batch():
    # float16 halves the bytes; a symbolic batch dimension counts as batch 1.
    nodes = [helper.make_node("Relu", ["X"], ["A"])]
    half = _model(nodes, [("X", ["N", 4, 8, 8])], ["A"], elem=TensorProto.FLOAT16)
    assert graph_memory(half).peak_activation_bytes == 2 * 256 * 2


def test_unknown_spatial_size_is_an_error():
    model = _model([helper.make_node("Relu", ["X"], ["A"])], [("X", [1, 4, "H", 8])], ["A"])
    with pytest.raises(ValueError, match="unknown size of dimension 2"):
        graph_memory(model)


# --- every built-in primitive against its hand formula ------------------------------------------------
# Steps of each exported block (BN folds into the conv; ReLU, Hardswish are nodes of their own), each
# holding its inputs, its output and anything still needed later. Sizes in values: x = the input,
# m = an expanded tensor at the input size, m2 = at the output size, y = the output, g = the SE gate.
S = 8  # input height and width


def _mbconv_se_residual(c):  # expand, act, dw, act, [SE ... Mul], project, Add; x live to the Add
    x, m = c * S * S, 3 * c * S * S
    return x + 2 * m + 3 * c  # the Mul: x, the activation, the gate (3c values) and the product


CASES = [
    # (primitive spec, c_in, c_out, stride, expected peak in values)
    # mbconv e3, stride 1, 16->16: x live throughout; act steps hold x + m + m.
    (
        BlockSpec("mbconv", kernel=3, expansion=3, se=False, activation="relu"),
        16,
        16,
        1,
        16 * 64 + 2 * 48 * 64,
    ),
    (
        BlockSpec("mbconv", kernel=3, expansion=3, se=True, activation="relu"),
        16,
        16,
        1,
        _mbconv_se_residual(16),
    ),
    # stride 2, 16->24, no shortcut: the expand act holds m + m at the input size (48 x 64 each).
    (BlockSpec("mbconv", kernel=5, expansion=3, se=False, activation="hardswish"), 16, 24, 2, 2 * 48 * 64),
    # e1 (no expand), 16->16 stride 1: dw act holds x + x + x.
    (BlockSpec("mbconv", kernel=3, expansion=1, se=False, activation="relu"), 16, 16, 1, 3 * 16 * 64),
    # fused e2 stride 2, 16->24: conv x + m2 (32 x 16) = 1536, act m2 + m2 = 1024: peak 1536.
    (
        BlockSpec("fused_mbconv", kernel=3, expansion=2, se=False, activation="relu"),
        16,
        24,
        2,
        16 * 64 + 32 * 16,
    ),
    # fused e1 stride 1, 16->16 with shortcut: conv x + y', act x + y' + y'' (3x), Add 3x.
    (BlockSpec("fused_mbconv", kernel=3, expansion=1, se=False, activation="relu"), 16, 16, 1, 3 * 16 * 64),
    # dwsep 16->32 stride 1: dw x + a, act a + b (2 x 1024), pw b + c (1024 + 2048), act c + d (4096).
    (BlockSpec("dwsep", kernel=3, se=False, activation="relu"), 16, 32, 1, 2 * 32 * 64),
    # shuffle g2 e3 16->16 stride 1: x live; grouped conv, act, reshape, transpose, reshape, dw, act each
    # hold x + two tensors of m = 48 x 64.
    (
        BlockSpec("shuffle_bottleneck", kernel=3, expansion=3, groups=2, se=False, activation="relu"),
        16,
        16,
        1,
        16 * 64 + 2 * 48 * 64,
    ),
    # skip with the same shape: the identity, an alias of the input.
    (BlockSpec("skip"), 16, 16, 1, 16 * 64),
    # skip 16->24 stride 2: conv x + a (1024 + 384), act a + b (768): peak 1408.
    (BlockSpec("skip"), 16, 24, 2, 16 * 64 + 24 * 16),
]


@pytest.mark.parametrize("spec,c_in,c_out,stride,values", CASES, ids=lambda v: getattr(v, "primitive", None))
def test_builtin_primitives_match_their_hand_formula(spec, c_in, c_out, stride, values):
    block = build_block(spec, c_in, c_out, stride)
    memory = graph_memory(export_onnx(block, 0, fast=True, input_shape=(1, c_in, S, S)))
    assert memory.peak_activation_bytes == values * F32
    # Weights: every parameter except batch norm's two per channel, which fold into one conv bias each
    # (the shuffle's two reshapes add their shapes: 5 and 4 int64 values).
    bns = [m for m in block.modules() if type(m).__name__ == "BatchNorm2d"]
    floats = sum(p.numel() for p in block.parameters()) - sum(bn.num_features for bn in bns)
    shapes = 9 * 8 if spec.primitive == "shuffle_bottleneck" else 0
    assert memory.weight_bytes == floats * F32 + shapes


@pytest.mark.parametrize("space_name", ["mobilenet", "fbnet"])
def test_parts_compose_to_the_whole_network(space_name):
    space = load_space(space_name)
    counter = MemoryCounter(num_classes=10)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(2):
        arch = space.sample(study.ask())
        whole = graph_memory(export_onnx(build_model(arch, 10, seed=0), arch.resolution, fast=True))
        assert counter.memory(arch) == whole
        assert len(counter) <= len(network_parts(arch, 10)) * 2  # each distinct part once
