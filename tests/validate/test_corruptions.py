"""Corruptions: every family runs, is deterministic per seed, and grows with severity on real images."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import NasError
from nas.validate import FAMILIES, GROUPS, corrupt
from nas.validate._corruptions import disk_kernel, line_kernel

RANDOM_FAMILIES = {"dark", "color_cast", "gaussian_noise", "shot_noise", "motion_blur", "occlusion"}


@pytest.fixture(scope="module")
def images():
    import nas

    return nas.load_dataset("builtin").x_val[::10][:64]  # 64 real CIFAR-10 images, every class


def test_groups_cover_every_family_once():
    grouped = [f for members in GROUPS.values() for f in members]
    assert sorted(grouped) == sorted(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_is_deterministic_and_monotone_in_severity(family, images):
    out = [corrupt(images, family, s, seed=3) for s in range(1, 6)]
    for o in out:
        assert o.shape == images.shape and o.dtype == np.uint8
    np.testing.assert_array_equal(out[2], corrupt(images, family, 3, seed=3))
    if family in RANDOM_FAMILIES:
        assert not np.array_equal(out[2], corrupt(images, family, 3, seed=4))
    diffs = [np.abs(o.astype(np.int16) - images).mean() for o in out]
    assert diffs[0] > 0, family
    assert all(b > a for a, b in zip(diffs, diffs[1:])), (family, diffs)


def test_input_batch_is_not_modified(images):
    before = images.copy()
    for family in FAMILIES:
        corrupt(images, family, 5, seed=0)
    np.testing.assert_array_equal(images, before)


def test_corruption_does_not_depend_on_batch_neighbours_for_deterministic_families(images):
    for family in ("brightness", "contrast", "gamma", "defocus_blur", "jpeg"):
        np.testing.assert_array_equal(corrupt(images, family, 3)[:5], corrupt(images[:5], family, 3))


def test_kernels_are_normalised_and_shaped():
    disk = disk_kernel(2.1)
    assert (
        disk.shape == (5, 5)
        and abs(disk.sum() - 1) < 1e-6
        and np.allclose(disk, disk.T)
        and np.allclose(disk, disk[::-1])
    )
    assert disk[2, 2] == disk.max() and disk[0, 0] < disk[0, 2]
    horizontal = line_kernel(5, 0.0)
    assert abs(horizontal.sum() - 1) < 1e-6 and np.count_nonzero(horizontal.sum(axis=1)) == 1
    vertical = line_kernel(5, 90.0)
    assert np.count_nonzero(vertical.sum(axis=0)) == 1


def test_user_mistakes_are_nas_errors(images):
    with pytest.raises(NasError, match="unknown corruption 'fog'"):
        corrupt(images, "fog", 1)
    with pytest.raises(NasError, match="severity must be an integer 1..5, got 6"):
        corrupt(images, "jpeg", 6)
    with pytest.raises(NasError, match="uint8 N x H x W x 3"):
        corrupt(images.astype(np.float32), "jpeg", 1)
