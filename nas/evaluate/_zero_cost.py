"""Training-free ("zero-cost") scores of an untrained candidate, for cheap pre-screening.

Each score is a function ``score(model, batch_x, batch_y) -> float`` (higher = predicted better),
computed at initialization, deterministic for a given model and batch, and leaving the model as it
found it (weights, BatchNorm buffers, train/eval mode; gradients are cleared):

- ``synflow`` (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively conserving
  synaptic flow"): in float64, every parameter and buffer is replaced by its absolute value, one input
  of ones (shape ``1 x C x H x W`` of the batch) goes through the network, the sum of the output is
  back-propagated and the score is ``sum |theta * dR/dtheta|`` over all parameters. As in the paper's
  reference implementation (``model.eval()`` while scoring), BatchNorm runs in **eval mode**, i.e. with
  its running statistics (mean 0, variance 1 at initialization: a positive affine map); dropout is off.
  The original weights, dtype and mode are restored afterwards. The score is the raw sum (it can be
  large; only its order matters).
- ``naswot`` (Mellor et al. 2021, "Neural architecture search without training"): every ReLU, ReLU6
  and Hardswish output is binarised as ``output > 0`` per sample (for Hardswish,
  ``x * relu6(x + 3) / 6 > 0`` exactly when ``x > 0``, so its code is the sign of its input, like a
  ReLU; the SE block's inner ReLU counts too). With codes ``c`` the kernel is
  ``K = sum over units of c c^T + (1 - c)(1 - c)^T`` (agreements between two images, a
  ``batch x batch`` matrix) and the score is ``log |det K|``; ``-inf`` when two images share every code
  (singular kernel). The network runs in train mode (BatchNorm on batch statistics), without gradients.
- ``grad_norm``: L2 norm of the gradient of the cross-entropy loss of the batch (train mode), over all
  parameters together (``sqrt(sum of squared gradients)``).
- ``params``, ``macs``: the baselines, from `nas.evaluate.count_costs`.

`zero_cost_scores` builds the candidate with `build_model(arch, num_classes, seed)` (a fresh copy per
score, so one score cannot influence another), draws a fixed seeded batch from the training split and
returns every score and the seconds it took (``"<name>_seconds"``), on one thread.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError

ScoreFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish)


@contextlib.contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Restore the weights, buffers, dtype and train/eval mode of `model`, and clear its gradients."""
    modules = list(model.modules())
    params = [(m, k, p.detach().clone()) for m in modules for k, p in m._parameters.items() if p is not None]
    buffers = [(m, k, b.clone()) for m in modules for k, b in m._buffers.items() if b is not None]
    modes = {m: m.training for m in modules}
    try:
        yield
    finally:
        with torch.no_grad():
            # `.double()` keeps the Parameter objects (new data) but replaces buffer tensors: undo both.
            for m, k, value in params:
                m._parameters[k].data = value
            for m, k, value in buffers:
                m._buffers[k] = value
        for m, training in modes.items():
            m.training = training
        for p in model.parameters():
            p.grad = None


def synflow(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None = None) -> float:
    """Synaptic flow at initialization (Tanaka et al. 2020); BatchNorm in eval mode, float64."""
    with _preserved(model):
        model.double()
        model.eval()
        with torch.no_grad():
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *batch_x.shape[1:]), dtype=torch.float64)
        torch.sum(model(ones)).backward()
        total = 0.0
        for p in model.parameters():
            if p.grad is not None:
                total += float((p.detach() * p.grad).abs().sum())
    return total


def naswot(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None = None) -> float:
    """log|det K| of the binary activation-pattern kernel (Mellor et al. 2021)."""
    n = batch_x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_module, _inputs, output):
        # c c^T + (1-c)(1-c)^T = 2 c c^T + units - s_i - s_j (s: active units per image): one product, not two,
        # in float32 while exact (integer sums below 2**24), so the score equals the float64 definition's.
        # The codes are written straight into a float tensor (ten times faster than comparing, then
        # converting), and s is the product's diagonal (c is binary), which saves a pass over the codes.
        flat = output.detach().reshape(n, -1)
        units = flat.shape[1]
        c = torch.gt(
            flat, 0, out=torch.empty(flat.shape, dtype=torch.float32 if units < 2**24 else torch.float64)
        )
        agree = (c @ c.T).to(torch.float64)
        active = agree.diagonal()
        kernel.add_(2.0 * agree + units - active[:, None] - active[None, :])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _ACTIVATIONS)]
    try:
        with _preserved(model), torch.no_grad():
            model.train()
            model(batch_x)
    finally:
        for h in handles:
            h.remove()
    if not handles:
        return float("-inf")
    sign, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet) if sign != 0 else float("-inf")


def grad_norm(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor) -> float:
    """L2 norm of the cross-entropy gradient over all parameters (train mode, one batch)."""
    with _preserved(model):
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch_x), batch_y).backward()
        squares = sum(float(p.grad.double().pow(2).sum()) for p in model.parameters() if p.grad is not None)
    return math.sqrt(squares)


def params(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None = None) -> float:
    from nas.evaluate._costs import count_costs

    return float(count_costs(model, int(batch_x.shape[-1])).params)


def macs(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None = None) -> float:
    from nas.evaluate._costs import count_costs

    return float(count_costs(model, int(batch_x.shape[-1])).macs)


SCORES: dict[str, ScoreFn] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "params": params,
    "macs": macs,
}
ALL: tuple[str, ...] = tuple(SCORES)


def _check_names(scores: Iterable[str]) -> tuple[str, ...]:
    if isinstance(scores, str):
        scores = (scores,)
    names = tuple(scores)
    unknown = [s for s in names if s not in SCORES]
    if unknown:
        raise NasError(f"unknown zero-cost score {unknown[0]!r} (known: {', '.join(ALL)})")
    if not names:
        raise NasError(f"no zero-cost score requested (known: {', '.join(ALL)})")
    return names


def score_batch(
    dataset, resolution: int, batch_size: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed seeded batch: `batch_size` training images (without replacement), normalised, no augmentation."""
    from nas.evaluate._training import Preprocessing

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise NasError(f"batch_size must be an integer >= 2, got {batch_size!r}")
    n = len(dataset.y_train)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(batch_size, n), replace=False))
    x = torch.from_numpy(np.ascontiguousarray(dataset.x_train[idx]))
    y = torch.from_numpy(np.asarray(dataset.y_train, dtype=np.int64)[idx])
    norm = Preprocessing(dataset.mean, dataset.std, resolution)
    return norm(x, augment=False), y


def zero_cost_scores(
    arch,
    dataset,
    *,
    num_classes: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    scores: Iterable[str] = ALL,
) -> dict[str, float]:
    """Every requested score of `arch` at initialization, plus ``"<name>_seconds"`` for each.

    `arch` is an `Architecture` (or its dict). `num_classes` defaults to the dataset's. The model is
    built with `build_model(arch, num_classes, seed)` (afresh for each score) and the batch is
    `score_batch(dataset, arch.resolution, batch_size, seed)`. Runs on one torch thread.
    """
    from nas.builder import build_model
    from nas.space import Architecture

    names = _check_names(scores)
    if isinstance(arch, dict):
        arch = Architecture.from_dict(arch)
    if num_classes is None:
        num_classes = dataset.num_classes
    batch_x, batch_y = score_batch(dataset, arch.resolution, batch_size, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, float] = {}
    try:
        for name in names:
            start = time.perf_counter()
            model = build_model(arch, num_classes, seed)
            out[name] = SCORES[name](model, batch_x, batch_y)
            out[f"{name}_seconds"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return out
