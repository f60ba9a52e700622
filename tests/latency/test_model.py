"""nas.latency model: NNLS, fitting (intercept, non-negativity, relative error), metrics, serialization."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency import (
    GraphFeatures,
    LatencyModel,
    cross_validate,
    error_metrics,
    fit_latency_model,
    graph_features,
    kendall_tau,
    nnls,
)
from nas.latency._features import FEATURES


def brute_force_nnls(a, b):
    """Try every support set; the best feasible unconstrained solution on a support is the optimum."""
    n = a.shape[1]
    best, best_x = math.inf, np.zeros(n)
    for size in range(n + 1):
        for support in itertools.combinations(range(n), size):
            x = np.zeros(n)
            if support:
                x[list(support)] = np.linalg.lstsq(a[:, list(support)], b, rcond=None)[0]
            if (x >= -1e-12).all():
                residual = np.linalg.norm(a @ np.clip(x, 0, None) - b)
                if residual < best - 1e-12:
                    best, best_x = residual, np.clip(x, 0, None)
    return best_x, best


@pytest.mark.parametrize("seed", range(25))
def test_nnls_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(3, 9), rng.integers(1, 6)
    a = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    x = nnls(a, b)
    expected, residual = brute_force_nnls(a, b)
    assert (x >= 0).all()
    assert np.linalg.norm(a @ x - b) == pytest.approx(residual, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(x, expected, atol=1e-8)


def test_nnls_unconstrained_optimum_is_found_when_positive():
    a = np.array([[1.0, 0], [0, 2], [1, 1]])
    x_true = np.array([0.5, 2.0])
    np.testing.assert_allclose(nnls(a, a @ x_true), x_true, atol=1e-12)


def random_features(rng, kinds=("conv_depthwise_k3_l", "conv_pointwise_l", "gemm")):
    def vector():
        count, macs, io, params = (
            rng.integers(1, 4),
            rng.uniform(1e5, 1e8),
            rng.uniform(1e3, 1e6),
            rng.uniform(1e2, 1e5),
        )
        padding = rng.uniform(1.0, 1.5, size=3)  # padded MACs, input and output bytes: at least the unpadded
        return np.array(
            [count, macs, io, params, macs * padding[0], io / 2 * padding[1], io / 2 * padding[2]]
        )

    return GraphFeatures({kind: vector() for kind in kinds})


TRUE = LatencyModel(
    overhead_ms=0.45,
    weights={
        "conv_depthwise_k3_l.macs": 2e-8,
        "conv_pointwise_l.macs": 5e-9,
        "conv_pointwise_l.count": 0.05,
        "gemm.bytes": 1e-6,
    },
)


def test_exact_recovery_of_a_linear_model_with_intercept():
    rng = np.random.default_rng(0)
    samples = [(f, TRUE.predict(f)) for f in (random_features(rng) for _ in range(60))]
    model = fit_latency_model(samples)
    assert model.overhead_ms == pytest.approx(0.45, rel=1e-6)
    for column, weight in model.weights.items():
        assert weight == pytest.approx(TRUE.weights.get(column, 0.0), rel=1e-5, abs=1e-14), column
    for features, latency in samples:
        assert model.predict(features) == pytest.approx(latency, rel=1e-8)
    # Only columns that are non-zero in the data get a weight.
    assert set(model.weights) == {
        f"{k}.{f}" for k in ("conv_depthwise_k3_l", "conv_pointwise_l", "gemm") for f in FEATURES
    }


def test_weights_and_overhead_are_never_negative():
    rng = np.random.default_rng(1)
    samples = []
    for _ in range(40):
        f = random_features(rng)
        latency = (
            2.0 + 1e-8 * f.get("conv_depthwise_k3_l", "macs") - 5e-9 * f.get("gemm", "macs")
        )  # a negative cost
        samples.append((f, max(latency, 0.1)))
    model = fit_latency_model(samples)
    assert model.overhead_ms >= 0 and all(w >= 0 for w in model.weights.values())
    assert model.weights["gemm.macs"] == 0.0


def test_fit_minimizes_relative_error():
    # One feature (gemm.macs = x) plus the intercept; y is not linear in x, so the fit is a compromise.
    xs = np.array([1.0, 2, 10, 100, 1000])
    ys = np.array([1.5, 1.0, 4.0, 30.0, 900.0])
    samples = [(GraphFeatures({"gemm": np.array([0.0, x, 0, 0, 0, 0, 0])}), float(y)) for x, y in zip(xs, ys)]
    model = fit_latency_model(samples)
    a = np.stack([np.ones_like(xs), xs], axis=1) / ys[:, None]
    expected = np.linalg.lstsq(a, np.ones_like(xs), rcond=None)[0]  # argmin sum(((c + w x) - y) / y)^2
    assert (expected > 0).all()  # so the non-negativity constraint is not active
    assert model.overhead_ms == pytest.approx(expected[0], rel=1e-6)
    assert model.weights["gemm.macs"] == pytest.approx(expected[1], rel=1e-6)
    absolute = np.linalg.lstsq(np.stack([np.ones_like(xs), xs], axis=1), ys, rcond=None)[0]
    assert not np.allclose(expected, absolute, rtol=0.1)  # the weighting matters on this data


def test_fit_rejects_bad_samples():
    f = GraphFeatures({"gemm": np.array([1.0, 1, 1, 1, 0, 0, 0])})
    with pytest.raises(NasError, match="sample 1: latency must be a positive"):
        fit_latency_model([(f, 1.0), (f, 0.0)])
    with pytest.raises(NasError, match="no samples"):
        fit_latency_model([])


def test_overhead_is_added_once_when_composing_blocks():
    rng = np.random.default_rng(2)
    a, b = random_features(rng), random_features(rng)
    assert TRUE.predict(a + b) == pytest.approx(TRUE.predict(a) + TRUE.predict(b) - TRUE.overhead_ms)
    parts = TRUE.breakdown(a + b)
    assert parts["overhead"] == 0.45
    assert sum(parts.values()) == pytest.approx(TRUE.predict(a + b))


def test_predict_from_onnx_equals_predict_from_features():
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(np.zeros((10, 20), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    expected = 0.45 + 1e-6 * (20 + 10) * 4
    assert TRUE.predict(model) == pytest.approx(expected)
    assert TRUE.predict(model.SerializeToString()) == TRUE.predict(graph_features(model))
    assert TRUE.node_breakdown(model) == [("fc", "gemm", pytest.approx(1e-6 * 120))]


def test_to_dict_round_trip_and_errors():
    again = LatencyModel.from_dict(TRUE.to_dict())
    assert again == TRUE and again.to_dict() == TRUE.to_dict()
    with pytest.raises(NasError, match=r"weights\.gemm\.flops: unknown feature column"):
        LatencyModel.from_dict({"overhead_ms": 0, "weights": {"gemm.flops": 1}})
    with pytest.raises(NasError, match=r"weights\.gemm\.macs: must be a non-negative number, got -1"):
        LatencyModel.from_dict({"overhead_ms": 0, "weights": {"gemm.macs": -1}})
    with pytest.raises(NasError, match=r"overhead_ms: must be a non-negative"):
        LatencyModel.from_dict({"overhead_ms": float("nan"), "weights": {}})
    with pytest.raises(NasError, match="weights: missing required field"):
        LatencyModel.from_dict({"overhead_ms": 1})
    with pytest.raises(NasError, match="bias: unknown key"):
        LatencyModel.from_dict({"overhead_ms": 1, "weights": {}, "bias": 2})


def test_kendall_tau_hand_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # pairs (1,2) (1,3) (1,4) (2,3) (2,4) (3,4): + + + - + + -> (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in y: concordant 2, discordant 0, tied-in-y 1 -> 2 / sqrt(3 * 2)
    assert kendall_tau([1.1, 2, 2.5], [1, 2, 2]) == pytest.approx(2 / math.sqrt(6))
    # ties in both: pairs (0,3) concordant, (1,2) discordant, two tied in x, two tied in y -> 0 / sqrt(4 * 4)
    assert kendall_tau([1, 1, 2, 2], [1, 2, 1, 2]) == pytest.approx(0.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_error_metrics_on_known_inputs():
    metrics = error_metrics([1.1, 2.0, 2.5], [1.0, 2.0, 2.0])
    assert metrics["mape"] == pytest.approx((10 + 0 + 25) / 3)
    assert metrics["within_10pct"] == pytest.approx(2 / 3)  # 10% exactly counts as within
    assert metrics["kendall_tau"] == pytest.approx(2 / math.sqrt(6))
    assert metrics["n"] == 3


def test_cross_validate_on_exact_data_and_on_noisy_data():
    rng = np.random.default_rng(3)
    samples = [(f, TRUE.predict(f)) for f in (random_features(rng) for _ in range(40))]
    result = cross_validate(samples, folds=5, seed=0)
    assert result["n"] == 40 and result["folds"] == 5 and len(result["fold_mape"]) == 5
    assert (
        result["mape"] < 1e-4
        and result["within_10pct"] == 1.0
        and result["kendall_tau"] == pytest.approx(1.0)
    )
    noisy = [(f, y * (1.3 if i % 2 else 0.7)) for i, (f, y) in enumerate(samples)]  # +-30% noise
    worse = cross_validate(noisy, folds=4, seed=1)
    assert worse["mape"] > 15 and worse["within_10pct"] < 0.5
    assert cross_validate(noisy, folds=4, seed=1) == worse  # seeded
    with pytest.raises(NasError, match="cannot make 50 folds out of 40 samples"):
        cross_validate(samples, folds=50)
