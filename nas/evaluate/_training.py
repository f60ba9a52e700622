"""The expensive objective: proxy accuracy after a short, seeded training run.

`Trainer` is the extension point (a custom trainer can be passed to `nas.search`); `ProxyTrainer`
is the default: SGD with Nesterov momentum, linear warm-up then cosine decay, label smoothing,
random-crop + flip augmentation, channels_last (about 2x faster on CPU), one thread per worker.

Training runs on the CPU or on a CUDA GPU (`resolve_device`): on CUDA the data is held on the GPU, the
forward pass runs under bf16 autocast where the GPU supports it (`autocast_dtype`), and cuDNN is asked for
deterministic algorithms. On the CPU nothing of that applies: results are those of full-precision training.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nas._io import checkpoint_bytes
from nas.builder import build_model
from nas.errors import NasError
from nas.exits import DEFAULT_MAX_DROP, calibrate_network, joint_exit_loss
from nas.space import Architecture

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str, gpus: float | None = None) -> str:
    """The device training runs on, 'cpu' or 'cuda'. `gpus`: how many GPUs the workers have (a Ray cluster's
    GPU resources); None: this process's `torch.cuda.is_available()`. `auto` is CUDA where there is a GPU;
    `cuda` without one is a user error."""
    if requested not in DEVICES:
        raise NasError(f"device: unknown device {requested!r} (choose from {', '.join(DEVICES)})")
    has_gpu = torch.cuda.is_available() if gpus is None else gpus > 0
    if requested == "auto":
        return "cuda" if has_gpu else "cpu"
    if requested == "cuda" and not has_gpu:
        raise NasError("device cuda: no CUDA GPU here or in the Ray cluster; use --device cpu (or auto)")
    return requested


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The mixed-precision type training and validation run under: bf16 on a CUDA GPU that supports it (no
    loss scaling needed), else None: full precision, always on the CPU."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _autocast(device: torch.device):
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _deterministic_cuda() -> None:
    """Ask CUDA for reproducible kernels: deterministic cuDNN convolutions, no autotuning, cuBLAS with a
    fixed workspace, and a warning (not an error) for the few ops that have no deterministic CUDA kernel."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass(frozen=True)
class TrainingRecipe:
    epochs: int = 4
    train_subset: int | None = 2500  # images per epoch drawn from the training split (None: all)
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.5
    augment: bool = True
    robust: bool = False  # also measure accuracy under a cheap set of corruptions (nas.validate)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingResult:
    accuracy: float  # top-1 on the validation split, in [0, 1]
    val_loss: float
    train_seconds: float
    eval_seconds: float
    epochs: int
    state_dict: bytes  # the trained weights as safetensors, so export needs no retraining
    robustness: dict | None = None  # nas.validate.corrupted_accuracy, when the recipe asks for it
    resume_state: bytes | None = None  # set when training paused before the recipe's last epoch
    device: str | None = None  # where it trained: "cpu", or "cuda (GPU name, bf16)"
    exits: dict | None = None  # early exits: nas.exits.Calibration.to_dict(); `accuracy` is the cascade's
    # time.monotonic() as the training loop ended: lets the driver take out what it froze (nas.search._freeze)
    train_ended_at: float | None = None


class Trainer(ABC):
    """Turns an architecture into a validation accuracy. Must be picklable (it travels to Ray workers)."""

    @abstractmethod
    def train(self, arch: Architecture, dataset, seed: int) -> TrainingResult: ...


class ProxyTrainer(Trainer):
    """device: 'cpu' or 'cuda' (the GPU the worker was given), as `resolve_device` chose it."""

    def __init__(
        self,
        recipe: TrainingRecipe = TrainingRecipe(),
        threads: int = 1,
        device: str = "cpu",
        exit_max_drop: float = DEFAULT_MAX_DROP,
    ):
        """exit_max_drop: for a network with early exits, the accuracy points its calibrated cascade may
        lose against its final exit (the accuracy returned is then the cascade's)."""
        self.recipe = recipe
        self.threads = threads
        self.device = device
        self.exit_max_drop = exit_max_drop

    def train(
        self,
        arch: Architecture,
        dataset,
        seed: int,
        *,
        stop_after: int | None = None,
        resume: bytes | None = None,
    ) -> TrainingResult:
        """`stop_after`/`resume`: pause after that epoch of the full schedule, and continue from the
        returned `resume_state` (see `fit`)."""
        torch.set_num_threads(self.threads)
        r = self.recipe
        norm = Preprocessing(dataset.mean, dataset.std, arch.resolution)
        device = torch.device(getattr(self, "device", "cpu"))  # a subclass may not call this __init__
        model, train_seconds, paused = fit(
            arch,
            dataset.num_classes,
            dataset,
            norm,
            r,
            seed,
            resume=resume,
            stop_after=stop_after,
            device=device,
        )
        train_ended_at = time.monotonic()
        start = time.perf_counter()
        accuracy, val_loss = evaluate_accuracy(model, dataset, norm)
        exits = None
        if arch.exits and paused is None:
            calibration = calibrate_network(
                model, dataset, norm, getattr(self, "exit_max_drop", DEFAULT_MAX_DROP)
            )
            accuracy, exits = calibration.cascade_accuracy, calibration.to_dict()
        model = model.cpu()  # the corruptions and the checkpoint work on the CPU (a no-op there)
        robustness = None
        if r.robust and paused is None:
            from nas.validate import corrupted_accuracy

            robustness = corrupted_accuracy(model, dataset, norm, seed=seed)  # same seed: same images for all
        return TrainingResult(
            accuracy=accuracy,
            val_loss=val_loss,
            train_seconds=train_seconds,
            eval_seconds=time.perf_counter() - start,
            epochs=r.epochs if paused is None else min(stop_after, r.epochs),
            state_dict=checkpoint_bytes(model.state_dict()),
            robustness=robustness,
            resume_state=paused,
            device=describe_device(device),
            exits=exits,
            train_ended_at=train_ended_at,
        )


def describe_device(device: str | torch.device) -> str:
    """'cpu', or 'cuda (GPU name, bf16)': what a trial records about where it trained."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    precision = "bf16" if autocast_dtype(device) is not None else "fp32"
    return f"cuda ({torch.cuda.get_device_name(device)}, {precision})"


def fit(
    arch: Architecture,
    num_classes: int,
    dataset,
    norm: Preprocessing,
    r: TrainingRecipe,
    seed: int,
    extra_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    resume: bytes | None = None,
    stop_after: int | None = None,
    device: str | torch.device = "cpu",
    prepare: Callable[[torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, float, bytes | None]:
    """The one training loop (proxy and deployment training): a seeded model trained per `r`.

    `extra_loss(loss, logits, batch)` may replace the loss (knowledge distillation). `stop_after=E` pauses
    after epoch E of the full schedule and returns its state; `resume=` that state continues exactly where it
    paused (multi-fidelity rungs: a survivor costs `r.epochs` in all, not its rungs plus `r.epochs`).
    Returns the model in eval mode, the seconds this call's loop took, and the state when it paused (else None).

    `device`: the model and the training split live there; the random draws (order, crops, flips) come from
    the same seeded NumPy stream on every device, and the weights are initialised on the CPU, so a CUDA
    training starts exactly where the CPU one does.

    `prepare(model)` runs on the built model before the optimizer is made (transfer: load weights trained
    elsewhere, freeze stages); a `resume` state then replaces the weights it loaded.
    """
    device = torch.device(device)
    torch.manual_seed(seed)  # seeds the CUDA generators too (dropout on the GPU)
    if device.type == "cuda":
        _deterministic_cuda()
    rng = np.random.default_rng(seed)
    model = build_model(arch, num_classes, seed=seed)
    if prepare is not None:
        prepare(model)
    model = model.to(device, memory_format=torch.channels_last)
    x_train = torch.from_numpy(np.ascontiguousarray(dataset.x_train)).to(device)
    y_train = torch.from_numpy(np.asarray(dataset.y_train, dtype=np.int64)).to(device)
    per_epoch = min(r.train_subset or len(y_train), len(y_train))
    batch_size = min(r.batch_size, per_epoch)
    steps_per_epoch = max(1, per_epoch // batch_size)
    total_steps = steps_per_epoch * r.epochs
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=r.lr,
        momentum=r.momentum,
        nesterov=True,
    )
    warmup = max(1, int(r.warmup_epochs * steps_per_epoch))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup
            if s < warmup
            else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total_steps - warmup)))
        ),
    )
    first_epoch = 0
    if resume is not None:
        state = torch.load(io.BytesIO(resume), map_location="cpu", weights_only=False)
        first_epoch = state["epoch"]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    last_epoch = r.epochs if stop_after is None else min(stop_after, r.epochs)
    start = time.perf_counter()
    model.train()
    for _ in range(first_epoch, last_epoch):
        order = torch.from_numpy(rng.permutation(len(y_train))[: steps_per_epoch * batch_size]).to(device)
        for idx in order.view(steps_per_epoch, batch_size):
            xb = norm(x_train[idx], augment=r.augment, generator=rng)
            with _autocast(device):
                if hasattr(model, "exits"):  # early exits: all of them trained jointly (nas.exits)
                    outputs = model.forward_exits(xb)
                    logits = outputs[-1]
                    loss = joint_exit_loss(outputs, y_train[idx], r.label_smoothing)
                else:
                    logits = model(xb)
                    loss = F.cross_entropy(logits, y_train[idx], label_smoothing=r.label_smoothing)
                if extra_loss is not None:
                    loss = extra_loss(loss, logits, xb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start
    paused = None
    if last_epoch < r.epochs:
        buffer = io.BytesIO()
        torch.save(
            {
                "epoch": last_epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            },
            buffer,
        )
        paused = buffer.getvalue()
    model.eval()
    return model, seconds, paused


@torch.no_grad()
def evaluate_accuracy(
    model: torch.nn.Module, dataset, norm: Preprocessing, batch_size: int = 100
) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) on the validation split, computed by `inference_copy(model)`.
    Batches of 100: on the CPU the activations of a wide network then stay in cache (a quarter faster than
    500 for such networks, measured with the folded BatchNorm over the mobilenet space)."""
    model.eval()
    device = next(model.parameters()).device  # the model's: the CPU, or the GPU it trained on
    net = inference_copy(model)
    x_val = torch.from_numpy(np.ascontiguousarray(dataset.x_val)).to(device)
    y_val = torch.from_numpy(np.asarray(dataset.y_val, dtype=np.int64)).to(device)
    correct, loss = 0, 0.0
    for i in range(0, len(y_val), batch_size):
        with _autocast(device):
            logits = net(norm(x_val[i : i + batch_size], augment=False))
        logits = logits.float()
        correct += int((logits.argmax(1) == y_val[i : i + batch_size]).sum())
        loss += float(F.cross_entropy(logits, y_val[i : i + batch_size], reduction="sum"))
    return correct / len(y_val), loss / len(y_val)


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` in eval mode with every BatchNorm that directly follows a convolution in a Sequential
    (`conv_bn`) folded into that convolution: the same function up to float rounding, with one pass over the
    activations less per convolution. `model` itself is not changed (its weights are the checkpoint)."""
    net = copy.deepcopy(model).eval()
    for seq in net.modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if (
                isinstance(conv, torch.nn.Conv2d)
                and isinstance(bn, torch.nn.BatchNorm2d)
                and bn.running_mean is not None
                and bn.running_var is not None
            ):
                fused = fuse_conv_bn_eval(conv, bn)
                if conv.weight.is_contiguous(memory_format=torch.channels_last):
                    fused.weight.data = fused.weight.data.contiguous(memory_format=torch.channels_last)
                seq._modules[first], seq._modules[second] = fused, torch.nn.Identity()
    return net


class Preprocessing:
    """uint8 NHWC batch -> normalised float NCHW (channels_last) at the model's resolution, optionally augmented.

    The code every model is trained and validated with; `preprocessing_spec` describes it for exported models.
    Called with a batch alone it prepares evaluation input (no augmentation), so it serves wherever a plain
    callable batch -> model input is expected (e.g. `nas.validate.corrupted_accuracy`).
    """

    def __init__(self, mean, std, resolution: int):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.resolution = resolution

    def __call__(
        self, batch: torch.Tensor, augment: bool = False, generator: np.random.Generator | None = None
    ) -> torch.Tensor:
        x = batch.permute(0, 3, 1, 2).float()
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(
                x,
                size=(self.resolution, self.resolution),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        if augment:
            x = _random_crop_flip(x, generator)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)  # .to: a no-op on the CPU
        return x.contiguous(memory_format=torch.channels_last)


def _random_crop_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))  # drawn on the host: the same crops on every device
    on = x.device
    rows = torch.from_numpy(dy).to(on)[:, None] + torch.arange(h, device=on)[None, :]
    cols = torch.from_numpy(dx).to(on)[:, None] + torch.arange(w, device=on)[None, :]
    out = padded[
        torch.arange(n, device=on)[:, None, None, None],
        torch.arange(3, device=on)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    flip = torch.from_numpy(rng.random(n) < 0.5).to(on)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def preprocessing_spec(mean, std, resolution: int, classes) -> dict:
    """The exact input contract of a trained model, written into exported ONNX metadata and spec JSON.

    It mirrors `Preprocessing` (the code the model was trained and validated with).
    """
    return {
        "input_name": "input",
        "input_shape": ["batch", 3, resolution, resolution],
        "dtype": "float32",
        "layout": "NCHW",
        "channel_order": "RGB",
        "resize": f"bilinear (antialiased) to {resolution}x{resolution} when the image differs",
        "scale": "divide uint8 pixel values by 255",
        "mean": [round(float(m), 6) for m in mean],
        "std": [round(float(s), 6) for s in std],
        "formula": "x = (pixel / 255 - mean) / std, per channel",
        "output": "logits (batch, num_classes); softmax for probabilities",
        "classes": list(classes),
    }
