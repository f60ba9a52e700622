"""The expensive objective: proxy accuracy after a short, seeded training run.

`Trainer` is the extension point (a custom trainer can be passed to `nas.search`); `ProxyTrainer`
is the default: SGD with Nesterov momentum, linear warm-up then cosine decay, label smoothing,
random-crop + flip augmentation, channels_last (about 2x faster on CPU), one thread per worker.
"""

from __future__ import annotations

import io
import math
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from nas._io import checkpoint_bytes
from nas.builder import build_model
from nas.space import Architecture


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


class Trainer(ABC):
    """Turns an architecture into a validation accuracy. Must be picklable (it travels to Ray workers)."""

    @abstractmethod
    def train(self, arch: Architecture, dataset, seed: int) -> TrainingResult: ...


class ProxyTrainer(Trainer):
    def __init__(self, recipe: TrainingRecipe = TrainingRecipe(), threads: int = 1):
        self.recipe = recipe
        self.threads = threads

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
        model, train_seconds, paused = fit(
            arch, dataset.num_classes, dataset, norm, r, seed, resume=resume, stop_after=stop_after
        )
        start = time.perf_counter()
        accuracy, val_loss = evaluate_accuracy(model, dataset, norm)
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
        )


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
) -> tuple[torch.nn.Module, float, bytes | None]:
    """The one training loop (proxy and deployment training): a seeded model trained per `r`.

    `extra_loss(loss, logits, batch)` may replace the loss (knowledge distillation). `stop_after=E` pauses
    after epoch E of the full schedule and returns its state; `resume=` that state continues exactly where it
    paused (multi-fidelity rungs: a survivor costs `r.epochs` in all, not its rungs plus `r.epochs`).
    Returns the model in eval mode, the seconds this call's loop took, and the state when it paused (else None).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(arch, num_classes, seed=seed).to(memory_format=torch.channels_last)
    x_train = torch.from_numpy(np.ascontiguousarray(dataset.x_train))
    y_train = torch.from_numpy(np.asarray(dataset.y_train, dtype=np.int64))
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
    last_epoch = r.epochs if stop_after is None else min(stop_after, r.epochs)
    start = time.perf_counter()
    model.train()
    for _ in range(first_epoch, last_epoch):
        order = torch.from_numpy(rng.permutation(len(y_train))[: steps_per_epoch * batch_size])
        for idx in order.view(steps_per_epoch, batch_size):
            xb = norm(x_train[idx], augment=r.augment, generator=rng)
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
            },
            buffer,
        )
        paused = buffer.getvalue()
    model.eval()
    return model, seconds, paused


@torch.no_grad()
def evaluate_accuracy(
    model: torch.nn.Module, dataset, norm: Preprocessing, batch_size: int = 500
) -> tuple[float, float]:
    model.eval()
    x_val = torch.from_numpy(np.ascontiguousarray(dataset.x_val))
    y_val = torch.from_numpy(np.asarray(dataset.y_val, dtype=np.int64))
    correct, loss = 0, 0.0
    for i in range(0, len(y_val), batch_size):
        logits = model(norm(x_val[i : i + batch_size], augment=False))
        correct += int((logits.argmax(1) == y_val[i : i + batch_size]).sum())
        loss += float(F.cross_entropy(logits, y_val[i : i + batch_size], reduction="sum"))
    return correct / len(y_val), loss / len(y_val)


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
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last)


def _random_crop_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    rows = torch.from_numpy(dy)[:, None] + torch.arange(h)[None, :]
    cols = torch.from_numpy(dx)[:, None] + torch.arange(w)[None, :]
    out = padded[
        torch.arange(n)[:, None, None, None],
        torch.arange(3)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    flip = torch.from_numpy(rng.random(n) < 0.5)
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
