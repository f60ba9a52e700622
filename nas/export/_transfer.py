"""Transfer: start a deployment training from weights trained elsewhere (`nas train --init`), matched to the
new architecture by module path and shape, with the first stages frozen or only the head trained.

Weights come from a `nas train` output folder (its checkpoint), a `nas export` folder (its search's trial
checkpoint: the ONNX file holds BatchNorm folded into the convolutions, which cannot be split back), or a
checkpoint file. The classifier is taken only when the source was trained on the same classes: a head for
other classes is noise to the new task. Frozen modules keep their weights and their BatchNorm statistics
(they stay in eval mode while the rest trains), so the features they compute are the source's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import torch
from torch import nn

from nas._io import load_checkpoint, read_json
from nas.errors import NasError
from nas.export._checkpoint import STATE_FILE, load_state

_CLASSIFIER = "classifier."


@dataclass(frozen=True)
class InitWeights:
    """Weights to start from, read once before anything is trained or written."""

    source: Path
    weights: dict[str, torch.Tensor]
    classes: tuple[str, ...] | None  # the classes they were trained on, when the source says
    digest: str  # of the tensors: a resumed run must start from the same init

    def identity(self, freeze_stages: int, head_only: bool) -> dict:
        """What a checkpoint records of the transfer (resuming with another init is refused)."""
        return {"weights_sha256": self.digest, "freeze_stages": freeze_stages, "head_only": head_only}


@dataclass
class Transfer:
    """The matched weights of one architecture and what is frozen; `prepare` is `fit`'s model hook."""

    init: InitWeights
    matched: dict[str, torch.Tensor]
    skipped: dict[str, str]  # tensor name -> why it was not taken
    frozen_prefixes: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)

    def prepare(self, model: nn.Module) -> None:
        """Load the matched tensors, then freeze (no gradient, BatchNorm in eval mode) the frozen modules."""
        model.load_state_dict(self.matched, strict=False)
        for prefix in self.frozen_prefixes:
            module = model.get_submodule(prefix)
            for p in module.parameters():
                p.requires_grad_(False)
            _keep_in_eval(module)

    def describe(self) -> dict:
        """The transfer as metrics.json records it."""
        reasons: dict[str, int] = {}
        for why in self.skipped.values():
            reasons[why] = reasons.get(why, 0) + 1
        return {
            "init": str(self.init.source),
            "tensors_matched": len(self.matched),
            "tensors_skipped": len(self.skipped),
            "skipped_because": reasons,
            "frozen_modules": list(self.frozen_prefixes),
            **self.counts,
        }


def read_init(source: str | Path) -> InitWeights:
    """The weights of a `nas train` folder, a `nas export` folder or a checkpoint file; bad ones: NasError."""
    source = Path(source)
    if not source.exists():
        raise NasError(f"--init: not found: {source}")
    classes = None
    if source.is_dir():
        spec_path = source / "spec.json"
        if not spec_path.is_file():
            raise NasError(f"--init {source}: not a model folder (missing spec.json)")
        spec = read_json(spec_path, "model spec")
        classes = _classes(spec)
        weights = _folder_weights(source, spec)
    else:
        weights = _file_weights(source)
    if not weights:
        raise NasError(f"--init {source}: holds no weights")
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].detach().cpu().contiguous().numpy().tobytes())
    return InitWeights(source, weights, classes, digest.hexdigest()[:16])


def plan_transfer(
    init: InitWeights,
    model: nn.Module,
    classes: tuple[str, ...],
    num_stages: int,
    freeze_stages: int,
    head_only: bool,
    target: Path,
) -> Transfer:
    """Match `init` to `model` (same module path and shape) and choose the frozen modules; NasError when
    nothing but the classifier could be taken, or the settings are bad."""
    check_freeze(freeze_stages, head_only, num_stages)
    same_classes = init.classes is not None and tuple(init.classes) == tuple(classes)
    matched, skipped = {}, {}
    for name, tensor in model.state_dict().items():
        theirs = init.weights.get(name)
        if name.startswith(_CLASSIFIER) and not same_classes:
            skipped[name] = "classifier of other classes" if init.classes is not None else "classes unknown"
        elif theirs is None:
            skipped[name] = "absent in the source"
        elif tuple(theirs.shape) != tuple(tensor.shape):
            skipped[name] = "another shape"
        else:
            matched[name] = theirs
    if not any(name.endswith(".weight") for name in matched):
        raise NasError(
            f"--init {init.source}: no layer matches the architecture of {target} (0 of "
            f"{len(skipped)} tensors have the same module path and shape)"
        )
    stages = num_stages if head_only else freeze_stages
    frozen = (("stem",) + tuple(f"stages.{i}" for i in range(stages))) if stages else ()
    frozen_params = sum(p.numel() for prefix in frozen for p in model.get_submodule(prefix).parameters())
    counts = {
        "frozen_params": frozen_params,
        "trainable_params": sum(p.numel() for p in model.parameters()) - frozen_params,
    }
    return Transfer(init, matched, skipped, frozen, counts)


def check_freeze(freeze_stages, head_only, num_stages: int | None = None) -> None:
    """`--freeze-stages K` counts block stages (the stem is frozen with them); `--head-only` freezes all."""
    if isinstance(freeze_stages, bool) or not isinstance(freeze_stages, Integral) or freeze_stages < 0:
        raise NasError(f"--freeze-stages: must be an integer >= 0, got {freeze_stages!r}")
    if head_only and freeze_stages:
        raise NasError("--freeze-stages and --head-only: give one (--head-only freezes every stage)")
    if num_stages is not None and freeze_stages > num_stages:
        raise NasError(f"--freeze-stages: the network has {num_stages} stages, got {freeze_stages}")


def _keep_in_eval(module: nn.Module) -> None:
    """A frozen module stays in eval mode (BatchNorm uses the source's statistics) when the model trains."""

    def train(mode: bool = True) -> nn.Module:
        return nn.Module.train(module, False)

    module.train = train
    module.train(False)


def _classes(spec) -> tuple[str, ...] | None:
    try:
        return tuple(spec["preprocessing"]["classes"])
    except (KeyError, TypeError):
        return None


def _folder_weights(source: Path, spec: dict) -> dict[str, torch.Tensor]:
    """A `nas train` folder's checkpoint, else the trial checkpoint of the search a `nas export` came from."""
    if (source / STATE_FILE).is_file():
        return _model_of(load_state(source / STATE_FILE), source / STATE_FILE)
    origin = spec.get("exported_from") if isinstance(spec, dict) else None
    metrics = (
        read_json(source / "metrics.json", "model metrics") if (source / "metrics.json").is_file() else {}
    )
    run_dir = Path(origin["run_dir"]) if isinstance(origin, dict) and "run_dir" in origin else None
    trial = metrics.get("trial") if isinstance(metrics, dict) else None
    if run_dir is None or trial is None or not (run_dir / "pareto.json").is_file():
        raise NasError(
            f"--init {source}: no torch weights (no {STATE_FILE}, and not a nas export of a search run found "
            "here); give a nas train output folder or a checkpoint file"
        )
    pareto = read_json(run_dir / "pareto.json", "pareto file")
    records = [r for r in pareto.get("pareto", []) if isinstance(r, dict) and r.get("trial") == trial]
    if not records or "checkpoint" not in records[0]:
        raise NasError(f"--init {source}: trial {trial} is not in {run_dir / 'pareto.json'} any more")
    return load_checkpoint(run_dir, records[0]["checkpoint"])


def _file_weights(path: Path) -> dict[str, torch.Tensor]:
    """A nas train checkpoint (its model), or a trial checkpoint (a state dict: safetensors or torch)."""
    if path.suffix == ".safetensors":
        try:
            return _model_of(load_state(path), path)
        except NasError:
            pass  # not a nas train checkpoint: a plain safetensors state dict
    weights = load_checkpoint(path.parent, path.name)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise NasError(f"--init {path}: not a state dict of tensors")
    return weights


def _model_of(state: dict, path: Path) -> dict[str, torch.Tensor]:
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        raise NasError(f"--init {path}: a checkpoint without model weights")
    return model
