"""nas.latency graph featurizer: hand-computable graphs, kinds, errors, additivity of block features."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from nas.blocks import build_block
from nas.errors import NasError
from nas.latency import COLUMNS, FEATURES, GraphFeatures, graph_features
from nas.onnx_io import export_onnx
from nas.space import BlockSpec


def make_model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weight(name, shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def conv_model(c_in, c_out, kernel, group, hw=8, batch=1, bias=False):
    inputs = ["x", "w"] + (["b"] if bias else [])
    inits = [weight("w", (c_out, c_in // group, kernel, kernel))] + ([weight("b", (c_out,))] if bias else [])
    node = helper.make_node(
        "Conv", inputs, ["y"], name="conv", group=group, pads=[kernel // 2] * 4, kernel_shape=[kernel, kernel]
    )
    return make_model(
        [node], [tensor("x", [batch, c_in, hw, hw])], [tensor("y", [batch, c_out, hw, hw])], inits
    )


def feature(f: GraphFeatures, kind: str) -> dict:
    return dict(zip(FEATURES, f.kinds[kind]))


def test_image_input_conv_macs_bytes_params():
    f = graph_features(conv_model(3, 8, 3, 1, bias=True))
    assert set(f.kinds) == {"conv_input"}  # fewer input channels than a block: read unblocked
    got = feature(f, "conv_input")
    assert got["count"] == 1
    assert got["macs"] == 8 * 8 * 8 * 3 * 3 * 3  # out elements * c_in/group * kh * kw
    assert got["bytes"] == (3 * 64 + 8 * 64) * 4  # activation in + out, float32
    assert got["params"] == 8 * 3 * 3 * 3 + 8  # weight + bias
    assert got["padded_macs"] == 16 * 64 * 3 * 3 * 3  # outputs padded to a block of 16, the input not
    assert got["padded_in_bytes"] == 3 * 64 * 4 and got["padded_out_bytes"] == 16 * 64 * 4
    assert [(n.name, n.op_type, n.kind) for n in f.nodes] == [("conv", "Conv", "conv_input")]


@pytest.mark.parametrize(
    "kernel, kind", [(3, "conv_dense_k3_m"), (5, "conv_dense_k5_m"), (7, "conv_dense_k7_m")]
)
def test_dense_convs_are_split_by_kernel_and_padded_to_channel_blocks(kernel, kind):
    f = graph_features(conv_model(24, 40, kernel, 1))
    assert set(f.kinds) == {kind}
    got = feature(f, kind)
    assert got["macs"] == 40 * 64 * 24 * kernel * kernel
    assert got["padded_macs"] == 48 * 64 * 32 * kernel * kernel  # 40 -> 48 and 24 -> 32 channels
    assert got["padded_in_bytes"] == 32 * 64 * 4 and got["padded_out_bytes"] == 48 * 64 * 4


@pytest.mark.parametrize(
    "c_in, c_out, kernel, group, kind, macs",
    [
        (16, 32, 1, 1, "conv_pointwise_m", 32 * 64 * 16),
        (16, 16, 3, 16, "conv_depthwise_k3_m", 16 * 64 * 9),
        (24, 24, 5, 24, "conv_depthwise_k5_m", 24 * 64 * 25),
        (16, 32, 1, 2, "conv_grouped_m", 32 * 64 * 8),
        (16, 16, 5, 4, "conv_grouped_m", 16 * 64 * 4 * 25),
    ],
)
def test_conv_kinds(c_in, c_out, kernel, group, kind, macs):
    f = graph_features(conv_model(c_in, c_out, kernel, group))
    assert set(f.kinds) == {kind}
    assert feature(f, kind)["macs"] == macs
    assert feature(f, kind)["params"] == c_out * c_in // group * kernel * kernel


def test_gemm_and_activation_and_ignored_ops():
    nodes = [
        helper.make_node("Identity", ["x"], ["xi"], name="id"),
        helper.make_node("Gemm", ["xi", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node(
            "Constant", [], ["c"], name="const", value=numpy_helper.from_array(np.ones(10, np.float32))
        ),
        helper.make_node("Add", ["r", "c"], ["y"], name="add"),
    ]
    model = make_model(
        nodes, [tensor("x", [2, 20])], [tensor("y", [2, 10])], [weight("w", (10, 20)), weight("b", (10,))]
    )
    f = graph_features(model)
    assert set(f.kinds) == {"gemm", "activation_relu", "add"}
    none = {"padded_macs": 0, "padded_in_bytes": 0, "padded_out_bytes": 0}  # padding is for convolutions only
    assert feature(f, "gemm") == {
        "count": 1,
        "macs": 2 * 10 * 20,
        "bytes": (40 + 20) * 4,
        "params": 210,
        **none,
    }
    assert feature(f, "activation_relu") == {"count": 1, "macs": 0, "bytes": 40 * 4, "params": 0, **none}
    assert feature(f, "add") == {
        "count": 1,
        "macs": 0,
        "bytes": 40 * 4,
        "params": 10,
        **none,
    }  # the constant is a param
    assert [n.name for n in f.nodes] == ["fc", "relu", "add"]


def test_shape_computation_is_folded_and_reshape_is_memory():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather_shape", axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"], name="unsq_shape"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat_shape", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="flatten"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "zero1"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    model = make_model(nodes, [tensor("x", [1, 4, 3, 3])], [tensor("y", [1, 36])], inits)
    f = graph_features(model)
    assert set(f.kinds) == {"memory"}
    assert [n.name for n in f.nodes] == ["flatten"]
    assert feature(f, "memory")["bytes"] == 2 * 36 * 4


def test_pool_macs():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")]
    f = graph_features(make_model(nodes, [tensor("x", [1, 8, 4, 4])], [tensor("y", [1, 8, 1, 1])]))
    assert feature(f, "pool")["macs"] == 8 * 16


def test_symbolic_batch_becomes_batch_size():
    model = conv_model(3, 8, 3, 1, batch="N")
    one, four = graph_features(model), graph_features(model, batch_size=4)
    assert feature(four, "conv_input")["macs"] == 4 * feature(one, "conv_input")["macs"]
    assert feature(four, "conv_input")["params"] == feature(one, "conv_input")["params"]


def test_other_symbolic_dimension_names_the_input():
    model = conv_model(3, 8, 3, 1, hw="H")
    with pytest.raises(NasError, match=r"input 'x'.*dimension 2 is symbolic \('H'\)"):
        graph_features(model)


def test_unsupported_operator_names_the_node():
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="probs")]
    model = make_model(nodes, [tensor("x", [1, 10])], [tensor("y", [1, 10])])
    with pytest.raises(NasError) as info:
        graph_features(model.SerializeToString())
    assert (
        str(info.value) == "model.onnx: node 'probs' (Softmax): operator not supported by the latency model"
    )


def test_bad_inputs(tmp_path):
    with pytest.raises(NasError, match="not found"):
        graph_features(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(NasError, match="bad.onnx"):
        graph_features(bad)


def test_path_bytes_and_proto_agree(tmp_path):
    model = conv_model(4, 8, 3, 1)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    a, b, c = graph_features(model), graph_features(path), graph_features(model.SerializeToString())
    assert np.array_equal(a.vector(), b.vector()) and np.array_equal(a.vector(), c.vector())


def test_vector_and_add():
    a = GraphFeatures({"gemm": np.array([1.0, 2, 3, 4, 0, 0, 0])})
    b = GraphFeatures({"gemm": np.array([1.0, 1, 1, 1, 0, 0, 0]), "pool": np.array([1.0, 5, 6, 0, 0, 0, 0])})
    s = a + b
    assert s.vector(["gemm.macs", "pool.bytes", "conv_dense_k3_m.count"]).tolist() == [3, 6, 0]
    assert sum([a, b]).vector().tolist() == s.vector().tolist()
    assert a.vector(["gemm.count"]).tolist() == [1]  # a is unchanged
    assert len(s.vector()) == len(COLUMNS)
    with pytest.raises(ValueError):
        a.vector(["gemm.flops"])


def test_block_features_add_up_to_the_exported_two_block_network():
    spec = BlockSpec("shuffle_bottleneck", kernel=3, expansion=3, groups=2, se=False, activation="relu")
    torch.manual_seed(0)
    block = build_block(spec, 16, 16, 1)
    one = graph_features(export_onnx(block, 0, fast=True, input_shape=(1, 16, 8, 8)))
    two = graph_features(
        export_onnx(
            torch.nn.Sequential(block, build_block(spec, 16, 16, 1)), 0, fast=True, input_shape=(1, 16, 8, 8)
        )
    )
    assert set(one.kinds) == {"conv_grouped_m", "conv_depthwise_k3_m", "activation_relu", "memory", "add"}
    np.testing.assert_allclose(two.vector(), (one + one).vector(), rtol=1e-9)
    assert len(two.nodes) == 2 * len(one.nodes)


def test_a_channel_shuffle_exported_with_a_dynamic_batch_has_the_static_exports_features():
    """Its Reshape's shape is Shape -> Gather -> Div -> Concat, which ONNX's data propagation does not
    follow (Div); an early-exit segment is always exported that way."""
    spec = BlockSpec("shuffle_bottleneck", kernel=3, expansion=3, groups=2, se=False, activation="relu")
    torch.manual_seed(0)
    block = build_block(spec, 16, 16, 1).eval()
    static = graph_features(export_onnx(block, 0, fast=True, input_shape=(1, 16, 8, 8)))
    dynamic = export_onnx(block, 0, fast=True, input_shape=(1, 16, 8, 8), dynamic_batch=True)
    assert any(node.op_type == "Div" for node in onnx.load_from_string(dynamic).graph.node)
    features = graph_features(dynamic)
    assert set(features.kinds) == set(static.kinds)
    for kind in static.kinds:  # the shape vectors are constants of the static export only: params of memory
        expected = {k: v for k, v in feature(static, kind).items() if (kind, k) != ("memory", "params")}
        assert {
            k: v for k, v in feature(features, kind).items() if (kind, k) != ("memory", "params")
        } == expected
