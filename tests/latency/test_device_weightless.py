"""A graph travels to the device without its weights and is filled back there: same graph but the values."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from nas.latency._device import WEIGHTLESS_MIN_ELEMENTS, WeightlessGraph, full_graph, strip_weights


def conv_model() -> bytes:
    """A 3x3 convolution of 32 -> 64 channels (18,432 weights), then a Clip whose float bounds must stay."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((64, 32, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(64, np.float32), "b"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Clip", ["c", "lo", "hi"], ["y"]),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 16, 16])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_the_weights_stay_behind_and_come_back_with_their_shapes_and_types():
    original = conv_model()
    sent = strip_weights(original)
    assert isinstance(sent, WeightlessGraph) and sent.stripped == ("w",)  # only the large float tensor
    assert len(sent.skeleton) < len(original) - 4 * 18432 + 1024
    restored = onnx.load_from_string(full_graph(sent))
    onnx.checker.check_model(restored)
    before = {i.name: i for i in onnx.load_from_string(original).graph.initializer}
    for init in restored.graph.initializer:
        assert (init.data_type, list(init.dims)) == (
            before[init.name].data_type,
            list(before[init.name].dims),
        )
    values = {i.name: numpy_helper.to_array(i) for i in restored.graph.initializer}
    assert values["lo"] == 0.0 and values["hi"] == 6.0, "small tensors keep their values"
    assert 0.02 < values["w"].std() < 0.1 and len(np.unique(values["w"])) > 1000, "not a constant fill"
    session = ort.InferenceSession(full_graph(sent), providers=["CPUExecutionProvider"])
    [y] = session.run(None, {"x": np.ones((1, 32, 16, 16), np.float32)})
    assert y.shape == (1, 64, 16, 16) and 0 <= y.min() and y.max() <= 6


def test_what_has_no_weights_or_is_not_onnx_travels_as_it_is():
    assert strip_weights(b"not an onnx graph") == b"not an onnx graph"
    small = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "relu",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
            initializer=[numpy_helper.from_array(np.ones(WEIGHTLESS_MIN_ELEMENTS - 1, np.float32), "c")],
        )
    ).SerializeToString()
    assert strip_weights(small) == small and full_graph(small) == small
