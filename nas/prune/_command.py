"""`prune_export`: an exported model cut to a latency target, fine-tuned and re-exported into a new folder.

What `--out` holds: `prune.json` (the command, every cut, the latency before and after), `cut/` (the cut
network before fine-tuning: spec.json with its pruned architecture, metrics.json, weights.safetensors) and,
beside them, the fine-tuned model exactly as `nas train` writes one (model.onnx checked against PyTorch,
spec.json, metrics.json with a `pruning` entry, train_state.safetensors) and its model card. With `distill`
the fine-tuning also learns from the network before the cut (knowledge distillation: `nas train --teacher`'s
loss, the source's model.onnx as teacher), the standard recovery after pruning. The same command again
resumes (the cut is deterministic; the fine-tuning resumes from its last epoch); any other content in
`--out` is refused, and the source folder is only read.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas._checks import check_integer, check_number
from nas._io import check_output_path, checkpoint_bytes, read_json, write_atomic, write_json_atomic
from nas.errors import NasError
from nas.export import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE  # nas train --teacher's defaults
from nas.space import Architecture

PRUNE_FILE = "prune.json"
CUT_FOLDER = "cut"
WEIGHTS_FILE = "weights.safetensors"


def default_out(source: Path, latency_ms: float, profile: str) -> Path:
    return source.parent / f"{source.name}-pruned-{profile}-{latency_ms:g}ms"


def prune_export(
    export_dir: str | Path,
    latency_ms: float,
    *,
    profile: str = "x86-cpu",
    latency: str = "auto",
    out: str | Path | None = None,
    epochs: int = 5,
    train_subset: int | None = None,
    dataset="builtin",
    seed: int = 0,
    calibration_images: int = 512,
    distill: bool = False,
    kd_alpha: float = DEFAULT_KD_ALPHA,
    kd_temperature: float = DEFAULT_KD_TEMPERATURE,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Cut `export_dir` (a `nas export` or `nas train` folder) until its latency on `profile` is at most
    `latency_ms`, fine-tune it `epochs` epochs (`train_subset` images each) and export it; returns the
    output folder. The latency is predicted by the profile's model (with its interval) on a predicted
    profile, measured with ONNX Runtime on a measured one (x86-cpu); `calibration_images` training images
    measure each cut's loss. `latency="predicted"` judges a measured profile by its model for this machine
    (as `nas search --latency predicted`). `distill`: fine-tune with the loss
    `(1 - kd_alpha) * CE + kd_alpha * T^2 * KL` against the source network's logits (T = `kd_temperature`);
    the teacher's forward pass adds its compute to every training step."""
    from nas.data import load_dataset
    from nas.export import check_settings, deploy_train, read_init
    from nas.latency import load_profile

    say = progress or (lambda message: None)
    _check_settings(latency_ms, epochs, train_subset, seed, calibration_images)
    if not isinstance(distill, bool):
        raise NasError(f"distill: must be True or False, got {distill!r}")
    check_settings(epochs, train_subset, seed, kd_alpha, kd_temperature)
    source = _source(export_dir)
    teacher = _teacher(source) if distill else None
    spec, arch, num_classes, pre = _read_spec(source)
    hardware = load_profile(profile)
    judge = _judge(hardware, _latency_mode(latency, hardware), num_classes)
    out = Path(out) if out is not None else default_out(source, latency_ms, hardware.name)
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise NasError(f"--out {out}: inside the source folder {source}; the pruned model goes elsewhere")
    check_output_path(out, "--out")
    if out.is_dir() and any(out.iterdir()) and not (out / PRUNE_FILE).is_file():
        raise NasError(f"--out {out}: holds other files (not a nas prune output); choose another --out")
    data = load_dataset(dataset, seed=seed)
    if list(data.classes) != list(pre["classes"]):
        raise NasError(
            f"--dataset {data.name}: classes {list(data.classes)} are not the model's {pre['classes']}"
        )
    try:
        weights = read_init(source)
    except NasError as exc:  # its messages name the flag of `nas train --init`
        raise NasError(str(exc).replace(f"--init {source}", f"EXPORT_DIR {source}")) from None
    command = {
        "source": str(source.resolve()),
        "source_weights_sha256": weights.digest,
        "latency_ms": float(latency_ms),
        "profile": hardware.name,
        "latency": judge.how,
        "profile_sha256": hashlib.sha256(Path(hardware.path).read_bytes()).hexdigest()[:16],
        "dataset": data.name,
        "epochs": int(epochs),
        "train_subset": train_subset,
        "seed": int(seed),
        "calibration_images": int(calibration_images),
    }
    if teacher is not None:  # absent without distillation: records of plain fine-tuning stay the same command
        command["distill"] = {
            "teacher": "EXPORT_DIR",
            "alpha": float(kd_alpha),
            "temperature": float(kd_temperature),
        }
    record = _previous(out, command)
    if record is not None and record.get("finished"):
        say(f"{out}: already pruned and fine-tuned by this command; nothing to do")
        return out

    cut = out / CUT_FOLDER
    if record is None or not all(
        (cut / name).is_file() for name in ("spec.json", "metrics.json", WEIGHTS_FILE)
    ):
        record = _cut(source, spec, arch, num_classes, pre, weights.weights, judge, data, command, out, say)

    def epoch_done(done) -> None:
        say(f"fine-tuning: epoch {done.epoch}/{done.epochs} ({done.seconds:.0f} s)")

    deploy_train(
        cut,
        dataset=data,
        epochs=epochs,
        train_subset=train_subset,
        seed=seed,
        init=cut / WEIGHTS_FILE,
        teacher=teacher,
        kd_alpha=kd_alpha,
        kd_temperature=kd_temperature,
        out=out,
        progress=epoch_done,
    )
    metrics = read_json(out / "metrics.json", "model metrics")
    summary = {
        key: record[key] for key in ("latency_before", "latency_after", "accuracy_before", "accuracy_cut")
    }
    pruning = {"source": str(source), "target_ms": float(latency_ms), "profile": hardware.name, **summary}
    write_json_atomic(out / "metrics.json", {**metrics, "pruning": pruning})
    from nas.validate import write_model_card

    write_model_card(out)
    write_json_atomic(
        out / PRUNE_FILE, {**record, "accuracy_fine_tuned": metrics.get("accuracy"), "finished": True}
    )
    return out


def _cut(source, spec, arch, num_classes, pre, weights, judge, data, command, out, say) -> dict:
    """Cut the network to the target, then write prune.json and `cut/` (nothing before the cut is done);
    returns the record."""
    from nas.builder import build_model
    from nas.evaluate import Preprocessing, count_costs, evaluate_accuracy
    from nas.prune._cut import cut_to_latency

    start = time.perf_counter()
    model = build_model(arch, num_classes)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise NasError(
            f"{source}: its weights do not fit its spec.json architecture ({str(exc).splitlines()[0]})"
        )
    model.eval()
    norm = Preprocessing(pre["mean"], pre["std"], arch.resolution)
    rng = np.random.default_rng(command["seed"])
    chosen = rng.choice(
        len(data.y_train), size=min(command["calibration_images"], len(data.y_train)), replace=False
    )
    images = norm(torch.from_numpy(np.ascontiguousarray(data.x_train[np.sort(chosen)])))
    labels = torch.from_numpy(np.asarray(data.y_train[np.sort(chosen)], dtype=np.int64))
    accuracy_before, _ = evaluate_accuracy(model, data, norm)
    costs_before = count_costs(model, arch.resolution)
    say(f"pruning {source} to {command['latency_ms']:g} ms on {command['profile']} ({judge.how})")

    def step_done(step) -> None:
        say(
            f"cut {step.layer}: {step.channels_before} -> {step.channels_after} channels, "
            f"{step.latency_ms:.4g} ms, calibration loss {step.loss:.3f}"
        )

    outcome = cut_to_latency(model, arch, images, labels, judge, command["latency_ms"], step_done)
    if not outcome.steps:
        raise NasError(
            f"EXPORT_DIR {source}: already at {outcome.latency_before['latency_ms']:.4g} ms on {command['profile']} "
            f"({outcome.latency_before['how']}), within --latency-ms {command['latency_ms']:g}: nothing to prune"
        )
    _check_rebuilt(model, outcome.arch, num_classes)
    accuracy_cut, _ = evaluate_accuracy(model, data, norm)
    costs = count_costs(model, arch.resolution)
    latency = outcome.latency_after
    cut = out / CUT_FOLDER
    cut.mkdir(parents=True, exist_ok=True)
    metrics = {
        **read_json(source / "metrics.json", "model metrics"),  # the search's record (proxy accuracy, trial)
        "source": str(source),
        "profile": command["profile"],
        "latency_ms": latency["latency_ms"],
        "latency": latency,
        "params": costs.params,
        "macs": costs.macs,
        "accuracy_cut": accuracy_cut,
    }
    cut_spec = {
        key: value
        for key, value in spec.items()
        if key not in ("architecture", "arch_hash", "onnx", "tflite")
    }
    cut_spec = {
        **cut_spec,
        "arch_hash": outcome.arch.hash,
        "architecture": outcome.arch.to_dict(),
        "pruned_from": str(source),
    }
    record = {
        "command": command,
        "finished": False,
        "latency_judged": judge.how,
        "latency_before": outcome.latency_before,
        "latency_after": latency,
        "accuracy_before": accuracy_before,
        "accuracy_cut": accuracy_cut,
        "params_before": costs_before.params,
        "params_after": costs.params,
        "macs_before": costs_before.macs,
        "macs_after": costs.macs,
        "calibration_loss_before": outcome.loss_before,
        "cuts_priced": outcome.cuts_priced,
        "steps": [step.to_dict() for step in outcome.steps],
        "architecture_before": arch.summary(),
        "architecture_after": outcome.arch.summary(),
        "cut_seconds": round(time.perf_counter() - start, 1),
    }
    write_json_atomic(out / PRUNE_FILE, record)
    write_atomic(cut / WEIGHTS_FILE, checkpoint_bytes(model.state_dict()))
    write_json_atomic(cut / "metrics.json", metrics)
    write_json_atomic(cut / "spec.json", cut_spec)
    return record


def _latency_mode(latency, hardware) -> str:
    if latency not in ("auto", "predicted", "measured"):
        raise NasError(f"--latency: must be auto, predicted or measured, got {latency!r}")
    if latency == "measured" and hardware.latency != "measured":
        raise NasError(
            f"--latency measured: profile {hardware.name!r} is a remote device, its latency is predicted"
        )
    return hardware.latency if latency == "auto" else latency


def _judge(hardware, mode: str, num_classes: int):
    """Predicted: the profile's model judges (a measured profile's model for this machine). Measured
    (x86-cpu): measured here, priced by the model for this machine when there is one, else by the
    profile's own (it then only ranks the cuts)."""
    from nas.latency import local_profile, measure_latency
    from nas.onnx_io import export_onnx
    from nas.prune._cut import LatencyJudge

    if hardware.latency != "measured":
        how = f"predicted by the {hardware.name} latency model"
        return LatencyJudge(hardware.predictor, num_classes, how=how)
    if mode == "predicted":
        here = local_profile(hardware)  # else one line naming `nas profile calibrate`
        return LatencyJudge(
            here.predictor, num_classes, how=f"predicted by the {hardware.name} model for this machine"
        )
    try:
        priced_by = local_profile(hardware)
        how = "priced by its model for this machine"
    except NasError:
        priced_by = hardware
        how = "priced by its model fitted on another machine (it only ranks the cuts)"

    def measure(model, arch) -> dict:
        measured = measure_latency(export_onnx(model, arch.resolution, fast=True), hardware.measurement)
        return {"latency_ms": measured.median_ms, "spread": measured.spread}

    return LatencyJudge(
        priced_by.predictor, num_classes, measure=measure, how=f"measured with ONNX Runtime, {how}"
    )


def _check_rebuilt(model, arch: Architecture, num_classes: int) -> None:
    """The spec describes the cut network: rebuilt from it, the cut weights load by name and shape and
    compute the same logits (a mismatch is a bug, never shipped)."""
    from nas.builder import build_model

    rebuilt = build_model(arch, num_classes).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((rebuilt(x) - model(x)).abs().max())
    if diff > 1e-4:
        raise RuntimeError(
            f"the pruned network rebuilt from its spec differs (max |logit difference| {diff:.3g})"
        )


def _previous(out: Path, command: dict) -> dict | None:
    """prune.json of the same command in `out` (resume), None for a new or empty folder; else refused."""
    if not out.exists() or not any(out.iterdir()):
        return None
    record = read_json(out / PRUNE_FILE, "prune record") if (out / PRUNE_FILE).is_file() else None
    if not isinstance(record, dict) or "command" not in record:
        raise NasError(f"--out {out}: holds other files (not a nas prune output); choose another --out")
    if record["command"] != command:
        differ = sorted(
            k for k in {**record["command"], **command} if record["command"].get(k) != command.get(k)
        )
        raise NasError(
            f"--out {out}: holds a prune of another command (differs in {', '.join(differ)}); choose another --out"
        )
    return record


def _teacher(source: Path) -> Path:
    """The source's model.onnx, the teacher of a distilled fine-tuning (checked before anything is cut)."""
    from nas.export import teacher_onnx

    try:
        return teacher_onnx(source)
    except NasError:
        raise NasError(
            f"EXPORT_DIR {source}: --distill needs its model.onnx (the network before the cut is the teacher); "
            "not found"
        ) from None


def _source(export_dir) -> Path:
    source = Path(export_dir)
    if source.is_file() and (source.parent / "spec.json").is_file():  # its model.onnx
        source = source.parent
    if not source.is_dir():
        raise NasError(f"EXPORT_DIR {source}: exported model folder not found")
    for name in ("spec.json", "metrics.json"):
        if not (source / name).is_file():
            raise NasError(f"EXPORT_DIR {source}: not an exported model folder (missing {name})")
    return source


def _read_spec(source: Path):
    spec = read_json(source / "spec.json", "model spec")
    try:
        arch = Architecture.from_dict(spec["architecture"])
        pre = spec["preprocessing"]
        num_classes = int(spec["num_classes"])
        if num_classes != len(pre["classes"]):
            raise ValueError("num_classes and classes disagree")
    except (KeyError, TypeError, ValueError) as exc:
        raise NasError(f"{source / 'spec.json'}: invalid architecture or preprocessing ({exc})") from None
    return spec, arch, num_classes, pre


def _check_settings(latency_ms, epochs, train_subset, seed, calibration_images) -> None:
    check_number("--latency-ms", latency_ms, lambda v: v > 0, "a number > 0")
    for flag, value, minimum in (
        ("--epochs", epochs, 1),
        ("--seed", seed, 0),
        ("--calibration-images", calibration_images, 1),
    ):
        check_integer(flag, value, minimum)
    if train_subset is not None:
        check_integer("--train-subset", train_subset, 1)
