"""The resumable state of a deployment training on disk: one safetensors file, rewritten atomically after
every epoch, so a kill loses at most the epoch in progress.

Tensors (weights, optimizer buffers, the torch RNG state) are safetensors tensors; everything else
(epoch, scheduler, the data-order generator, Python's and numpy's RNG states, the command the training
belongs to) is JSON in the file's metadata. Reading it runs no pickle. `saved_state` finds the
checkpoint to resume in an output folder, and refuses one of another command.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas._io import write_atomic
from nas.errors import NasError
from nas.export._folder import ONNX_NAME

STATE_FILE = "train_state.safetensors"
_TENSOR, _ARRAY, _ITEMS, _TUPLE = "__tensor__", "__ndarray__", "__items__", "__tuple__"


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (nested dicts, lists, tuples, tensors, numpy arrays, JSON scalars) to `path` atomically."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}

    def pack(value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[key] = value.detach().cpu().contiguous()  # safetensors stores dense row-major tensors
            return {_TENSOR: key}
        if isinstance(value, np.ndarray):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
            return {_ARRAY: key}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: pack(v, f"{key}/{k}") for k, v in value.items()}
            return {_ITEMS: [[k, pack(v, f"{key}/{k}")] for k, v in value.items()]}  # int keys stay ints
        if isinstance(value, tuple):
            return {_TUPLE: [pack(v, f"{key}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [pack(v, f"{key}/{i}") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        return value

    layout = pack(state, "")
    write_atomic(path, save(tensors, metadata={"state": json.dumps(layout)}))


def load_state(path: Path) -> dict[str, Any]:
    """What `save_state` wrote; a damaged file is a one-line NasError."""
    from safetensors.torch import load

    try:
        data = path.read_bytes()
        (header_size,) = struct.unpack("<Q", data[:8])
        layout = json.loads(json.loads(data[8 : 8 + header_size])["__metadata__"]["state"])
        tensors = load(data)
    except Exception as exc:  # truncated, overwritten, not ours: safetensors, struct and json all raise
        raise NasError(
            f"{path}: damaged training checkpoint ({type(exc).__name__}); remove it to train from the start"
        ) from None

    def unpack(value: Any) -> Any:
        if isinstance(value, list):
            return [unpack(v) for v in value]
        if not isinstance(value, dict):
            return value
        if _TENSOR in value:
            return tensors[value[_TENSOR]]
        if _ARRAY in value:
            return tensors[value[_ARRAY]].numpy()
        if _ITEMS in value:
            return {k: unpack(v) for k, v in value[_ITEMS]}
        if _TUPLE in value:
            return tuple(unpack(v) for v in value[_TUPLE])
        return {k: unpack(v) for k, v in value.items()}

    return unpack(layout)


def digest(value) -> str:
    """A short SHA-256 of a JSON-able value (keys sorted): how checkpoints and folders name what made them."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def dataset_identity(summary: dict) -> str:
    """A dataset as a checkpoint records it: its summary (`Dataset.describe()`: classes, split sizes, image
    size, statistics) without its name, which is the file's path: a dataset moved with its project is the
    same dataset. The name stays in the command, for messages."""
    return digest({k: v for k, v in summary.items() if k != "name"})


def command_identity(arch, pre, data, recipe, seed, kd, alpha, temperature) -> dict:
    """What a checkpoint belongs to: resuming it with anything else would not train the same network."""
    command = {
        "arch_hash": arch.hash,
        "preprocessing": digest(pre),
        "dataset": dataset_identity(data.describe()),
        "dataset_name": data.name,
        "recipe": recipe.to_dict(),
        "seed": seed,
        "teacher": None
        if kd is None
        else {
            "onnx_sha256": hashlib.sha256(kd.onnx_path.read_bytes()).hexdigest()[:16],
            "alpha": alpha,
            "temperature": temperature,
        },
    }
    return json.loads(json.dumps(command))  # as it reads back from the checkpoint


def saved_state(out: Path, command: dict, dataset_summary: dict | None = None) -> dict | None:
    """The checkpoint in `out` to resume (None: train from the start); another command's is refused.
    `dataset_summary` (`Dataset.describe()`) recognises a checkpoint that recorded the dataset with its path."""
    path = out / STATE_FILE
    if not path.is_file():
        if (out / ONNX_NAME).is_file() or (out / "spec.json").is_file():
            raise NasError(
                f"{out}: holds a model without a nas train checkpoint ({STATE_FILE}); choose another --out, "
                "or remove the folder to train into it"
            )
        return None
    state = load_state(path)
    saved = state.get("command")
    if isinstance(saved, dict) and dataset_summary is not None:
        # A checkpoint that recorded the dataset with its path (name): the same dataset, moved.
        if saved.get("dataset") == digest({**dataset_summary, "name": saved.get("dataset_name")}):
            saved = {**saved, "dataset": command["dataset"]}
    if _without_name(saved) != _without_name(command):
        raise NasError(
            f"{out}: holds the training of another command ({_difference(saved, command)}); run that command "
            "again to resume it, or choose another --out (or remove the folder to start over)"
        )
    return state


def _without_name(command: Any) -> Any:
    """A command without the dataset's name (its path), which does not decide whether it is the same."""
    return {k: v for k, v in command.items() if k != "dataset_name"} if isinstance(command, dict) else command


def _difference(saved: Any, command: dict) -> str:
    if not isinstance(saved, dict):
        return "a checkpoint without its command"
    for key in ("epochs", "train_subset"):
        was, now = (saved.get("recipe") or {}).get(key), command["recipe"][key]
        if was != now:
            return f"{key} {'all' if was is None else was}, not {'all' if now is None else now}"
    if saved.get("arch_hash") != command["arch_hash"]:
        return f"architecture {saved.get('arch_hash')}, not {command['arch_hash']}"
    if saved.get("seed") != command["seed"]:
        return f"seed {saved.get('seed')}, not {command['seed']}"
    if saved.get("dataset") != command["dataset"] or saved.get("preprocessing") != command["preprocessing"]:
        return f"dataset {saved.get('dataset_name')}, not {command['dataset_name']} (or its content changed)"
    if saved.get("teacher") != command["teacher"]:
        return "another teacher or distillation setting"
    if saved.get("transfer") != command.get("transfer"):
        return "another --init, --freeze-stages or --head-only"
    return "another training recipe"
