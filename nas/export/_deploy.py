"""Deployment training: train an exported architecture from scratch for longer, optionally distilled
from a larger exported teacher, and re-export it (ONNX + spec.json + metrics.json).

Training uses the one loop of `ProxyTrainer` (`nas.evaluate.fit`: the `TrainingRecipe` optimizer, warm-up +
cosine schedule, label smoothing, augmentation, `channels_last`, seeding, `Preprocessing` and
`evaluate_accuracy`); only the epochs, the images per epoch and the loss (knowledge distillation) differ.
Without a teacher, `deploy_train(..., epochs=E, train_subset=S, seed=s)` trains exactly the network that
`ProxyTrainer(TrainingRecipe(epochs=E, train_subset=S)).train(arch, dataset, s)` trains.
"""

from __future__ import annotations

import json
import math
import time
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas._io import read_json
from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import Preprocessing, TrainingRecipe, evaluate_accuracy, fit
from nas.export._folder import read_preprocessing, write_model_folder
from nas.space import Architecture

DEPLOYED_SUFFIX = "-deployed"
_COPIED_METRICS = ("trial", "profile", "latency_ms", "latency_spread", "params", "macs", "macs_note")


def deploy_train(
    export_dir: str | Path,
    *,
    dataset: Any = "builtin",
    epochs: int = 30,
    train_subset: int | None = None,
    seed: int = 0,
    teacher: str | Path | None = None,
    kd_alpha: float = 0.5,
    kd_temperature: float = 4.0,
    out: str | Path | None = None,
) -> Path:
    """Train the architecture of `export_dir` from scratch and export it to `out`; returns `out`.

    `dataset`: a `load_dataset` source, loaded with `seed` (the search's split when it is the search's
    dataset and seed; the builtin split is fixed). `train_subset`: images per epoch (None: all).
    `teacher`: another exported model folder, or its `.onnx` file, with the same preprocessing and
    classes; its ONNX Runtime logits on each augmented batch give the loss
    `(1 - kd_alpha) * CE_smoothed + kd_alpha * T^2 * KL(p_teacher^T || p_student^T)`.
    `out`: default `<export_dir>-deployed` next to `export_dir` (e.g. `export/00_HASH-deployed`).
    """
    _check_int("epochs", epochs, 1)
    if train_subset is not None:
        _check_int("train_subset", train_subset, 1)
    _check_int("seed", seed, 0)
    if seed >= 2**32:
        raise NasError(f"seed: must be below 2**32 (what torch accepts), got {seed!r}")
    _check_real("kd_alpha", kd_alpha, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
    _check_real("kd_temperature", kd_temperature, lambda v: v > 0, "a number > 0")

    source = Path(export_dir)
    if source.is_file() and (source.parent / "spec.json").is_file():  # its model.onnx: the folder it is in
        source = source.parent
    spec, source_metrics = _read_export(source)
    arch = Architecture.from_dict(spec["architecture"])
    num_classes, pre = int(spec["num_classes"]), spec["preprocessing"]
    out = Path(out) if out is not None else source.parent / f"{source.name}{DEPLOYED_SUFFIX}"
    if out.resolve() == source.resolve():
        raise NasError(f"--out {out} is the source export folder; choose another folder")

    kd = _Teacher(teacher, pre, source) if teacher is not None else None
    data = _load_dataset(dataset, seed, pre, source)
    # The exported contract normalises with the spec's (rounded) statistics; when the dataset's own
    # statistics round to them (same dataset and split), train with the exact ones, as the search did.
    same_split = _stats_match(data, pre)
    mean, std = (data.mean, data.std) if same_split else (pre["mean"], pre["std"])
    norm = Preprocessing(mean, std, arch.resolution)

    recipe = TrainingRecipe(
        epochs=int(epochs), train_subset=None if train_subset is None else int(train_subset)
    )
    model, train_seconds = _train(
        arch, num_classes, data, norm, recipe, int(seed), kd, float(kd_alpha), float(kd_temperature)
    )
    start = time.perf_counter()
    accuracy, val_loss = evaluate_accuracy(model, data, norm)
    eval_seconds = time.perf_counter() - start

    training = {
        **recipe.to_dict(),
        "seed": int(seed),
        "dataset": data.name,
        "mirrors": "nas.ProxyTrainer",
        "knowledge_distillation": None
        if kd is None
        else {
            "teacher": str(kd.onnx_path),
            "alpha": float(kd_alpha),
            "temperature": float(kd_temperature),
            "loss": "(1 - alpha) * CE(label smoothing) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))",
        },
    }
    proxy = source_metrics.get("proxy_accuracy")
    metrics = {
        "source": str(source),
        "arch_hash": arch.hash,
        "dataset": data.name,
        "accuracy": accuracy,
        "val_loss": val_loss,
        "proxy_accuracy": proxy,
        "accuracy_gain_over_proxy": None if proxy is None else accuracy - proxy,
        "validation_split_matches_search": same_split,
        "epochs": int(epochs),
        "train_subset": recipe.train_subset,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "teacher": None if kd is None else str(kd.onnx_path),
        "teacher_accuracy": None if kd is None else kd.accuracy(data, norm),
        "training": training,
        **{key: source_metrics[key] for key in _COPIED_METRICS if key in source_metrics},
    }
    _export(model, arch, num_classes, pre, metrics, training, out)
    return out


def _train(
    arch,
    num_classes,
    dataset,
    norm,
    r: TrainingRecipe,
    seed: int,
    kd: "_Teacher | None",
    alpha: float,
    temperature: float,
) -> tuple[torch.nn.Module, float]:
    """The shared training loop (`nas.evaluate.fit`), with an optional distillation term."""

    def distill(loss, logits, xb):
        return (1 - alpha) * loss + alpha * distillation_loss(logits, kd.logits(xb), temperature)

    model, seconds, _ = fit(arch, num_classes, dataset, norm, r, seed, distill if kd is not None else None)
    return model, seconds


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al. (2015): T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over the batch."""
    t = temperature
    return F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)


class _Teacher:
    """An exported model run by ONNX Runtime on the student's normalised batches."""

    def __init__(self, teacher: str | Path, student_pre: dict, student_dir: Path):
        import onnxruntime as ort

        self.onnx_path = _teacher_onnx(Path(teacher))
        try:
            pre = read_preprocessing(self.onnx_path)
        except Exception:  # unreadable model or no nas metadata
            raise NasError(
                f"teacher {self.onnx_path}: not a nas-exported ONNX model (no readable nas.preprocessing metadata)"
            ) from None
        for key, label in (
            ("mean", "mean"),
            ("std", "std"),
            ("input_shape", "input size"),
            ("classes", "classes"),
        ):
            mine, theirs = student_pre.get(key), pre.get(key)
            if key == "input_shape":
                mine, theirs = list(mine or [])[-2:], list(theirs or [])[-2:]
            elif key in ("mean", "std"):
                mine, theirs = [float(v) for v in mine or []], [float(v) for v in theirs or []]
            if mine != theirs:
                raise NasError(
                    f"teacher {self.onnx_path} has another preprocessing than student {student_dir}: "
                    f"{label} {theirs} vs {mine}; the teacher must see exactly the student's inputs"
                )
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.fixed_batch = self.session.get_inputs()[0].shape[0]
        if not isinstance(self.fixed_batch, int):
            self.fixed_batch = None

    def logits(self, xb: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(xb.detach().contiguous().numpy(), dtype=np.float32)  # NCHW float32
        if self.fixed_batch is None:
            out = self.session.run(None, {self.input_name: x})[0]
        else:  # a fixed-batch export: feed it in chunks of its batch size
            if len(x) % self.fixed_batch:
                raise NasError(
                    f"teacher {self.onnx_path} has a fixed batch of {self.fixed_batch}; export it with a dynamic batch"
                )
            out = np.concatenate(
                [
                    self.session.run(None, {self.input_name: x[i : i + self.fixed_batch]})[0]
                    for i in range(0, len(x), self.fixed_batch)
                ]
            )
        return torch.from_numpy(out)

    def accuracy(self, dataset, norm: Preprocessing, batch_size: int = 500) -> float:
        correct = 0
        for i in range(0, len(dataset.y_val), batch_size):
            x = norm(torch.from_numpy(np.ascontiguousarray(dataset.x_val[i : i + batch_size])), augment=False)
            correct += int(
                (self.logits(x).argmax(1).numpy() == np.asarray(dataset.y_val[i : i + batch_size])).sum()
            )
        return correct / len(dataset.y_val)


def _teacher_onnx(path: Path) -> Path:
    if path.is_dir():
        name = "model.onnx"
        if (path / "spec.json").is_file():
            name = read_json(path / "spec.json", "teacher spec").get("onnx", name)
        path = path / name
    if not path.is_file():
        raise NasError(f"teacher not found: {path} (give an exported model folder or its model.onnx)")
    return path


def _read_export(source: Path) -> tuple[dict, dict]:
    if source.is_file():
        raise NasError(
            f"{source}: a file; give the exported model folder (RUN_DIR/export/NN_HASH, with "
            "model.onnx, spec.json and metrics.json)"
        )
    if not source.is_dir():
        raise NasError(f"exported model folder not found: {source}")
    for name in ("spec.json", "metrics.json"):
        if not (source / name).is_file():
            raise NasError(
                f"{source}: not an exported model folder (missing {name}; run `nas export RUN_DIR` first)"
            )
    spec, metrics = (
        read_json(source / "spec.json", "model spec"),
        read_json(source / "metrics.json", "model metrics"),
    )
    if not isinstance(spec, dict) or not isinstance(metrics, dict):
        raise NasError(f"{source}: spec.json and metrics.json must hold JSON objects")
    missing = [key for key in ("architecture", "num_classes", "preprocessing") if key not in spec]
    if missing:
        raise NasError(f"{source / 'spec.json'}: missing {', '.join(missing)}")
    try:
        Architecture.from_dict(spec["architecture"])
        pre = spec["preprocessing"]
        ok = int(spec["num_classes"]) == len(pre["classes"]) >= 2 and len(pre["mean"]) == len(pre["std"]) == 3
    except (KeyError, TypeError, ValueError) as exc:
        raise NasError(f"{source / 'spec.json'}: invalid architecture or preprocessing ({exc})") from None
    if not ok:
        raise NasError(f"{source / 'spec.json'}: num_classes, classes, mean and std disagree")
    return spec, metrics


def _load_dataset(dataset, seed: int, pre: dict, source: Path):
    data = load_dataset(dataset, seed=seed)
    if list(data.classes) != list(pre["classes"]):
        raise NasError(
            f"dataset {data.name} has classes {list(data.classes)}, but {source} was searched on "
            f"{list(pre['classes'])}"
        )
    return data


def _stats_match(data, pre: dict) -> bool:
    return all(
        round(float(a), 6) == float(b) for a, b in zip((*data.mean, *data.std), (*pre["mean"], *pre["std"]))
    )


def _export(
    model, arch: Architecture, num_classes: int, pre: dict, metrics: dict, training: dict, out: Path
) -> None:
    model = model.to(memory_format=torch.contiguous_format).eval()
    write_model_folder(
        out, model, arch, num_classes, pre, metrics, metadata={"nas.training": json.dumps(training)}
    )


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise NasError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def _check_real(name: str, value, ok, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not ok(value):
        raise NasError(f"{name}: must be {what}, got {value!r}")
