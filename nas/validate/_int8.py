"""INT8 static post-training quantization of an exported model, and FP32 vs INT8 comparison.

`quantize_int8` calibrates on the user's images preprocessed exactly per the model's metadata and
writes a QDQ model (per-channel signed INT8 weights, unsigned 8-bit activations by default) that keeps
the `nas.*` metadata, with `nas.precision = "int8"` and `nas.quantization` (how it was made).

`compare_precisions` reports the clean and per-slice accuracy drop and the latency of both models
measured with the x86-cpu protocol. Predicted (remote) profiles get no INT8 number: their latency
models were fitted on FP32 graphs (FP32 kernels on those devices), and nothing in that data says
how fast the device's INT8 kernels are.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from nas.errors import NasError
from nas.validate._corruptions import FAMILIES
from nas.validate._data import evaluation_images, subsample
from nas.validate._onnx import PRECISION_KEY, OnnxClassifier, preprocess
from nas.validate._slices import DEFAULT_SEVERITIES, evaluate_slices

QUANTIZATION_KEY = "nas.quantization"
CALIBRATION_BATCH = 32
ACTIVATION_TYPES = {"uint8": "QUInt8", "int8": "QInt8"}
NOT_PREDICTABLE = (
    "not predictable: this profile's latency model was fitted on FP32 graphs measured on the device; "
    "it has no data on the device's INT8 kernels"
)


class _Reader:
    """A CalibrationDataReader over preprocessed batches (duck-typed: get_next / rewind)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self.input_name, self.batches, self.position = input_name, batches, 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}

    def rewind(self):
        self.position = 0


def _reader(model: OnnxClassifier, images, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    step = model.fixed_batch or batch
    batches = []
    for i in range(0, len(images), step):
        x = preprocess(images[i : i + step], model.preprocessing)
        if model.fixed_batch and len(x) < step:
            break  # a fixed-batch graph only takes full batches
        batches.append(x)
    return Reader(model.preprocessing["input_name"], batches)


def quantize_int8(
    onnx_path: str | Path,
    calibration_dataset="builtin",
    out_path: str | Path | None = None,
    *,
    samples: int = 256,
    per_channel: bool = True,
    seed: int = 0,
    split: str = "val",
    activations: str = "uint8",
) -> Path:
    """Static INT8 quantization (QDQ, MinMax calibration on `samples` images of `calibration_dataset`).

    `calibration_dataset`: an ImageDataset or a `nas.load_dataset` source; by default its
    validation split (use `split="all"` for a folder of calibration images). Writes `out_path`
    (default: `model.int8.onnx` next to the model) and returns it. `activations`: "uint8" (U8S8, the
    default: on this x86 CPU (AVX-512 VNNI) measured 4x faster than "int8", S8S8) or "int8".
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx_path = Path(onnx_path)
    if activations not in ACTIVATION_TYPES:
        raise NasError(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, got {activations!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise NasError(f"samples must be a positive integer, got {samples!r}")
    model = OnnxClassifier(onnx_path)
    if model.precision != "fp32":
        raise NasError(f"{onnx_path}: already quantized (nas.precision = {model.precision})")
    data = evaluation_images(calibration_dataset, model.classes, split=split, seed=seed)
    images = data.images[subsample(len(data), samples, seed)]
    out_path = Path(out_path) if out_path is not None else onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    if out_path.resolve() == Path(onnx_path).resolve():
        raise NasError(
            f"{out_path}: the INT8 model would overwrite the FP32 model it is made from; choose another --out"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nas-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + ORT graph optimisation before calibration, as ONNX Runtime recommends.
        quant_pre_process(str(onnx_path), str(prepared))
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            _reader(model, images, CALIBRATION_BATCH),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=getattr(QuantType, ACTIVATION_TYPES[activations]),
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        proto = onnx.load(str(quantized))
    meta = {k: v for k, v in model.metadata.items() if k.startswith("nas.")}
    meta[PRECISION_KEY] = "int8"
    meta[QUANTIZATION_KEY] = json.dumps(
        {
            "method": "onnxruntime.quantization.quantize_static",
            "format": "QDQ",
            "weights": "int8",
            "activations": activations,
            "per_channel": bool(per_channel),
            "calibration": "MinMax",
            "calibration_images": int(len(images)),
            "calibration_data": data.name,
            "seed": int(seed),
            "source_model": onnx_path.name,
        }
    )
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    from nas._io import write_atomic

    write_atomic(out_path, proto.SerializeToString())
    return out_path


def _latencies(fp32: Path, int8: Path, measure: bool) -> dict:
    from nas.latency import list_profiles, load_profile, measure_latency

    out: dict = {}
    if measure:
        settings = load_profile("x86-cpu").measurement
        entry = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            m = measure_latency(path, settings)
            entry[name] = {"median_ms": m.median_ms, "spread": m.spread, "stable": m.stable}
        entry["speedup"] = entry["fp32"]["median_ms"] / entry["int8"]["median_ms"]
        entry["note"] = (
            "measured here with the x86-cpu protocol (ONNX Runtime CPU, 1 thread, batch 1); INT8 is not "
            "necessarily faster for small models: quantize/dequantize and layout work can outweigh "
            "the cheaper arithmetic"
        )
        out["x86-cpu"] = entry
    for profile in list_profiles():
        if profile.latency != "predicted" or profile.latency_model is None:
            continue
        out[profile.name] = {
            "fp32": {
                "predicted_ms": profile.predict(str(fp32)).latency_ms,
                "mape": (profile.validation or {}).get("mape"),
            },
            "int8": NOT_PREDICTABLE,
        }
    return out


def compare_precisions(
    fp32_path: str | Path,
    int8_path: str | Path,
    data="builtin",
    *,
    families=tuple(FAMILIES),
    severities=DEFAULT_SEVERITIES,
    seed: int = 0,
    max_images: int | None = None,
    split: str = "val",
    measure: bool = True,
    fp32_report=None,
) -> dict:
    """Clean and per-slice accuracy of both models on the same images, drops, and latency per profile.

    `fp32_report`: a `SliceReport` of `fp32_path` already computed with the same settings (saves its
    evaluation); its slice names must be the ones these settings produce.
    """
    kwargs = dict(families=families, severities=severities, seed=seed, max_images=max_images, split=split)
    int8 = evaluate_slices(int8_path, data, **kwargs)
    fp32 = fp32_report if fp32_report is not None else evaluate_slices(fp32_path, data, **kwargs)
    if [s["name"] for s in fp32.slices] != [s["name"] for s in int8.slices] or fp32.clean["n"] != int8.clean[
        "n"
    ]:
        raise NasError("fp32_report was computed with other slices or data than this comparison")
    if int8.precision != "int8":
        raise NasError(
            f"{int8_path}: metadata nas.precision is {int8.precision!r}, expected 'int8' (made by quantize_int8?)"
        )
    slices = []
    for a, b in zip(fp32.slices, int8.slices):
        slices.append(
            {
                "name": a["name"],
                "n": a["n"],
                "fp32_accuracy": a["accuracy"],
                "int8_accuracy": b["accuracy"],
                "drop": a["accuracy"] - b["accuracy"],
            }
        )
    fp32_worst, int8_worst = fp32.worst, int8.worst
    return {
        "fp32_model": str(fp32_path),
        "int8_model": str(int8_path),
        "data": fp32.data,
        "n": fp32.clean["n"],
        "clean": {
            "fp32": fp32.clean["accuracy"],
            "int8": int8.clean["accuracy"],
            "drop": fp32.clean["accuracy"] - int8.clean["accuracy"],
            "fp32_ci95": fp32.clean["ci95"],
            "int8_ci95": int8.clean["ci95"],
        },
        "worst_slice": {
            "fp32": {"name": fp32_worst["name"], "accuracy": fp32_worst["accuracy"]},
            "int8": {"name": int8_worst["name"], "accuracy": int8_worst["accuracy"]},
            "drop": fp32_worst["accuracy"] - int8.slice(fp32_worst["name"])["accuracy"],
        },
        "max_slice_drop": max(s["drop"] for s in slices),
        "slices": slices,
        "latency": _latencies(Path(fp32_path), Path(int8_path), measure),
        "quantization": json.loads(OnnxClassifier(int8_path).metadata.get(QUANTIZATION_KEY, "{}")),
    }


__all__ = ["NOT_PREDICTABLE", "compare_precisions", "quantize_int8"]
