"""Cut channels until a network meets a latency target, cheapest accuracy per millisecond first.

Each step prices every allowed cut (`ChannelPruner.cuts`) twice: the milliseconds it saves on the
profile (its latency model on the architecture the cut leaves, so a device that pads channels to blocks
of 16 pays nothing for a cut that stays in the same block), and the loss it costs on a fixed set of
training images (the channels zeroed, which is removing them). The cut with the smallest loss increase
per millisecond saved is applied; the loop stops when the network meets the target: predicted (point
estimate, reported with its interval) on a predicted profile, measured with ONNX Runtime under the
profile's protocol on a measured one (measured once the model's estimate, scaled by the first measurement,
says the target is met, and after every cut from then on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from nas.errors import NasRuntimeError
from nas.prune._channels import ChannelPruner
from nas.space import Architecture


@dataclass(frozen=True)
class Step:
    """One applied cut."""

    layer: str  # module path of the group's root convolution
    channels_before: int
    channels_after: int
    saved_ms: float  # predicted by the profile's model
    loss: float  # calibration loss after the cut
    latency_ms: float  # the network's latency after it (predicted or measured, as the target is checked)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Outcome:
    arch: Architecture
    steps: list[Step] = field(default_factory=list)
    loss_before: float = 0.0
    latency_before: dict = field(default_factory=dict)
    latency_after: dict = field(default_factory=dict)
    cuts_priced: int = 0


class LatencyJudge:
    """Prices architectures with a latency model, and says whether a network meets the target.

    `price(arch)`: predicted ms (the part-composed features of `nas.latency.ArchitectureFeaturizer`).
    `latency(model, arch)`: {"latency_ms", ...} as the target is judged: the same prediction with its
    interval, or (`measure`) the ONNX Runtime median under `settings`.
    """

    def __init__(self, predictor, num_classes: int, measure=None, how: str = "predicted"):
        self.measures = measure is not None
        from nas.latency import ArchitectureFeaturizer

        self.how = how  # one line for messages and records
        self.predictor = predictor
        self.featurizer = ArchitectureFeaturizer(num_classes)
        self.measure = measure

    def price(self, arch: Architecture) -> float:
        return self.predictor.predict(self.featurizer.features(arch)).latency_ms

    def latency(self, model: torch.nn.Module, arch: Architecture) -> dict:
        prediction = self.predictor.predict(self.featurizer.features(arch)).to_dict()
        if self.measure is None:
            return {"how": "predicted", **prediction}
        return {"how": "measured", **self.measure(model, arch), "predicted_ms": prediction["latency_ms"]}


def cut_to_latency(
    model: torch.nn.Module,
    arch: Architecture,
    images: torch.Tensor,
    labels: torch.Tensor,
    judge: LatencyJudge,
    target_ms: float,
    progress: Callable[[Step], None] | None = None,
) -> Outcome:
    """Cut `model` (a `nas.builder.Network` of `arch`, changed in place) until it meets `target_ms`.

    `images`, `labels`: the calibration batch (preprocessed) on which a cut's loss is measured.
    A target no allowed cut can reach is a `NasRuntimeError` naming the latency reached.
    """
    pruner = ChannelPruner(model, arch)
    loss = _loss(model, images, labels)
    latency = judge.latency(model, arch)
    outcome = Outcome(arch, loss_before=loss, latency_before=latency)
    # Measured: the model's price times the first measured/predicted ratio estimates each step; the network
    # is measured again only once that estimate meets the target (a measurement takes about a second).
    scale = latency["latency_ms"] / judge.price(arch) if judge.measures else 1.0
    while latency["latency_ms"] > target_ms:
        current = judge.price(pruner.arch)
        best = None
        for cut in pruner.cuts():
            saved = current - judge.price(cut.arch)
            outcome.cuts_priced += 1
            if saved <= 0:
                continue  # nothing saved on this device (e.g. within one block of padded channels)
            with pruner.masked(cut):
                cut_loss = _loss(model, images, labels)
            score = (cut_loss - loss) / saved
            if best is None or score < best[0]:
                best = (score, cut, saved)
        if best is None:
            raise NasRuntimeError(
                f"no channel cut brings the network below {target_ms:g} ms: it reached "
                f"{latency['latency_ms']:.4g} ms ({latency['how']}) with every prunable group at its minimum"
            )
        _, cut, saved = best
        pruner.apply(cut)
        loss = _loss(model, images, labels)
        estimate = judge.price(pruner.arch) * scale
        if judge.measures and estimate > target_ms:
            latency = {"how": "estimated", "latency_ms": estimate}
        else:
            latency = judge.latency(model, pruner.arch)
        step = Step(cut.name, cut.before, cut.after, saved, loss, latency["latency_ms"])
        outcome.steps.append(step)
        if progress is not None:
            progress(step)
    outcome.arch, outcome.latency_after = pruner.arch, latency
    return outcome


@torch.no_grad()
def _loss(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    total = 0.0
    for i in range(0, len(labels), batch):
        total += float(F.cross_entropy(model(images[i : i + batch]), labels[i : i + batch], reduction="sum"))
    return total / len(labels)
