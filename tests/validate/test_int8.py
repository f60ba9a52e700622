"""INT8 static quantization of a real exported model, and the FP32 vs INT8 comparison."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nas.errors import NasError
from nas.validate import compare_precisions, quantize_int8
from nas.validate._int8 import NOT_PREDICTABLE


@pytest.fixture(scope="module")
def int8_model(exported_model, tiny_dataset_file, tmp_path_factory):
    return quantize_int8(
        exported_model,
        tiny_dataset_file,
        tmp_path_factory.mktemp("int8") / "model.int8.onnx",
        samples=32,
        split="all",
    )


def test_int8_model_loads_runs_and_keeps_metadata(int8_model, exported_model, tiny_dataset_file):
    ops = {node.op_type for node in onnx.load(str(int8_model)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = ort.InferenceSession(str(int8_model), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    fp32_meta = (
        ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
        .get_modelmeta()
        .custom_metadata_map
    )
    assert meta["nas.precision"] == "int8" and "nas.precision" not in fp32_meta
    for key in ("nas.preprocessing", "nas.architecture", "nas.metrics"):
        assert meta[key] == fp32_meta[key]
    quant = json.loads(meta["nas.quantization"])
    assert quant["format"] == "QDQ" and quant["per_channel"] is True and quant["calibration_images"] == 32
    pre = json.loads(meta["nas.preprocessing"])
    x = np.load(tiny_dataset_file)["x"][:5].astype(np.float32) / 255
    inp = ((x - np.array(pre["mean"])) / np.array(pre["std"])).transpose(0, 3, 1, 2).astype(np.float32)
    assert session.run(None, {pre["input_name"]: inp})[0].shape == (5, 2)  # dynamic batch survives


def test_compare_precisions_reports_drops_and_latency(int8_model, exported_model, tiny_dataset_file):
    result = compare_precisions(
        exported_model, int8_model, tiny_dataset_file, families=("jpeg",), severities=(3,), split="all"
    )
    assert result["n"] == 80
    clean = result["clean"]
    assert 0 <= clean["int8"] <= 1 and clean["drop"] == pytest.approx(clean["fp32"] - clean["int8"])
    assert [s["name"] for s in result["slices"]] == ["clean", "jpeg@3"]
    assert result["max_slice_drop"] == max(s["drop"] for s in result["slices"])
    x86 = result["latency"]["x86-cpu"]
    assert x86["fp32"]["median_ms"] > 0 and x86["int8"]["median_ms"] > 0
    assert x86["speedup"] == pytest.approx(x86["fp32"]["median_ms"] / x86["int8"]["median_ms"])
    predicted = [name for name in result["latency"] if name != "x86-cpu"]
    assert {"jetson-tx2", "raspberry-pi-4", "pixel-3"} <= set(predicted)
    for name in predicted:
        entry = result["latency"][name]
        assert (
            entry["int8"] == NOT_PREDICTABLE
            and entry["fp32"]["predicted_ms"] > 0
            and entry["fp32"]["mape"] > 0
        )
    json.dumps(result)


def test_quantize_mistakes(int8_model, exported_model, tiny_dataset_file, tmp_path):
    with pytest.raises(NasError, match="already quantized"):
        quantize_int8(int8_model, tiny_dataset_file, tmp_path / "again.onnx")
    with pytest.raises(NasError, match="samples must be a positive integer"):
        quantize_int8(exported_model, tiny_dataset_file, tmp_path / "x.onnx", samples=0)
    with pytest.raises(NasError, match="expected 'int8'"):
        compare_precisions(exported_model, exported_model, tiny_dataset_file, families=(), measure=False)
