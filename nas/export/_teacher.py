"""Knowledge distillation for deployment training: the loss, and an exported teacher model run by ONNX
Runtime on the student's normalised batches (no torch model of the teacher is needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas._io import read_json
from nas.errors import NasError
from nas.evaluate import Preprocessing
from nas.export._folder import read_preprocessing

DEFAULT_KD_ALPHA = 0.5  # weight of the distillation term in the loss
DEFAULT_KD_TEMPERATURE = 4.0  # the softening of both networks' logits


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


class Teacher:
    """An exported model run by ONNX Runtime on the student's normalised batches."""

    def __init__(self, teacher: str | Path, student_pre: dict, student_dir: Path):
        import onnxruntime as ort

        self.onnx_path = teacher_onnx(Path(teacher))
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


def teacher_onnx(path: Path) -> Path:
    if path.is_dir():
        name = "model.onnx"
        if (path / "spec.json").is_file():
            name = read_json(path / "spec.json", "teacher spec").get("onnx", name)
        path = path / name
    if not path.is_file():
        raise NasError(f"teacher not found: {path} (give an exported model folder or its model.onnx)")
    return path
