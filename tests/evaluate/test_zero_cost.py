"""Zero-cost scores: run on a tiny built model, deterministic, leave the model unchanged, hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.builder import build_model
from nas.data import ImageDataset
from nas.errors import NasError
from nas.evaluate._zero_cost import ALL, SCORES, naswot, score_batch, synflow, zero_cost_scores
from nas.space import Architecture, BlockSpec, StageSpec


def easy_dataset(size: int = 16, n: int = 32, seed: int = 0) -> ImageDataset:
    """Two classes of noisy dark / bright images (as in test_training)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    base = np.where(y == 1, 200, 50)[:, None, None, None]
    x = np.clip(base + rng.normal(0, 25, size=(n, size, size, 3)), 0, 255).astype(np.uint8)
    flat = x.reshape(-1, 3) / 255.0
    mean, std = tuple(float(v) for v in flat.mean(0)), tuple(float(v) for v in flat.std(0))
    return ImageDataset("easy", ("dark", "bright"), x, y, x[:8], y[:8], mean, std)


def tiny_arch(resolution: int = 16) -> Architecture:
    block = BlockSpec(primitive="mbconv", kernel=3, expansion=3, se=True, activation="relu")
    return Architecture(
        space="tiny",
        resolution=resolution,
        stem_channels=8,
        stem_kernel=3,
        stem_stride=1,
        stem_activation="relu",
        stages=(StageSpec(name="a", stride=2, width=16, blocks=(block, block)),),
        head_width=None,
        head_activation="relu",
        dropout=0.0,
    )


@pytest.fixture(scope="module")
def dataset():
    return easy_dataset()


@pytest.fixture(scope="module")
def batch(dataset):
    return score_batch(dataset, resolution=16, batch_size=16, seed=0)


def _hardswish_arch():
    from dataclasses import replace

    arch = tiny_arch()
    stage = arch.stages[0]
    blocks = tuple(replace(b, activation="hardswish") for b in stage.blocks)
    return replace(arch, stem_activation="hardswish", stages=(replace(stage, blocks=blocks),))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("make_arch", [tiny_arch, _hardswish_arch], ids=["relu", "hardswish"])
def test_score_runs_is_finite_and_deterministic(name, make_arch, batch):
    x, y = batch
    values = [SCORES[name](build_model(make_arch(), 2, seed=0), x, y) for _ in range(2)]
    assert isinstance(values[0], float) and math.isfinite(values[0])
    assert values[0] == values[1]


@pytest.mark.parametrize("name", ALL)
def test_scores_leave_the_model_unchanged(name, batch):
    x, y = batch
    model = build_model(tiny_arch(), 2, seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    SCORES[name](model, x, y)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert after[k].dtype == before[k].dtype, k
        assert torch.equal(after[k], before[k]), k
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_synflow_restores_signed_weights_and_float32(batch):
    x, y = batch
    model = build_model(tiny_arch(), 2, seed=0)
    assert any((p < 0).any() for p in model.parameters())  # abs() really was undone below
    weights = [p.detach().clone() for p in model.parameters()]
    ids = [id(p) for p in model.parameters()]
    assert synflow(model, x, y) > 0
    assert [id(p) for p in model.parameters()] == ids
    for p, w in zip(model.parameters(), weights):
        assert p.dtype == torch.float32 and torch.equal(p.detach(), w)
    # the model still works in float32 afterwards
    assert model(x).dtype == torch.float32


def test_synflow_hand_case():
    # Linear 2->1 without bias on an input of ones: R = |w1| + |w2|, dR/dw_i = 1, score = |w1| + |w2|.
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-2.0, 3.0]]))
    assert synflow(model, torch.zeros(4, 2), None) == pytest.approx(5.0)
    assert torch.equal(model.weight, torch.tensor([[-2.0, 3.0]]))


def _kernel_logdet(codes: np.ndarray) -> float:
    c = codes.astype(np.float64)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(np.linalg.slogdet(k)[1])


def _relu_net(weight) -> nn.Module:
    linear = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
    return nn.Sequential(linear, nn.ReLU())


def test_naswot_prefers_more_distinct_activation_patterns():
    x = 2 * torch.eye(4) - 1  # image i: +1 at i, -1 elsewhere
    identity = _relu_net(np.eye(4))  # codes: one-hot, every pair differs in 2 units
    merged = _relu_net([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])  # image 1 -> all-zero code
    collapsed = _relu_net(np.zeros((4, 4)))  # every code all-zero
    distinct = naswot(identity, x, None)
    fewer = naswot(merged, x, None)
    assert distinct == pytest.approx(_kernel_logdet(np.eye(4)))
    assert fewer == pytest.approx(
        _kernel_logdet(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    )
    assert distinct > fewer
    assert naswot(collapsed, x, None) == float("-inf")  # identical patterns: singular kernel


def test_naswot_equals_the_two_product_float64_definition():
    """The one-product float32 kernel is an exact rewrite of sum c c^T + (1 - c)(1 - c)^T."""
    model = build_model(tiny_arch(), 2, seed=3)
    x = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    kernel = np.zeros((12, 12))

    def hook(_module, _inputs, output):
        c = (output.detach().reshape(12, -1) > 0).double().numpy()
        kernel[:] += c @ c.T + (1 - c) @ (1 - c).T

    for m in model.modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish)):
            m.register_forward_hook(hook)
    reference_model = build_model(tiny_arch(), 2, seed=3)
    with torch.no_grad():
        model.train()
        model(x)
    assert naswot(reference_model, x, None) == np.linalg.slogdet(kernel)[1]


def test_naswot_binarises_hardswish_by_sign():
    x = torch.tensor([[-2.0], [-0.5], [0.5], [4.0]])
    codes = []
    module = nn.Hardswish()
    module.register_forward_hook(lambda m, i, o: codes.append((o > 0).int().flatten().tolist()))
    naswot(nn.Sequential(module), x, None)
    assert codes == [[0, 0, 1, 1]]


def test_unknown_score_is_a_nas_error(dataset):
    with pytest.raises(NasError, match="unknown zero-cost score 'snip'"):
        zero_cost_scores(tiny_arch(), dataset, num_classes=2, scores=["synflow", "snip"])
    with pytest.raises(NasError):
        zero_cost_scores(tiny_arch(), dataset, num_classes=2, scores=[])


def test_zero_cost_scores_keys_and_determinism(dataset):
    first = zero_cost_scores(tiny_arch(), dataset, num_classes=2, batch_size=16, seed=0)
    assert set(first) == {*ALL, *(f"{n}_seconds" for n in ALL)}
    assert all(first[f"{n}_seconds"] >= 0 for n in ALL)
    again = zero_cost_scores(
        tiny_arch().to_dict(), dataset, batch_size=16, seed=0, scores=("naswot", "synflow")
    )
    assert set(again) == {"naswot", "naswot_seconds", "synflow", "synflow_seconds"}
    assert again["naswot"] == first["naswot"] and again["synflow"] == first["synflow"]
    other = zero_cost_scores(tiny_arch(), dataset, num_classes=2, batch_size=16, seed=1, scores=["grad_norm"])
    assert other["grad_norm"] != first["grad_norm"]
    assert first["params"] == float(sum(p.numel() for p in build_model(tiny_arch(), 2).parameters()))
