"""Tests for `nas.data._decoded_cache`: the built-in dataset's decoded copy in the user's cache folder."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nas.data import _datasets, load_dataset
from nas.data._decoded_cache import CACHE_ENV, cache_dir
from nas.errors import NasError


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache folder and no copy held in this process."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(_datasets, "_BUILTIN_CACHE", {})
    return tmp_path / "cache"


def _copies(folder):
    return sorted(folder.glob("builtin-*.npz")) if folder.exists() else []


def _forget(monkeypatch):
    monkeypatch.setattr(_datasets, "_BUILTIN_CACHE", {})


def _no_decoding(monkeypatch):
    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(_datasets, "read_builtin_zip", refuse)


def test_a_second_process_reads_the_copy_instead_of_decoding(fresh, monkeypatch):
    first = load_dataset()
    assert len(_copies(fresh)) == 1
    _forget(monkeypatch)  # as a new process would start
    _no_decoding(monkeypatch)
    again = load_dataset()
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(again, name), getattr(first, name))
        assert getattr(again, name).dtype == getattr(first, name).dtype
    assert again.classes == first.classes and again.mean == first.mean and again.std == first.std


def test_an_unreadable_copy_is_decoded_again_and_replaced(fresh, monkeypatch):
    first = load_dataset()
    (copy,) = _copies(fresh)
    copy.write_bytes(copy.read_bytes()[:1000])  # truncated
    _forget(monkeypatch)
    again = load_dataset()
    assert np.array_equal(again.x_train, first.x_train)
    _forget(monkeypatch)
    _no_decoding(monkeypatch)
    assert np.array_equal(load_dataset().x_val, first.x_val)  # the replaced copy reads


def test_a_copy_of_another_zip_is_not_used(fresh, monkeypatch):
    load_dataset()
    (copy,) = _copies(fresh)
    copy.rename(fresh / copy.name.replace(copy.name.split("-")[1], "0" * 32))  # another zip's digest
    _forget(monkeypatch)
    decoded = []
    real = _datasets.read_builtin_zip
    monkeypatch.setattr(_datasets, "read_builtin_zip", lambda p: decoded.append(p) or real(p))
    load_dataset()
    assert decoded  # the copy's name names another zip: this one is decoded


def test_without_a_setting_the_copy_goes_to_the_xdg_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_datasets, "_BUILTIN_CACHE", {})
    assert cache_dir() == tmp_path / "xdg" / "nas"
    load_dataset()
    assert len(_copies(tmp_path / "xdg" / "nas")) == 1


def test_empty_setting_keeps_no_copy(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # where a copy would otherwise go
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_datasets, "_BUILTIN_CACHE", {})
    assert cache_dir() is None
    assert load_dataset().x_train.shape == (5000, 32, 32, 3)
    assert not list(tmp_path.rglob("*.npz"))


def test_a_copy_of_unexpected_arrays_is_decoded_again_and_replaced(fresh, monkeypatch):
    first = load_dataset()
    (copy,) = _copies(fresh)
    np.savez(
        copy.with_suffix(".tmp.npz"),
        classes=np.array(["a"]),
        x_train=np.zeros(3),
        y_train=np.zeros(3),
        x_val=np.zeros(3),
        y_val=np.zeros(3),
        mean=np.zeros(3),
        std=np.ones(3),
    )
    copy.with_suffix(".tmp.npz").replace(copy)  # readable, but not images
    _forget(monkeypatch)
    assert np.array_equal(load_dataset().x_train, first.x_train)
    _forget(monkeypatch)
    _no_decoding(monkeypatch)
    assert load_dataset().classes == first.classes  # replaced by a good copy


def test_a_folder_that_cannot_be_written_costs_the_decoding_and_says_so(monkeypatch, tmp_path, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))
    monkeypatch.setattr(_datasets, "_BUILTIN_CACHE", {})
    with caplog.at_level(logging.WARNING, logger="nas.data._decoded_cache"):
        assert load_dataset().y_val.shape == (1000,)
    assert blocked.read_text() == "in the way"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and CACHE_ENV in record.getMessage()


def test_a_missing_zip_is_still_reported_in_one_line(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(_datasets, "builtin_dataset_path", lambda: tmp_path / "gone.zip")
    with pytest.raises(NasError, match="built-in dataset missing"):
        load_dataset()
    assert not _copies(fresh)
