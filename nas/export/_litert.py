"""LiteRT (TFLite) export through `litert-torch`, Google's PyTorch-to-LiteRT converter, for devices (phones,
Raspberry Pi) that run LiteRT rather than ONNX Runtime.

The converter is an optional extra (`hwnas[litert]`): a 2 GB environment whose import takes ~30 s, so it is
imported here only when a tflite export is asked for, never at `import nas`. The converted model takes NHWC
input (LiteRT's native layout, and how camera frames and bitmaps arrive), batch 1; it is checked against the
PyTorch module on the same seeded input before anything is written, as the ONNX export is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

import torch

from nas.errors import NasError, NasRuntimeError, first_line
from nas.onnx_io import MAX_ABS_DIFF

EXPORT_FORMATS = ("onnx", "tflite")  # onnx always; tflite adds model.tflite beside model.onnx
TFLITE_NAME = "model.tflite"
MISSING_EXTRA = "--format tflite needs the litert extra: pip install 'hwnas[litert]'"
# The converted model's one signature: litert-torch names the inputs args_0.. and the outputs output_0..
SIGNATURE, INPUT_NAME, OUTPUT_NAME = "serving_default", "args_0", "output_0"
# Import-time noise of the converter's dependencies ("Failed to load ... .so" of torchao's CUDA kernels, a
# deprecation note of torch's pytree); raised to ERROR while importing and converting only.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")
_PROGRESS_VARIABLE = (
    "LITERT_TORCH_SHOW_PROGRESS"  # litert-torch prints ~40 progress lines per model to stdout
)


@dataclass(frozen=True)
class TfliteModel:
    data: bytes
    max_abs_diff: float
    seconds: float  # conversion time, the numerical check excluded
    converter: str  # e.g. "litert-torch 0.10.0"


def check_export_format(export_format: str) -> bool:
    """Whether `export_format` asks for a tflite model too; the extra is imported here (NasError without it),
    so a command fails before it writes anything."""
    if export_format not in EXPORT_FORMATS:
        raise NasError(f"unknown export format {export_format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if export_format == "tflite":
        _converter()
    return export_format == "tflite"


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """No warnings, progress lines or sub-ERROR records of the converter, unless the user set its progress
    variable; stdout stays nas's own (paths, one per line). Errors pass through."""
    loggers = [(logging.getLogger(name), logging.getLogger(name).level) for name in _NOISY_LOGGERS]
    user_progress = _PROGRESS_VARIABLE in os.environ
    for logger, _ in loggers:
        logger.setLevel(logging.ERROR)
    if not user_progress:
        os.environ[_PROGRESS_VARIABLE] = "n"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in loggers:
            logger.setLevel(level)
        if not user_progress:
            os.environ.pop(_PROGRESS_VARIABLE, None)


def _converter() -> ModuleType:
    try:
        with _quiet_converter():
            import litert_torch
            from ai_edge_litert import interpreter  # noqa: F401 - the runtime of the numerical check
    except ImportError:
        raise NasError(MISSING_EXTRA) from None
    return litert_torch


class _ChannelsLastInput(torch.nn.Module):
    """The network with an NHWC input: the converter turns the permute into the model's first op."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def convert_tflite(model: torch.nn.Module, resolution: int) -> TfliteModel:
    """`model` (eval mode: BatchNorm uses its running statistics) as LiteRT bytes with an NHWC input of
    1 x R x R x 3; a conversion failure or a mismatch above `MAX_ABS_DIFF` is a NasRuntimeError."""
    converter = _converter()
    model.eval()
    example = torch.zeros(1, resolution, resolution, 3)
    start = time.perf_counter()
    try:
        with _quiet_converter(), torch.no_grad():
            data = converter.convert(_ChannelsLastInput(model).eval(), (example,)).model_content()
    except Exception as exc:  # the converter's errors name an operator it cannot lower, in many types
        raise NasRuntimeError(f"LiteRT conversion failed: {first_line(exc)}") from exc
    seconds = time.perf_counter() - start
    diff = check_tflite_against_torch(model, data, resolution)
    return TfliteModel(data, diff, seconds, f"litert-torch {converter.__version__}")


def check_tflite_against_torch(
    model: torch.nn.Module, data: bytes, resolution: int, samples: int = 3
) -> float:
    """Run the seeded random batch of `nas.onnx_io.check_against_torch` through both, one image at a time in
    NHWC for LiteRT, and return the largest |difference| of the logits."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    x = torch.randn(samples, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    runner = Interpreter(model_content=data).get_signature_runner(SIGNATURE)
    outputs = [runner(**{INPUT_NAME: image[None].permute(0, 2, 3, 1).numpy()}) for image in x]
    got = np.concatenate([next(iter(output.values())) for output in outputs])  # the one output
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    if not diff <= MAX_ABS_DIFF:
        raise NasRuntimeError(
            f"LiteRT model disagrees with PyTorch: max |diff| = {diff:.2e} > {MAX_ABS_DIFF}"
        )
    return diff


def tflite_spec(preprocessing: dict, resolution: int, converter: str) -> dict:
    """The `tflite` entry of spec.json: the file and its own input contract (the ONNX one, in NHWC, batch 1)."""
    return {
        "file": TFLITE_NAME,
        "converter": converter,
        "signature": SIGNATURE,
        "preprocessing": {
            **preprocessing,
            "input_name": INPUT_NAME,
            "input_shape": [1, resolution, resolution, 3],
            "layout": "NHWC",
            "output": f"{OUTPUT_NAME}: logits (1, num_classes); softmax for probabilities",
        },
    }
