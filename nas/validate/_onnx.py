"""An exported model run with ONNX Runtime, fed exactly as its `nas.preprocessing` metadata says.

Nothing here imports torch or reads the training code: the metadata is the whole input contract
(resize to the input size, /255, (x - mean) / std per channel, NCHW, RGB), as a deployment would
have it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from nas.errors import NasError, first_line

PREPROCESSING_KEY = "nas.preprocessing"
PRECISION_KEY = "nas.precision"


def read_model_metadata(onnx_path: str | Path) -> dict[str, str]:
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise NasError(f"ONNX model file not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: not an ONNX file
        raise NasError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    return {entry.key: entry.value for entry in proto.metadata_props}


def parse_preprocessing(metadata: dict[str, str], where: str) -> dict:
    """The preprocessing dict, checked for the fields this module relies on."""
    if PREPROCESSING_KEY not in metadata:
        raise NasError(f"{where}: no '{PREPROCESSING_KEY}' metadata (export the model with 'nas export')")
    try:
        pre = json.loads(metadata[PREPROCESSING_KEY])
    except json.JSONDecodeError as exc:
        raise NasError(f"{where}: metadata '{PREPROCESSING_KEY}' is not valid JSON ({exc.msg})") from None
    for key in ("input_name", "input_shape", "mean", "std", "classes"):
        if key not in pre:
            raise NasError(f"{where}: metadata '{PREPROCESSING_KEY}' lacks field '{key}'")
    if pre.get("layout", "NCHW") != "NCHW" or pre.get("channel_order", "RGB") != "RGB":
        raise NasError(
            f"{where}: preprocessing layout {pre.get('layout')}/{pre.get('channel_order')} unsupported (need NCHW/RGB)"
        )
    shape = pre["input_shape"]
    if len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) and d > 0 for d in shape[2:]):
        raise NasError(f"{where}: preprocessing field 'input_shape' must be [batch, 3, H, W], got {shape}")
    if len(pre["mean"]) != 3 or len(pre["std"]) != 3 or any(s <= 0 for s in pre["std"]):
        raise NasError(f"{where}: preprocessing fields 'mean'/'std' must be 3 numbers (std > 0)")
    return pre


def _resize_float(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one (H, W, 3) image in float32 per channel; antialiased when shrinking (Pillow)."""
    channels = [
        np.asarray(
            Image.fromarray(img[..., c].astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
        )
        for c in range(3)
    ]
    return np.stack(channels, axis=-1)


def input_hw(pre: dict) -> tuple[int, int]:
    """Height and width of the model input, whichever layout its `input_shape` is written in."""
    shape = pre["input_shape"]
    return (shape[1], shape[2]) if pre.get("layout", "NCHW") == "NHWC" else (shape[2], shape[3])


def preprocess(images, pre: dict) -> np.ndarray:
    """uint8 RGB images (an N x H x W x 3 array or a list of H x W x 3 arrays) -> float32 model input
    (NCHW, or NHWC when the preprocessing's `layout` says so)."""
    height, width = input_hw(pre)
    mean = np.asarray(pre["mean"], np.float32) * 255.0
    std = np.asarray(pre["std"], np.float32) * 255.0
    if isinstance(images, np.ndarray) and images.shape[1:3] == (height, width):
        x = images.astype(np.float32)
    else:
        x = np.empty((len(images), height, width, 3), np.float32)
        for i, img in enumerate(images):
            x[i] = img if img.shape[:2] == (height, width) else _resize_float(img, height, width)
    # (pixel - 255 mean) / (255 std) == (pixel / 255 - mean) / std, as nas.evaluate.Preprocessing computes it
    x = (x - mean) / std
    return np.ascontiguousarray(
        x if pre.get("layout", "NCHW") == "NHWC" else x.transpose(0, 3, 1, 2), np.float32
    )


class OnnxClassifier:
    """An exported classifier: its ONNX Runtime session, preprocessing, classes and precision.

    `preprocessing`: the checked preprocessing of a model that carries none in its metadata (an
    off-the-shelf classifier); by default the `nas.preprocessing` metadata is the contract.
    """

    def __init__(self, onnx_path: str | Path, threads: int = 1, preprocessing: dict | None = None):
        import onnxruntime as ort

        self.path = Path(onnx_path)
        self.metadata = read_model_metadata(self.path)
        self.preprocessing = preprocessing or parse_preprocessing(self.metadata, str(self.path))
        self.classes = tuple(self.preprocessing["classes"])
        self.precision = self.metadata.get(PRECISION_KEY, "fp32")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise NasError(f"{self.path}: ONNX Runtime cannot load the model: {first_line(exc)}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != self.preprocessing["input_name"]:
            raise NasError(
                f"{self.path}: model inputs {[i.name for i in inputs]} do not match the metadata input_name "
                f"{self.preprocessing['input_name']!r}"
            )
        batch_dim = inputs[0].shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    @property
    def input_size(self) -> tuple[int, int]:
        return input_hw(self.preprocessing)

    def logits(self, images, batch_size: int = 256) -> np.ndarray:
        """Logits of uint8 RGB images, preprocessed per the metadata, in batches."""
        step = self.fixed_batch or batch_size
        out = []
        name = self.preprocessing["input_name"]
        for start in range(0, len(images), step):
            x = preprocess(images[start : start + step], self.preprocessing)
            if self.fixed_batch and len(x) < step:  # a fixed-batch graph: pad the last batch
                pad = np.zeros((step - len(x), *x.shape[1:]), np.float32)
                out.append(self.session.run(None, {name: np.concatenate([x, pad])})[0][: len(x)])
            else:
                out.append(self.session.run(None, {name: x})[0])
        if not out:
            return np.zeros((0, len(self.classes)), np.float32)
        logits = np.concatenate(out)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise NasError(
                f"{self.path}: output shape {logits.shape} does not match {len(self.classes)} classes in metadata"
            )
        return logits
