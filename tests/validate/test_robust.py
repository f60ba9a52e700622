"""corrupted_accuracy: the torch-side robustness objective for the search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.data import ImageDataset
from nas.errors import NasError
from nas.evaluate import Preprocessing
from nas.validate import corrupt, corrupted_accuracy
from nas.validate._robust import corrupted_slices


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(120, 16, 16, 3), dtype=np.uint8)
    x[:60, :, :, 0] //= 3  # class 0: little red, class 1: unchanged
    y = np.array([0] * 60 + [1] * 60)
    order = rng.permutation(120)
    x, y = x[order], y[order]
    return ImageDataset(
        "synthetic", ("a", "b"), x[:20], y[:20], x[20:], y[20:], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    )


def tiny_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    )


class Constant(torch.nn.Module):
    def forward(self, x):
        return torch.tensor([[1.0, 0.0]]).expand(len(x), 2)


FAMILIES = ("gaussian_noise", "defocus_blur", "contrast", "jpeg")


def test_matches_a_manual_evaluation(dataset):
    model, norm = tiny_cnn(), Preprocessing(dataset.mean, dataset.std, 16)
    result = corrupted_accuracy(
        model, dataset, norm, families=FAMILIES, severities=(2, 4), max_images=64, seed=5
    )
    assert set(result["slices"]) == {f"{f}@{s}" for f in FAMILIES for s in (2, 4)} and result["n"] == 64
    keep = np.sort(np.random.default_rng(5).choice(100, size=64, replace=False))
    x, y = dataset.x_val[keep], torch.from_numpy(dataset.y_val[keep])
    for name, accuracy in result["slices"].items():
        family, severity = name.split("@")
        images = torch.from_numpy(corrupt(x, family, int(severity), seed=5))
        with torch.no_grad():
            expected = float((model(norm(images, augment=False)).argmax(1) == y).float().mean())
        assert accuracy == pytest.approx(expected)
    assert result["mean_corrupted_accuracy"] == pytest.approx(np.mean(list(result["slices"].values())))
    assert result["worst_slice_accuracy"] == min(result["slices"].values())
    assert result["slices"][result["worst_slice"]] == result["worst_slice_accuracy"]


def test_constant_model_scores_the_class_share_and_plain_callables_work(dataset):
    result = corrupted_accuracy(
        Constant(),
        dataset,
        lambda b: b.permute(0, 3, 1, 2).float(),
        families=("occlusion",),
        severities=(5,),
        max_images=None,
    )
    assert result["n"] == 100 and result["slices"]["occlusion@5"] == pytest.approx(
        float((dataset.y_val == 0).mean())
    )


def test_corrupted_images_are_cached_and_deterministic(dataset):
    first = corrupted_slices(dataset, ("jpeg",), (3,), 50, 0)
    assert corrupted_slices(dataset, ("jpeg",), (3,), 50, 0) is first
    other = corrupted_slices(dataset, ("jpeg",), (3,), 50, 1)
    assert other is not first and not np.array_equal(other[1]["jpeg@3"], first[1]["jpeg@3"])
    norm = Preprocessing(dataset.mean, dataset.std, 16)
    a = corrupted_accuracy(tiny_cnn(), dataset, norm, max_images=50)
    b = corrupted_accuracy(tiny_cnn(), dataset, norm, max_images=50)
    assert a["slices"] == b["slices"]


def test_mistakes(dataset):
    norm = Preprocessing(dataset.mean, dataset.std, 16)
    with pytest.raises(NasError, match="robust families: unknown corruption 'snow'"):
        corrupted_accuracy(tiny_cnn(), dataset, norm, families=("snow",))
    with pytest.raises(NasError, match="at least one corruption family"):
        corrupted_accuracy(tiny_cnn(), dataset, norm, families=())
