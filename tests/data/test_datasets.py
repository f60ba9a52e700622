"""Tests for `nas.data`: builtin CIFAR subset, ImageFolder trees, .npz files, splits, resizing, errors."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from nas._resources import builtin_dataset_path
from nas.data import ImageDataset, load_dataset
from nas.errors import NasError

# ---------------------------------------------------------------- helpers


def _color(label: int, i: int) -> tuple[int, int, int]:
    """A unique solid colour per (class, index) so split membership can be read back from pixels."""
    return (10 * label + 5, 7 * i + 3, 200)


def make_folder(root, counts: dict[str, int], size=(8, 8), fmt="PNG", suffix=".png"):
    """ImageFolder tree of solid-colour images; `size` is (W, H) as Pillow takes it."""
    for label, (name, n) in enumerate(sorted(counts.items())):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, _color(label, i)).save(d / f"{i:03d}{suffix}", format=fmt)
    return root


def ids(x: np.ndarray) -> set[tuple[int, int]]:
    """(class, index) of each solid-colour image in a batch."""
    px = x[:, 0, 0, :].astype(int)
    return {((r - 5) // 10, (g - 3) // 7) for r, g, _ in px}


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def npz_images(n_per_class=(5, 5, 5), hw=(6, 6), channels: int | None = 3):
    y = np.concatenate([np.full(n, k) for k, n in enumerate(n_per_class)]).astype(np.int64)
    rng = np.random.default_rng(123)
    shape = (len(y), *hw) + (() if channels is None else (channels,))
    return rng.integers(0, 256, shape, dtype=np.uint8), y


def raises(match: str):
    return pytest.raises(NasError, match=match)


# ---------------------------------------------------------------- builtin


@pytest.fixture(scope="module")
def builtin() -> ImageDataset:
    return load_dataset()


def test_builtin_shapes_and_fixed_split(builtin):
    d = builtin
    assert d.name == "builtin"
    assert d.num_classes == 10 and d.classes[0] == "airplane" and d.classes[-1] == "truck"
    assert list(d.classes) == sorted(d.classes)
    assert d.x_train.shape == (5000, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.x_val.shape == (1000, 32, 32, 3) and d.x_val.dtype == np.uint8
    assert d.y_train.dtype == np.int64 and d.y_val.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == [500] * 10
    assert np.bincount(d.y_val).tolist() == [100] * 10
    assert d.image_size == 32
    assert 0.45 <= d.mean[0] <= 0.52
    assert all(0.15 < s < 0.35 for s in d.std)


def test_builtin_split_is_by_file_number(builtin):
    with zipfile.ZipFile(builtin_dataset_path()) as zf:

        def decode(name):
            return np.asarray(Image.open(io.BytesIO(zf.read(name))).convert("RGB"))

        assert np.array_equal(builtin.x_train[0], decode("airplane/0000.jpg"))
        assert np.array_equal(builtin.x_train[499], decode("airplane/0499.jpg"))
        assert np.array_equal(builtin.x_val[0], decode("airplane/0500.jpg"))
        assert np.array_equal(builtin.x_val[-1], decode("truck/0599.jpg"))
        assert np.array_equal(builtin.x_train[-1], decode("truck/0499.jpg"))


def test_builtin_mean_std_match_training_pixels(builtin):
    x = builtin.x_train.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(builtin.mean, x.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(builtin.std, x.std(axis=0), atol=1e-9)


def test_builtin_ignores_seed_and_fraction_and_is_cached(builtin):
    t = time.perf_counter()
    again = load_dataset("builtin", val_fraction=0.3, seed=7)
    assert time.perf_counter() - t < 0.5  # cached: no re-decoding
    assert np.array_equal(again.x_val, builtin.x_val) and np.array_equal(again.y_train, builtin.y_train)
    assert again.mean == builtin.mean
    # Each load owns its arrays, so mutating one does not corrupt the cache.
    again.x_train[:] = 0
    assert load_dataset().x_train.any()


def test_builtin_describe_is_json(builtin):
    info = json.loads(json.dumps(builtin.describe()))
    assert info["name"] == "builtin"
    assert info["num_train"] == 5000 and info["num_val"] == 1000
    assert info["image_size"] == 32 and len(info["classes"]) == 10
    assert info["mean"] == pytest.approx(list(builtin.mean))
    assert "resized_from" not in info


def test_builtin_resized(builtin):
    d = load_dataset(image_size=16)
    assert d.x_train.shape == (5000, 16, 16, 3) and d.x_val.shape == (1000, 16, 16, 3)
    assert d.describe()["resized_from"] == ["32x32"]
    assert d.mean[0] == pytest.approx(builtin.mean[0], abs=0.01)
    assert load_dataset().image_size == 32  # the cache still holds the originals


# ---------------------------------------------------------------- folders


def test_folder_loads_sorted_classes_and_ignores_other_files(tmp_path):
    root = make_folder(tmp_path / "ds", {"dog": 10, "cat": 10, "ant": 10})
    (root / "README.txt").write_text("not a class")
    (root / "cat" / "notes.txt").write_text("not an image")
    hidden = root / ".cache"
    hidden.mkdir()
    Image.new("RGB", (8, 8)).save(hidden / "x.png")
    d = load_dataset(root, val_fraction=0.2)
    assert d.name == str(root)
    assert d.classes == ("ant", "cat", "dog")
    assert np.bincount(d.y_train).tolist() == [8, 8, 8]
    assert np.bincount(d.y_val).tolist() == [2, 2, 2]
    assert d.x_train.shape == (24, 8, 8, 3) and d.image_size == 8
    # PNG is lossless: every image comes back with its own colour and label, none lost or repeated.
    all_ids = ids(d.x_train) | ids(d.x_val)
    assert all_ids == {(k, i) for k in range(3) for i in range(10)}
    assert all(k == y for (k, _), y in zip(sorted(ids(d.x_val)), sorted(d.y_val)))
    assert ids(d.x_train).isdisjoint(ids(d.x_val))


def test_folder_labels_match_images(tmp_path):
    d = load_dataset(make_folder(tmp_path / "ds", {"a": 4, "b": 4}), val_fraction=0.25)
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val)):
        assert [(int(p[0, 0, 0]) - 5) // 10 for p in x] == y.tolist()
        assert (np.diff(y) >= 0).all()  # both parts keep the original (class-grouped) order


def test_folder_mixed_extensions_case_insensitive(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i, (fmt, suf) in enumerate(
            [("JPEG", ".jpg"), ("JPEG", ".JPEG"), ("PNG", ".PNG"), ("PNG", ".png")]
        ):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / cls / f"{i}{suf}", format=fmt)
        Image.new("RGB", (8, 8)).save(root / cls / "skip.bmp", format="BMP")
    d = load_dataset(root, val_fraction=0.25)
    assert len(d.y_train) + len(d.y_val) == 8
    assert np.bincount(d.y_val).tolist() == [1, 1]


def test_folder_grayscale_and_rgba_become_rgb(tmp_path):
    root = tmp_path / "ds"
    for cls, mode in (("g", "L"), ("rgba", "RGBA")):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new(mode, (8, 8), 100 if mode == "L" else (1, 2, 3, 4)).save(root / cls / f"{i}.png")
    d = load_dataset(root)
    assert d.x_train.shape[-1] == 3
    gray = np.concatenate([d.x_train[d.y_train == 0], d.x_val[d.y_val == 0]])
    assert (gray == 100).all()


def test_split_rounding_and_minimum_one(tmp_path):
    root = make_folder(tmp_path / "ds", {"a": 3, "b": 25})
    d = load_dataset(root, val_fraction=0.1)  # round(0.3) = 0 -> at least 1; round(2.5) = 2
    assert np.bincount(d.y_val).tolist() == [1, 2]
    assert np.bincount(d.y_train).tolist() == [2, 23]


def test_split_deterministic_given_seed_and_differs_across_seeds(tmp_path):
    root = make_folder(tmp_path / "ds", {"a": 20, "b": 20})
    a = load_dataset(root, seed=1, val_fraction=0.25)
    b = load_dataset(root, seed=1, val_fraction=0.25)
    c = load_dataset(root, seed=2, val_fraction=0.25)
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.x_train, b.x_train)
    assert a.mean == b.mean
    assert ids(a.x_val) != ids(c.x_val)
    assert np.bincount(c.y_val).tolist() == [5, 5]


def test_folder_mixed_sizes_resized_to_most_common(tmp_path):
    root = make_folder(tmp_path / "ds", {"a": 4, "b": 4}, size=(8, 8))
    Image.new("RGB", (12, 12), (255, 0, 0)).save(root / "a" / "big.png")
    Image.new("RGB", (10, 6), (0, 255, 0)).save(root / "b" / "wide.png")
    d = load_dataset(root)
    assert d.image_size == 8 and d.x_train.shape[1:] == (8, 8, 3)
    resized = d.describe()["resized_from"]
    assert resized[0] == "8x8" and set(resized) == {"8x8", "12x12", "6x10"}
    # Solid colours survive a bilinear resize.
    x = np.concatenate([d.x_train, d.x_val])
    assert any((img == [255, 0, 0]).all() for img in x)
    assert any((img == [0, 255, 0]).all() for img in x)


def test_folder_image_size_argument(tmp_path):
    root = make_folder(tmp_path / "ds", {"a": 3, "b": 3}, size=(10, 6))  # non-square
    d = load_dataset(root, image_size=5)
    assert d.x_train.shape[1:] == (5, 5, 3) and d.x_val.shape[1:] == (5, 5, 3)
    assert d.describe()["resized_from"] == ["6x10"]
    same = load_dataset(make_folder(tmp_path / "ds2", {"a": 3, "b": 3}), image_size=8)
    assert "resized_from" not in same.describe()


def test_folder_non_square_without_image_size(tmp_path):
    d = load_dataset(make_folder(tmp_path / "ds", {"a": 3, "b": 3}, size=(10, 6)))
    assert d.x_train.shape[1:] == (6, 6, 3)


def test_folder_jpeg_loads(tmp_path):
    root = make_folder(tmp_path / "ds", {"a": 3, "b": 3}, fmt="JPEG", suffix=".jpg")
    d = load_dataset(root)
    assert d.x_train.dtype == np.uint8 and d.x_train.shape[1:] == (8, 8, 3)
    assert abs(int(d.x_train[0, 0, 0, 2]) - 200) <= 3  # lossy, but close


# ---------------------------------------------------------------- npz


def test_npz_rgb_default_class_names(tmp_path):
    x, y = npz_images((6, 6, 6))
    d = load_dataset(save_npz(tmp_path / "d.npz", x=x, y=y), val_fraction=0.5)
    assert d.classes == ("0", "1", "2")
    assert np.bincount(d.y_val).tolist() == [3, 3, 3]
    assert d.x_train.shape == (9, 6, 6, 3)
    # Every sample lands in exactly one part, with its own label.
    rows = {(xi.tobytes(), int(yi)) for xi, yi in zip(x, y)}
    got = {
        (xi.tobytes(), int(yi))
        for xi, yi in zip(np.concatenate([d.x_train, d.x_val]), np.concatenate([d.y_train, d.y_val]))
    }
    assert got == rows
    np.testing.assert_allclose(d.mean, (d.x_train.reshape(-1, 3) / 255).mean(0))


def test_npz_class_names_and_int32_labels(tmp_path):
    x, y = npz_images((3, 3))
    path = save_npz(tmp_path / "d.npz", x=x, y=y.astype(np.int32), classes=np.array(["cat", "dog"]))
    d = load_dataset(path)
    assert d.classes == ("cat", "dog") and d.y_train.dtype == np.int64


@pytest.mark.parametrize("channels", [None, 1])
def test_npz_grayscale_repeated_to_rgb(tmp_path, channels):
    x, y = npz_images((4, 4), channels=channels)
    d = load_dataset(save_npz(tmp_path / "g.npz", x=x, y=y))
    assert d.x_train.shape[1:] == (6, 6, 3)
    assert (d.x_train[..., 0] == d.x_train[..., 1]).all() and (d.x_train[..., 1] == d.x_train[..., 2]).all()
    assert d.mean[0] == d.mean[1] == d.mean[2]


def test_npz_split_seeded(tmp_path):
    x, y = npz_images((20, 20))
    path = save_npz(tmp_path / "d.npz", x=x, y=y)
    a, b, c = load_dataset(path, seed=3), load_dataset(path, seed=3), load_dataset(path, seed=4)
    assert np.array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_npz_resize(tmp_path):
    x, y = npz_images((3, 3), hw=(8, 12))
    path = save_npz(tmp_path / "d.npz", x=x, y=y)
    assert load_dataset(path).x_train.shape[1:] == (8, 8, 3)
    d = load_dataset(path, image_size=4)
    assert d.x_val.shape[1:] == (4, 4, 3) and d.describe()["resized_from"] == ["8x12"]


# ---------------------------------------------------------------- errors


def test_error_missing_source(tmp_path):
    with raises(r"dataset not found: .*nope"):
        load_dataset(tmp_path / "nope")


def test_error_unsupported_file(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("x,y\n")
    with raises(r"unsupported dataset source: .*data\.csv"):
        load_dataset(f)


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 0.51, 1.0, float("nan"), "0.1", True])
def test_error_bad_val_fraction(tmp_path, value):
    root = make_folder(tmp_path / "ds", {"a": 3, "b": 3})
    with raises("val_fraction must be in"):
        load_dataset(root, val_fraction=value)


def test_val_fraction_half_is_allowed(tmp_path):
    d = load_dataset(make_folder(tmp_path / "ds", {"a": 2, "b": 3}), val_fraction=0.5)
    assert np.bincount(d.y_val).tolist() == [1, 2] and np.bincount(d.y_train).tolist() == [1, 1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"image_size": 3.5}, "image_size must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_error_bad_options(kwargs, match):
    with raises(match):
        load_dataset("builtin", **kwargs)


def test_error_folder_one_class(tmp_path):
    root = make_folder(tmp_path / "ds", {"cat": 3})
    with raises(r"ds needs at least 2 class folders, found 1: cat"):
        load_dataset(root)


def test_error_folder_no_classes(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "0.png")
    with raises(r"flat needs at least 2 class folders, found 0"):
        load_dataset(root)


def test_error_empty_class_folder(tmp_path):
    root = make_folder(tmp_path / "ds", {"cat": 3})
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no images here")
    with raises(r"class folder .*dog has no images"):
        load_dataset(root)


def test_error_undecodable_image(tmp_path):
    root = make_folder(tmp_path / "ds", {"cat": 3, "dog": 3})
    (root / "dog" / "broken.jpg").write_bytes(b"definitely not a jpeg")
    with raises(r"cannot decode image .*dog.broken\.jpg"):
        load_dataset(root)


def test_error_truncated_png(tmp_path):
    root = make_folder(tmp_path / "ds", {"cat": 3, "dog": 3}, size=(64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        root / "cat" / "cut.png"
    )
    data = (root / "cat" / "cut.png").read_bytes()
    (root / "cat" / "cut.png").write_bytes(data[: len(data) // 2])
    with raises(r"cannot decode image .*cut\.png"):
        load_dataset(root)


def test_error_folder_class_with_one_image(tmp_path):
    root = make_folder(tmp_path / "ds", {"cat": 3, "dog": 1})
    with raises(r"class 'dog' has 1 sample"):
        load_dataset(root)


def _npz_case(tmp_path, **arrays):
    return save_npz(tmp_path / "bad.npz", **arrays)


def test_error_npz_missing_arrays(tmp_path):
    x, y = npz_images((3, 3))
    with raises(r"bad\.npz: missing array 'x'"):
        load_dataset(_npz_case(tmp_path, images=x, y=y))
    with raises(r"bad\.npz: missing array 'y'"):
        load_dataset(_npz_case(tmp_path, x=x, labels=y))


def test_error_npz_x_dtype(tmp_path):
    x, y = npz_images((3, 3))
    with raises(r"bad\.npz: 'x' must be uint8, got float32"):
        load_dataset(_npz_case(tmp_path, x=x.astype(np.float32), y=y))


@pytest.mark.parametrize("shape", [(6, 36), (6, 6, 6, 4), (6, 6, 6, 2), (6, 2, 6, 6, 3)])
def test_error_npz_x_shape(tmp_path, shape):
    y = np.array([0, 0, 0, 1, 1, 1])
    with raises(r"bad\.npz: 'x' must have shape .*got \(6,"):
        load_dataset(_npz_case(tmp_path, x=np.zeros(shape, np.uint8), y=y))


def test_error_npz_length_mismatch(tmp_path):
    x, y = npz_images((3, 3))
    with raises(r"bad\.npz: len\(x\) = 6 but len\(y\) = 5"):
        load_dataset(_npz_case(tmp_path, x=x, y=y[:5]))


def test_error_npz_negative_label(tmp_path):
    x, y = npz_images((3, 3))
    y[2] = -1
    with raises(r"bad\.npz: 'y' has negative label -1"):
        load_dataset(_npz_case(tmp_path, x=x, y=y))


def test_error_npz_float_labels(tmp_path):
    x, y = npz_images((3, 3))
    with raises(r"bad\.npz: 'y' labels must be integers, got float64"):
        load_dataset(_npz_case(tmp_path, x=x, y=y.astype(np.float64)))


def test_error_npz_one_class(tmp_path):
    x, _ = npz_images((3, 3))
    with raises(r"bad\.npz: needs at least 2 classes, found 1"):
        load_dataset(_npz_case(tmp_path, x=x, y=np.zeros(6, np.int64)))


def test_error_npz_class_too_small(tmp_path):
    x, y = npz_images((5, 1))
    with raises(r"bad\.npz: class '1' has 1 sample"):
        load_dataset(_npz_case(tmp_path, x=x, y=y))


def test_error_npz_label_gap(tmp_path):
    x, y = npz_images((3, 3))
    y[y == 1] = 2  # no samples of class 1
    with raises(r"bad\.npz: class '1' has 0 sample"):
        load_dataset(_npz_case(tmp_path, x=x, y=y))


def test_error_npz_classes_too_few_names(tmp_path):
    x, y = npz_images((3, 3, 3))
    with raises(r"bad\.npz: 'y' has label 2 but 'classes' names only 2"):
        load_dataset(_npz_case(tmp_path, x=x, y=y, classes=np.array(["a", "b"])))


def test_error_npz_not_a_zip(tmp_path):
    f = tmp_path / "bad.npz"
    f.write_bytes(b"garbage")
    with raises(r"bad\.npz: cannot read \.npz file"):
        load_dataset(f)
