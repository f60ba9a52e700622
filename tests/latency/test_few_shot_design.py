"""`design_few_shot` (which networks a new device measures for a few-shot fit) and the bundles it makes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency import design_few_shot
from tests._cli_run import nas_command


def _clustered_pool(rng: np.random.Generator, clusters: int = 5, size: int = 60, devices: int = 8):
    """Prior predictions of a pool in `clusters` groups, each group a distinct way the devices disagree
    (a per-device factor), at latencies spread over 1-10 ms."""
    factors = rng.uniform(0.5, 2.0, size=(clusters, devices))
    scale = rng.uniform(1.0, 10.0, size=clusters * size)
    label = np.repeat(np.arange(clusters), size)
    noise = rng.normal(0, 0.01, size=(clusters * size, devices))
    return scale[:, None] * factors[label] * np.exp(noise), label


def test_every_kind_of_disagreement_is_measured_once():
    rng = np.random.default_rng(0)
    q, label = _clustered_pool(rng)
    chosen = design_few_shot(q, 5, seed=0)
    assert sorted(label[chosen]) == [0, 1, 2, 3, 4]


def test_the_design_is_deterministic_distinct_and_skips_unpriced_networks():
    rng = np.random.default_rng(1)
    q, _ = _clustered_pool(rng)
    q[:40, 3] = 0.0  # a device whose model prices these networks at zero
    a = design_few_shot(q, 10, seed=3)
    assert list(a) == list(design_few_shot(q, 10, seed=3))
    assert len(set(a)) == 10
    assert (a >= 40).all()


def test_a_pool_too_small_is_refused():
    q = np.ones((4, 3))
    q[2, 1] = 0.0
    with pytest.raises(NasError, match="need 4 candidates with positive predictions, got 3"):
        design_few_shot(q, 4)


def test_a_few_shot_bundle_of_a_space_the_corpus_covers(tmp_path):
    from nas.latency import write_bundle

    out = write_bundle("fbnet", tmp_path / "b", networks=4, blocks=False, few_shot=True)
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["bundle_design"].startswith("few-shot: nas.latency.design_few_shot from 1000")
    assert sum(m["kind"] == "network" for m in manifest["models"]) == 4
    random = write_bundle("fbnet", tmp_path / "r", networks=4, blocks=False, few_shot=False)
    assert json.loads((random / "bundle.json").read_text())["bundle_design"] == "random"
    ids = {m["id"] for m in manifest["models"]}
    assert ids != {m["id"] for m in json.loads((random / "bundle.json").read_text())["models"]}


def test_few_shot_bundle_of_a_space_the_corpus_never_measured_is_refused(tmp_path):
    out = tmp_path / "bundle"
    run = nas_command(
        "profile", "bundle", "--space", "mobilenet", "--networks", "5", "--out", out, "--few-shot"
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "no latency-corpus device measured" in lines[0]
        and "activation_hardswish" in lines[0]
    )
    assert not out.exists()


def test_automatic_design_says_why_it_stayed_random(tmp_path):
    from nas.latency import write_bundle

    out = write_bundle("mobilenet", tmp_path / "b", networks=2, blocks=False)
    design = json.loads((out / "bundle.json").read_text())["bundle_design"]
    assert design.startswith("random (the space's networks hold node kinds no latency-corpus device")
