"""Candidates for model selection: nas exports and off-the-shelf ONNX classifiers side by side.

A nas export carries its preprocessing in the `nas.preprocessing` metadata. Any other ONNX classifier
(a MobileNetV3 or EfficientNet-lite exported from torchvision or timm, a hand-written network) is
described by a sidecar `<model>.preprocessing.json` beside it, or by flags, which fill only the fields
a candidate's own description lacks (so one set of flags serves every off-the-shelf candidate and never
overrides a nas export):

    {"input_size": [224, 224], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "classes": ["cat", "dog"] or "classes.txt", "layout": "NCHW" or "NHWC", "input_name": "x"}

`input_name` defaults to the graph's only input; `layout` to NCHW; a classes file holds one name per line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from nas.errors import NasError
from nas.validate._onnx import PREPROCESSING_KEY, OnnxClassifier, read_model_metadata

SIDECAR_SUFFIX = ".preprocessing.json"
REQUIRED = ("input_size", "mean", "std", "classes")
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class PreprocessingFlags:
    """Preprocessing for candidates without their own (command-line flags); None: not given."""

    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: str | None = None  # a file, one class name per line
    layout: str | None = None

    def fields(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def sidecar_path(model: str | Path) -> Path:
    model = Path(model)
    return model.with_name(model.stem + SIDECAR_SUFFIX)


def read_classes_file(path: Path, where: str) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NasError(f"{where}: classes file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NasError(f"{where}: cannot read classes file {path} ({type(exc).__name__})") from None
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise NasError(f"{where}: classes file {path} lists no class (one name per line)")
    return names


def _numbers(value, field: str, where: str, count: int, positive: bool = False) -> list[float]:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )
    if not ok or (positive and any(v <= 0 for v in value)):
        need = f"{count} positive numbers" if positive else f"{count} numbers"
        raise NasError(f"{where}: preprocessing field '{field}' must be {need}, got {value!r}")
    return [float(v) for v in value]


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers]


def check_preprocessing(fields: dict, model: Path, base: Path) -> dict:
    """A sidecar's or the flags' fields -> the preprocessing dict `OnnxClassifier` runs with."""
    where = str(model)
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise NasError(
            f"{where}: no preprocessing: missing {', '.join(missing)} (the model has no '{PREPROCESSING_KEY}' "
            f"metadata; write {sidecar_path(model).name} beside it or pass --input-size/--mean/--std/--classes)"
        )
    unknown = sorted(set(fields) - {*REQUIRED, "layout", "input_name"})
    if unknown:
        raise NasError(
            f"{where}: unknown preprocessing field '{unknown[0]}' (known: {', '.join(REQUIRED)}, "
            "layout, input_name)"
        )
    size = fields["input_size"]
    size = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
    if not (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise NasError(
            f"{where}: preprocessing field 'input_size' must be [height, width] (positive), got {size!r}"
        )
    layout = fields.get("layout", "NCHW")
    if layout not in LAYOUTS:
        raise NasError(f"{where}: preprocessing field 'layout' must be NCHW or NHWC, got {layout!r}")
    classes = fields["classes"]
    if isinstance(classes, str):
        classes = read_classes_file(base / classes, where)
    if not (
        isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) and c for c in classes)
    ):
        raise NasError(
            f"{where}: preprocessing field 'classes' must be a list of names or a file, got {classes!r}"
        )
    if len(set(classes)) != len(classes):
        raise NasError(f"{where}: preprocessing field 'classes' names a class twice")
    inputs = _graph_inputs(model)
    name = fields.get("input_name") or (inputs[0] if len(inputs) == 1 else None)
    if name is None:
        raise NasError(f"{where}: the graph has inputs {inputs}; name the image input with 'input_name'")
    height, width = size
    return {
        "input_name": name,
        "input_shape": [1, height, width, 3] if layout == "NHWC" else [1, 3, height, width],
        "mean": _numbers(fields["mean"], "mean", where, 3),
        "std": _numbers(fields["std"], "std", where, 3, positive=True),
        "classes": list(classes),
        "layout": layout,
    }


def _read_sidecar(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NasError(f"{path}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise NasError(f"{path}: a preprocessing sidecar must be a JSON object")
    return data


def load_candidate(model: str | Path, flags: PreprocessingFlags | None = None, threads: int = 1):
    """(OnnxClassifier, where its preprocessing came from: "metadata", "sidecar" or "flags")."""
    model = Path(model)
    metadata = read_model_metadata(model)
    if PREPROCESSING_KEY in metadata:
        return OnnxClassifier(model, threads=threads), "metadata"
    sidecar = sidecar_path(model)
    fields, source, base = {}, "flags", Path.cwd()
    if sidecar.is_file():
        fields, source, base = _read_sidecar(sidecar), "sidecar", sidecar.parent
    for key, value in (flags or PreprocessingFlags()).fields().items():
        fields.setdefault(key, value)
    classifier = OnnxClassifier(
        model, threads=threads, preprocessing=check_preprocessing(fields, model, base)
    )
    outputs = classifier.session.get_outputs()[0].shape
    if outputs and isinstance(outputs[-1], int) and outputs[-1] != len(classifier.classes):
        raise NasError(
            f"{model}: the model outputs {outputs[-1]} scores but its {source} preprocessing lists "
            f"{len(classifier.classes)} classes"
        )
    return classifier, source


def candidate_names(paths) -> list[str]:
    """Short unique names: the file stem, with as many parent folders as it takes to tell them apart."""
    parts = [Path(p).with_suffix("").parts for p in paths]
    depth = 1
    while True:
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            return names
        depth += 1
