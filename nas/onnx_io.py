"""The one place that turns a torch module into ONNX.

Two exporters:

* the default, ``torch.onnx.export(..., dynamo=True)``: the torch.export-based exporter, whose ONNX
  optimizer folds BatchNorm into the preceding Conv, at the pinned opset `EXPORT_OPSET`. It is what final
  (trained) models are exported with. It takes ~0.5-3 s per model on a small CPU.
* ``fast=True``: the TorchScript exporter (``dynamo=False``, opset 17, constant folding, eval mode),
  which also folds BatchNorm and takes a few tens of milliseconds. It is used only to measure the
  latency of untrained candidates, where export time would otherwise dominate.

Both name the input ``"input"`` and the output ``"logits"``, and stamp the model with its producer (``nas``
and its version), `MODEL_FORMAT_VERSION` as ``model_version`` and a ``doc_string`` when given. The
exporters' chatter (progress lines, "torchvision is not installed", deprecation warnings) is silenced
locally; errors are not: if an export fails the exception propagates to the caller, which records a
failed candidate.

`check_against_torch` runs an exported model in ONNX Runtime next to its torch module: every model nas
writes for deployment passes it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import onnx
import torch

from nas._io import write_atomic
from nas._version import __version__

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# The opset of deployment exports, pinned so a model does not change with the torch version: the dynamo
# exporter's own default with the torch this package is tested with, and within what ONNX Runtime runs
# from the lowest version nas allows (1.19, which `.ci/lowest` runs these exports on).
EXPORT_OPSET = 20
FAST_OPSET = 17
PRODUCER_NAME = "nas"
# `model_version` of every model nas writes: the version of the nas model format (the input and output
# names and the `nas.*` metadata keys with their meaning). It increases when a change would break a reader
# of an earlier model, so a deployment can check what it reads.
MODEL_FORMAT_VERSION = 1
MAX_ABS_DIFF = 1e-3  # ONNX Runtime vs PyTorch logits on random input

# Loggers whose warnings are noise during an export (e.g. "torchvision is not installed. Skipping
# torchvision::nms"). Raised to ERROR for the duration of an export only.
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch.fx", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence warnings and sub-ERROR log records while exporting; exceptions pass through."""
    saved: list[tuple[logging.Logger, int]] = []
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() < logging.ERROR:
            logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode; restore each one's own previous mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _export_dynamo(
    model: torch.nn.Module, example: torch.Tensor, dynamic_batch: bool, outputs: Sequence[str]
) -> onnx.ModelProto:
    dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=EXPORT_OPSET,
        external_data=False,
        optimize=True,  # the onnxscript optimizer: constant folding, BatchNorm folded into Conv
        verbose=False,
        input_names=[INPUT_NAME],
        output_names=list(outputs),
        dynamic_shapes=dynamic_shapes,
    )
    if program is None:  # pragma: no cover - only when f is given, which we never do
        raise RuntimeError("torch.onnx.export returned no ONNXProgram")
    return program.model_proto


def _export_torchscript(
    model: torch.nn.Module, example: torch.Tensor, dynamic_batch: bool, outputs: Sequence[str]
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    dynamic_axes = {name: {0: "batch"} for name in (INPUT_NAME, *outputs)} if dynamic_batch else None
    torch.onnx.export(
        model,
        (example,),
        buffer,
        dynamo=False,
        opset_version=FAST_OPSET,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        input_names=[INPUT_NAME],
        output_names=list(outputs),
        dynamic_axes=dynamic_axes,
    )
    return onnx.load_from_string(buffer.getvalue())


# Node metadata the exporter adds that names files on the exporting machine (its Python stack traces):
# a shipped model must not carry the user's paths, and the same network exports to the same bytes anywhere.
_MACHINE_METADATA = ("pkg.torch.onnx.stack_trace",)


def _strip_stack_traces(proto: onnx.ModelProto) -> None:
    for node in proto.graph.node:
        kept = [entry for entry in node.metadata_props if entry.key not in _MACHINE_METADATA]
        if len(kept) != len(node.metadata_props):
            del node.metadata_props[:]
            node.metadata_props.extend(kept)


def _set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    existing = {entry.key: entry for entry in proto.metadata_props}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"ONNX metadata keys and values must be str, got {key!r}: {value!r}")
        if key in existing:
            existing[key].value = value
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value


def export_onnx(
    model: torch.nn.Module,
    resolution: int,
    *,
    path: str | Path | None = None,
    dynamic_batch: bool = False,
    metadata: dict[str, str] | None = None,
    fast: bool = False,
    input_shape: tuple[int, ...] | None = None,
    doc_string: str | None = None,
    output_names: Sequence[str] = (OUTPUT_NAME,),
) -> bytes:
    """Export `model` (input 1x3xRxR, eval mode) to ONNX and return the serialized model bytes.

    `path`: also write the bytes there, atomically. `dynamic_batch`: dim 0 of "input" and "logits"
    is the symbolic "batch". `metadata`: stored in the model's metadata_props. `fast`: use the
    TorchScript exporter (for latency measurement of untrained candidates only). `input_shape`:
    another input shape than (1, 3, R, R), e.g. (1, C, H, W) to export a single block or stage.
    `doc_string`: the model's description (for a searched network, its architecture summary).
    `output_names`: the outputs' names, for a module that returns several (an early-exit segment).
    """
    shape = tuple(int(d) for d in input_shape) if input_shape else (1, 3, int(resolution), int(resolution))
    example = torch.zeros(*shape)
    exporter = _export_torchscript if fast else _export_dynamo
    with _eval_mode(model), _quiet_export(), torch.no_grad():
        proto = exporter(model, example, dynamic_batch, output_names)
    _strip_stack_traces(proto)
    proto.producer_name, proto.producer_version = PRODUCER_NAME, __version__
    proto.model_version = MODEL_FORMAT_VERSION
    if doc_string is not None:
        proto.doc_string = doc_string
    if metadata:
        _set_metadata(proto, metadata)
    data = proto.SerializeToString()
    if path is not None:
        write_atomic(path, data)
    return data


def read_metadata(path_or_bytes: str | Path | bytes) -> dict[str, str]:
    """The model-level metadata_props of an ONNX model given as a file path or serialized bytes."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        proto = onnx.load_from_string(bytes(path_or_bytes))
    else:
        proto = onnx.load(str(path_or_bytes), load_external_data=False)
    return {entry.key: entry.value for entry in proto.metadata_props}


def check_against_torch(model: torch.nn.Module, onnx_bytes: bytes, resolution: int, batch: int = 3) -> float:
    """Run a seeded random batch through both and return the largest |difference| of the logits; a mismatch
    above `MAX_ABS_DIFF` is a bug in export (RuntimeError), never silently shipped."""
    import numpy as np
    import onnxruntime as ort

    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX export disagrees with PyTorch: max |diff| = {diff:.2e} > {MAX_ABS_DIFF}")
    return diff
