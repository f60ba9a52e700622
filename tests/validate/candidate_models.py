"""Small ONNX candidates for the selection and drift tests, built in seconds without a search.

- `colour_model`: a nas-style export (NCHW, `nas.preprocessing` metadata) that classifies the tests' easy
  images by their mean colour; `noise` blurs its decision so a second candidate is measurably worse.
- `offshelf_model`: an off-the-shelf-style classifier of another structure (NHWC input, depthwise and
  pointwise convolutions, global max pooling), no metadata: its preprocessing comes from a sidecar or flags.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["red", "green"]
MEAN = [0.5, 0.5, 0.5]
STD = [0.25, 0.25, 0.25]


def colour_model(path: Path, noise: float = 0.0, size: int = 16, classes=CLASSES, seed: int = 0) -> Path:
    import torch

    from nas.onnx_io import export_onnx

    torch.manual_seed(seed)

    class MeanColour(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, len(classes))
            with torch.no_grad():
                weight = torch.zeros(len(classes), 3)
                for k in range(len(classes)):
                    weight[k, k % 3] = 4.0
                self.linear.weight.copy_(weight + noise * torch.randn(len(classes), 3))
                self.linear.bias.zero_()

        def forward(self, x):
            return self.linear(x.mean(dim=(2, 3)))

    pre = {
        "input_name": "input",
        "input_shape": [1, 3, size, size],
        "mean": MEAN,
        "std": STD,
        "classes": list(classes),
        "layout": "NCHW",
        "channel_order": "RGB",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(
        MeanColour(),
        size,
        path=path,
        dynamic_batch=True,
        fast=True,
        metadata={"nas.preprocessing": json.dumps(pre)},
    )
    return path


def offshelf_model(path: Path, size: int = 12, classes: int = 2, seed: int = 1) -> Path:
    import torch

    torch.manual_seed(seed)

    class TinyNHWC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.depthwise = torch.nn.Conv2d(3, 3, 3, padding=1, groups=3)
            self.pointwise = torch.nn.Conv2d(3, 8, 1)
            self.head = torch.nn.Linear(8, classes)

        def forward(self, x):  # x: N x H x W x 3
            x = torch.relu(self.pointwise(self.depthwise(x.permute(0, 3, 1, 2))))
            return self.head(torch.amax(x, dim=(2, 3)))

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        TinyNHWC().eval(),
        torch.zeros(1, size, size, 3),
        str(path),
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes={"pixels": {0: "n"}, "scores": {0: "n"}},
        dynamo=False,
    )
    return path


def write_sidecar(model: Path, **fields) -> Path:
    sidecar = model.with_name(model.stem + ".preprocessing.json")
    sidecar.write_text(json.dumps(fields))
    return sidecar


def write_manifest(
    root: Path, x: np.ndarray, y: np.ndarray, classes=CLASSES, extra=None, name="manifest.csv"
):
    """Images as PNG files under root/images and a manifest CSV beside them; `extra`: {column: values}."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    lines = [",".join(["path", "label", *extra])]
    for i, (img, label) in enumerate(zip(x, y)):
        rel = f"images/{i:05d}.png"
        if not (root / rel).exists():
            Image.fromarray(img).save(root / rel)
        lines.append(",".join([rel, classes[int(label)], *(str(v[i]) for v in extra.values())]))
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


def build_selection_fixtures(root: Path) -> Path:
    """Two nas-style candidates (a: exact, b: noisier), an NHWC off-the-shelf one with a sidecar, an npz of
    the tests' easy images and a manifest over PNG copies of them with camera, site and timestamp columns."""
    from tests.conftest import make_easy_images

    colour_model(root / "a" / "model.onnx")
    colour_model(root / "b" / "model.onnx", noise=3.0)
    net = offshelf_model(root / "off" / "net.onnx")
    write_sidecar(net, input_size=[12, 12], mean=MEAN, std=STD, classes=CLASSES, layout="NHWC")
    offshelf_model(root / "bare" / "net.onnx")  # no sidecar, no metadata
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    x, y = make_easy_images(60)
    np.savez(root / "d.npz", x=x, y=y, classes=np.array(CLASSES))
    rng = np.random.default_rng(0)
    extra = {
        "camera": rng.choice(["c1", "c2"], len(y)),
        "site": rng.choice(["s1", "s2", "s3"], len(y)),
        "timestamp": np.arange(len(y)),
    }
    return write_manifest(root, x, y, extra=extra)


def tiny_export(folder: Path, data: Path) -> Path:
    """An export folder (model.onnx with nas metadata, spec.json, metrics.json) of a tiny untrained
    architecture for the classes and statistics of the npz `data`, as `nas export` lays one out."""
    from nas.builder import build_model
    from nas.data import load_dataset
    from nas.evaluate import preprocessing_spec
    from nas.export._folder import write_model_folder
    from nas.space import Architecture, BlockSpec, StageSpec

    block = BlockSpec("mbconv", kernel=3, expansion=2, se=False, activation="relu")
    arch = Architecture(
        "tiny", 16, 8, 3, 1, "relu", (StageSpec("a", 1, 8, (block,)), StageSpec("b", 2, 16, (block,))), 16,
        "relu", 0.0,
    )  # fmt: skip
    ds = load_dataset(data)
    pre = preprocessing_spec(ds.mean, ds.std, arch.resolution, ds.classes)
    metrics = {"trial": 0, "proxy_accuracy": 0.5, "params": 1, "macs": 1}
    model = build_model(arch, ds.num_classes, seed=0).eval()
    write_model_folder(folder, model, arch, ds.num_classes, pre, metrics)
    return folder
