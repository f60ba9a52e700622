"""Deployment training: train an exported architecture from scratch on every training image, optionally
distilled from a larger exported teacher, and re-export it (ONNX + spec.json + metrics.json).

Training uses the one loop of `ProxyTrainer` (`nas.evaluate.fit`: the `TrainingRecipe` optimizer, warm-up +
cosine schedule, label smoothing, augmentation, `channels_last`, seeding, `Preprocessing` and
`evaluate_accuracy`); only the epochs, the images per epoch and the loss (knowledge distillation) differ.
Without a teacher, `deploy_train(..., epochs=E, train_subset=S, seed=s)` trains exactly the network that
`ProxyTrainer(TrainingRecipe(epochs=E, train_subset=S)).train(arch, dataset, s)` trains.

The loop runs one epoch per `fit` call and checkpoints after each (`train_state.safetensors` in the output
folder: weights, optimizer, schedule, epoch, the data-order generator and the RNG states). Every epoch
starts from the checkpoint just written, so a run killed and started again continues from its last
completed epoch and ends with the same weights as one never interrupted (same machine and thread count).
The checkpoint names the command it belongs to; another command in the same folder is refused.
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from nas._checks import check_integer, check_number
from nas._io import read_json
from nas.builder import build_model
from nas.data import ImageDataset, load_dataset
from nas.errors import NasError
from nas.evaluate import Preprocessing, TrainingRecipe, evaluate_accuracy, fit, preprocessing_spec
from nas.exits import DEFAULT_MAX_DROP, calibrate_network, cascade_latency
from nas.export._checkpoint import STATE_FILE, command_identity, digest, load_state, save_state, saved_state
from nas.export._exits import add_exit_segments
from nas.export._folder import finished_export, mark_exported, write_model_folder
from nas.export._litert import check_export_format
from nas.export._network import converted_if_asked, place_tflite
from nas.export._teacher import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE, Teacher, distillation_loss
from nas.export._transfer import check_freeze, plan_transfer, read_init
from nas.space import Architecture

DEPLOYED_SUFFIX = "-deployed"
_COPIED_METRICS = (
    "trial",
    "baseline",
    "profile",
    "latency_ms",
    "latency_spread",
    "params",
    "macs",
    "macs_note",
)


@dataclass(frozen=True)
class EpochDone:
    """Passed to `deploy_train`'s `progress` after each epoch is checkpointed."""

    source: Path
    epoch: int  # epochs completed, 1-based
    epochs: int
    first_epoch: int  # epochs already done when this call started (a resumed run)
    seconds: float  # training seconds of this call so far

    @property
    def eta_seconds(self) -> float:
        done = self.epoch - self.first_epoch
        return self.seconds / done * (self.epochs - self.epoch) if done else math.nan


def check_settings(epochs, train_subset, seed, kd_alpha, kd_temperature) -> None:
    """The settings of a deployment training, checked before any model is read or trained."""
    check_integer("epochs", epochs, 1)
    if train_subset is not None:
        check_integer("train_subset", train_subset, 1)
    check_integer("seed", seed, 0)
    if seed >= 2**32:
        raise NasError(f"seed: must be below 2**32 (what torch accepts), got {seed!r}")
    check_number("kd_alpha", kd_alpha, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
    check_number("kd_temperature", kd_temperature, lambda v: v > 0, "a number > 0")


def deploy_train(
    export_dir: str | Path,
    *,
    dataset: Any = "builtin",
    epochs: int = 30,
    train_subset: int | None = None,
    seed: int = 0,
    teacher: str | Path | None = None,
    kd_alpha: float = DEFAULT_KD_ALPHA,
    kd_temperature: float = DEFAULT_KD_TEMPERATURE,
    out: str | Path | None = None,
    progress: Callable[[EpochDone], None] | None = None,
    init: str | Path | None = None,
    freeze_stages: int = 0,
    head_only: bool = False,
    export_format: str = "onnx",
) -> Path:
    """Train the architecture of `export_dir` from scratch (or from `init`) and export it to `out`.

    `dataset`: an `ImageDataset`, or a `load_dataset` source loaded with `seed` (the search's split when it
    is the search's dataset and seed; the builtin split is fixed). `train_subset`: images per epoch (None: all).
    `teacher`: another exported model folder, or its `.onnx` file, with the same preprocessing and
    classes; its ONNX Runtime logits on each augmented batch give the loss
    `(1 - kd_alpha) * CE_smoothed + kd_alpha * T^2 * KL(p_teacher^T || p_student^T)`.
    `out`: default `<export_dir>-deployed` next to `export_dir` (e.g. `export/00_HASH-deployed`). When it
    holds the checkpoint of the same command, training resumes from it; of another command, it is refused.
    `progress(EpochDone)` is called after each epoch's checkpoint is written.
    `init`: transfer (`nas.export._transfer`): start from the weights of a `nas train` or `nas export`
    folder or a checkpoint file, matched by module path and shape; the dataset may then have other classes
    than the export (its own classes and statistics become the model's preprocessing). `freeze_stages=K`
    freezes the stem and the first K stages; `head_only` freezes all of them (only the head trains).
    `export_format="tflite"`: model.tflite beside model.onnx, as `nas export --format tflite` writes it (the
    litert extra is checked before training; the format is not part of the command, so a finished training
    run again with another format only exports again).
    """
    check_settings(epochs, train_subset, seed, kd_alpha, kd_temperature)
    check_export_format(export_format)
    check_freeze(freeze_stages, head_only)
    if init is None and (freeze_stages or head_only):
        raise NasError("--freeze-stages and --head-only need --init (weights trained elsewhere to keep)")
    init_weights = read_init(init) if init is not None else None
    source = Path(export_dir)
    if source.is_file() and (source.parent / "spec.json").is_file():  # its model.onnx: the folder it is in
        source = source.parent
    spec, source_metrics = _read_export(source)
    arch = Architecture.from_dict(spec["architecture"])
    num_classes, pre = int(spec["num_classes"]), spec["preprocessing"]
    out = Path(out) if out is not None else source.parent / f"{source.name}{DEPLOYED_SUFFIX}"
    if out.resolve() == source.resolve():
        raise NasError(f"--out {out} is the source export folder; choose another folder")

    data = _load_dataset(dataset, seed, pre, source, other_classes=init is not None)
    if list(data.classes) != list(pre["classes"]):  # transfer to another task: its classes and statistics
        num_classes = data.num_classes
        pre = preprocessing_spec(data.mean, data.std, arch.resolution, data.classes)
    kd = Teacher(teacher, pre, source) if teacher is not None else None
    # The exported contract normalises with the spec's (rounded) statistics; when the dataset's own
    # statistics round to them (same dataset and split), train with the exact ones, as the search did.
    same_split = _stats_match(data, pre)
    mean, std = (data.mean, data.std) if same_split else (pre["mean"], pre["std"])
    norm = Preprocessing(mean, std, arch.resolution)

    recipe = TrainingRecipe(
        epochs=int(epochs), train_subset=None if train_subset is None else int(train_subset)
    )
    command = command_identity(arch, pre, data, recipe, int(seed), kd, float(kd_alpha), float(kd_temperature))
    transfer = None
    if init_weights is not None:
        network = build_model(arch, num_classes, seed=int(seed))
        transfer = plan_transfer(
            init_weights, network, data.classes, len(arch.stages), int(freeze_stages), head_only, source
        )
        command["transfer"] = init_weights.identity(int(freeze_stages), bool(head_only))
    state = saved_state(out, command, data.describe())
    exported_as = digest(  # what a re-run would write differently if any of it changed
        {
            "command": command,
            "format": export_format,
            "source": str(source),
            "source_export": [spec, source_metrics],
            "teacher": None if teacher is None else str(teacher),
            "init": None if init is None else str(init),
        }
    )
    if state is not None and int(state["epoch"]) >= recipe.epochs and finished_export(out, exported_as):
        return out  # this very training, exported to the end: nothing to train, evaluate or export
    model, train_seconds = _train(
        arch,
        num_classes,
        data,
        norm,
        recipe,
        int(seed),
        kd,
        float(kd_alpha),
        float(kd_temperature),
        out=out,
        source=source,
        command=command,
        state=state,
        progress=progress,
        prepare=None if transfer is None else transfer.prepare,
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
        "transfer": None if transfer is None else transfer.describe(),
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
        "transfer": training["transfer"],
        "training": training,
        **{key: source_metrics[key] for key in _COPIED_METRICS if key in source_metrics},
    }
    _export(model, arch, num_classes, pre, metrics, training, out, export_format)
    if arch.exits:  # early exits: calibrated again on this training's validation split, segments beside
        _add_exits(model, arch, data, norm, out)
    mark_exported(out, exported_as)
    return out


def _add_exits(model, arch: Architecture, data, norm, out: Path) -> None:
    """The cascade of a deployed network with exits, its expected latency measured on x86-cpu (as the model
    card measures the whole network's)."""
    from nas.latency import load_profile

    calibration = calibrate_network(model, data, norm, DEFAULT_MAX_DROP)
    expected = cascade_latency(
        model, arch.resolution, calibration.shares, load_profile("x86-cpu"), "measured"
    )
    add_exit_segments(out, model, arch, calibration.to_dict(), expected.to_dict())


def _train(
    arch,
    num_classes,
    dataset,
    norm,
    r: TrainingRecipe,
    seed: int,
    kd: Teacher | None,
    alpha: float,
    temperature: float,
    *,
    out: Path,
    source: Path,
    command: dict,
    state: dict | None,
    progress: Callable[[EpochDone], None] | None,
    prepare: Callable[[torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, float]:
    """The shared training loop (`nas.evaluate.fit`) one epoch at a time, each resumed from the checkpoint
    the epoch before wrote; an optional distillation term. Returns the model and its training seconds."""

    def distill(loss, logits, xb):
        return (1 - alpha) * loss + alpha * distillation_loss(logits, kd.logits(xb), temperature)

    path = out / STATE_FILE
    first = 0 if state is None else int(state["epoch"])
    total_seconds = 0.0 if state is None else float(state["train_seconds"])
    if state is not None:
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
    if first >= r.epochs:  # trained to the end before: only evaluation and export remain
        model = build_model(arch, num_classes, seed=seed).to(memory_format=torch.channels_last)
        model.load_state_dict(state["model"])
        return model.eval(), total_seconds
    seconds = 0.0
    for epoch in range(first + 1, r.epochs + 1):
        resume = None if state is None else _fit_state_bytes(state)
        model, took, paused = fit(
            arch,
            num_classes,
            dataset,
            norm,
            r,
            seed,
            distill if kd is not None else None,
            resume=resume,
            stop_after=epoch,
            prepare=prepare,
        )
        seconds += took
        total_seconds += took
        saved = {"epoch": epoch, "model": model.state_dict()} if paused is None else _fit_state(paused)
        out.mkdir(parents=True, exist_ok=True)
        save_state(
            path,
            {
                **saved,
                "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(legacy=False),
                "train_seconds": total_seconds,
                "command": command,
            },
        )
        if paused is not None:
            state = load_state(path)  # the next epoch starts from what a resumed run would read
        if progress is not None:
            progress(EpochDone(source, epoch, r.epochs, first, seconds))
    return model, total_seconds


_OWN_KEYS = ("python_rng", "numpy_rng", "train_seconds", "command")  # the rest is fit's pause state


def _fit_state(paused: bytes) -> dict:
    """`fit`'s pause state (bytes this process just made) as a dict."""
    return torch.load(io.BytesIO(paused), map_location="cpu", weights_only=False)


def _fit_state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save({key: value for key, value in state.items() if key not in _OWN_KEYS}, buffer)
    return buffer.getvalue()


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


def _load_dataset(dataset, seed: int, pre: dict, source: Path, *, other_classes: bool = False):
    """`dataset` (an `ImageDataset` as it is, else a `load_dataset` source); its classes must be the
    export's unless the training transfers (`other_classes`)."""
    data = dataset if isinstance(dataset, ImageDataset) else load_dataset(dataset, seed=seed)
    if not other_classes and list(data.classes) != list(pre["classes"]):
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
    model,
    arch: Architecture,
    num_classes: int,
    pre: dict,
    metrics: dict,
    training: dict,
    out: Path,
    export_format: str,
) -> None:
    model = model.to(memory_format=torch.contiguous_format).eval()
    tflite, tflite_entry = converted_if_asked(model, arch, pre, export_format)
    metadata = {"nas.training": json.dumps(training)}
    _, _, metrics_path, _ = write_model_folder(
        out, model, arch, num_classes, pre, metrics, metadata=metadata, spec=tflite_entry
    )
    place_tflite(out, tflite, metrics_path)
