"""The pruning benchmark's scoring: the held-out test set refuses an image of the built-in subset, and the
paired interval and verdict say what the numbers say."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks._pruning_test_set import FIRST, LAST, held_out_set, paired_difference, verdict


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(4, 4, 3), dtype=np.uint8)


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_pixels(seed)).save(buffer, format="PNG")  # lossless: the pixels are the seed's
    return buffer.getvalue()


def test_held_out_set_is_disjoint_from_the_builtin_subset(tmp_path, monkeypatch):
    import benchmarks._pruning_test_set as module

    monkeypatch.setattr(module, "FIRST", 10)
    monkeypatch.setattr(module, "LAST", 12)
    monkeypatch.setattr(module, "BUILTIN_FILES", 2)
    builtin = np.stack([_pixels(100 * label + number) for label in range(2) for number in range(2)])
    folder = tmp_path / "train"
    for label, name in enumerate(("a", "b")):
        (folder / name).mkdir(parents=True)
        for number in (0, 1, 10, 11, 12):
            (folder / name / f"{number:04d}.jpg").write_bytes(_png(100 * label + number))
    x, y, provenance = held_out_set(folder, builtin, ("a", "b"))
    assert x.shape == (6, 4, 4, 3) and list(y) == [0, 0, 0, 1, 1, 1]
    assert provenance["overlap_with_builtin_by_pixel_hash"] == 0
    assert (
        "(4 of 4 of them have the pixels of a built-in image; 4 built-in images)"
        in provenance["builtin_subset_is"]
    )

    (folder / "b" / "0011.jpg").write_bytes(_png(1))  # a built-in image among the test files
    with pytest.raises(SystemExit, match="1 test images are also in the built-in subset"):
        held_out_set(folder, builtin, ("a", "b"))
    assert (FIRST, LAST) == (4000, 4999)  # the benchmark's own range: 1,000 per class


def test_paired_difference_and_verdict():
    rng = np.random.default_rng(0)
    b = rng.random((2, 4000)) < 0.5
    same = paired_difference(b, b)
    assert same["points"] == 0 and same["ci95_points"] == [0, 0] and same["mcnemar_p_per_seed"] == [1, 1]
    a = b.copy()
    a[:, :200] = ~a[:, :200]  # about 100 images go each way: no difference to speak of, interval ~ +-1 point
    near = paired_difference(a, b)
    low, high = near["ci95_points"]
    assert low < near["points"] < high and 0.3 < high - low < 3
    worse = b.copy()
    worse[:, :800] = False  # about 10 points worse
    far = paired_difference(worse, b)
    assert far["ci95_points"][1] < -5 and far["mcnemar_p_per_seed"][0] < 1e-6
    assert verdict(same) == "met" and verdict(far) == "missed"
    assert verdict({"ci95_points": [-1.5, 0.4]}) == "undecided"
