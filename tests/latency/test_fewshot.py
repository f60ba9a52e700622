"""Few-shot device models (nas.latency._fewshot) on synthetic devices, and the NAS-Bench-201 feature
composition of benchmarks/nb201.py against whole-network exports (no ../shared data needed)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency._features import COLUMNS, GraphFeatures
from nas.latency._fewshot import (
    FewShotModel,
    combine,
    conformal_quantile,
    fit_few_shot,
    fit_few_shot_predictions,
    fit_matrix,
    model_arrays,
)
from nas.latency._model import LatencyModel, fit_latency_model

KINDS_USED = ("conv_dense_k3_l", "conv_pointwise_m", "activation_relu", "add", "pool")


def _features(rng: np.random.Generator) -> GraphFeatures:
    kinds = {}
    for kind in KINDS_USED:
        count = float(rng.integers(1, 20))
        kinds[kind] = np.array(
            [count, count * rng.uniform(1e5, 1e6), count * rng.uniform(1e4, 1e5), 0, 0, 0, 0]
        )
    return GraphFeatures(kinds=kinds)


def _device(rng: np.random.Generator) -> LatencyModel:
    weights = {}
    for kind in KINDS_USED:
        weights[f"{kind}.count"] = float(rng.uniform(0.01, 0.1))
        weights[f"{kind}.macs"] = float(rng.uniform(1e-7, 1e-6))
        weights[f"{kind}.bytes"] = float(rng.uniform(1e-7, 1e-6))
    return LatencyModel(overhead_ms=float(rng.uniform(0.1, 1.0)), weights=weights)


def _prior(rng, n=6):
    return {f"dev{i}": _device(rng) for i in range(n)}


def test_fit_matrix_equals_fit_latency_model():
    rng = np.random.default_rng(0)
    device = _device(rng)
    feats = [_features(rng) for _ in range(40)]
    y = np.array([device.predict(f) * rng.uniform(0.95, 1.05) for f in feats])
    direct = fit_latency_model(list(zip(feats, y.tolist())))
    matrix = fit_matrix(np.stack([f.vector() for f in feats]), y)
    assert matrix.overhead_ms == pytest.approx(direct.overhead_ms, rel=1e-9, abs=1e-12)
    assert set(matrix.weights) == set(direct.weights)
    for column, weight in direct.weights.items():
        assert matrix.weights[column] == pytest.approx(weight, rel=1e-9, abs=1e-15)


def test_combine_is_the_linear_combination_of_predictions():
    rng = np.random.default_rng(1)
    models = [_device(rng) for _ in range(3)]
    combined = combine(models, [0.5, 0.0, 2.0], extra_overhead_ms=0.25)
    for _ in range(5):
        f = _features(rng)
        expected = 0.25 + 0.5 * models[0].predict(f) + 2.0 * models[2].predict(f)
        assert combined.predict(f) == pytest.approx(expected, rel=1e-12)
    overheads, weights = model_arrays(models)
    assert overheads.shape == (3,) and weights.shape == (3, len(COLUMNS))
    with pytest.raises(NasError):
        combine(models, [0.5, -0.1, 1.0])


def test_a_known_combination_of_prior_devices_is_recovered():
    rng = np.random.default_rng(2)
    prior = _prior(rng)
    truth = combine([prior["dev1"], prior["dev4"]], [0.7, 1.8])
    train = [_features(rng) for _ in range(10)]
    fit = fit_few_shot(prior, [(f, truth.predict(f)) for f in train])
    assert isinstance(fit, FewShotModel) and isinstance(fit.model, LatencyModel)
    test = [_features(rng) for _ in range(200)]
    errors = [abs(fit.predict(f) - truth.predict(f)) / truth.predict(f) for f in test]
    assert max(errors) < 0.01
    assert fit.loo_mape < 1.0
    # the weights are a non-negative combination of the prior's weights
    assert all(w >= 0 for w in fit.model.weights.values())
    assert set(fit.coefficients) == set(prior)


def test_a_device_outside_the_prior_is_fitted_less_well_and_says_so():
    rng = np.random.default_rng(3)
    prior = _prior(rng, 4)
    # a device that is pure per-node overhead (count weights only): not a combination of the prior
    alien = LatencyModel(
        overhead_ms=0.1, weights={f"{k}.count": 1.0 if k == "add" else 0.001 for k in KINDS_USED}
    )
    train = [_features(rng) for _ in range(10)]
    fit = fit_few_shot(prior, [(f, alien.predict(f)) for f in train])
    test = [_features(rng) for _ in range(300)]
    true_mape = np.mean([abs(fit.predict(f) - alien.predict(f)) / alien.predict(f) for f in test]) * 100
    assert true_mape > 5  # the prior cannot express it...
    assert fit.loo_mape > 0.4 * true_mape  # ...and the leave-one-out estimate does not hide it


def _noisy_trials(trials, k, sigma, seed):
    """(LOO MAPE estimate, true MAPE on new networks, interval coverage on new networks) per trial."""
    rng = np.random.default_rng(seed)
    prior = _prior(rng, 5)
    models = list(prior.values())
    overheads, weights = model_arrays(models)
    pool = [_features(rng) for _ in range(400)]
    x = np.stack([f.vector() for f in pool])
    q_all = overheads[None, :] + x @ weights.T
    rows = []
    for _ in range(trials):
        a = rng.uniform(0, 1, len(models)) * (rng.uniform(size=len(models)) < 0.5)
        a[rng.integers(len(models))] += 0.5
        y = (q_all @ a) * np.exp(rng.normal(0, sigma, len(pool)))
        order = rng.permutation(len(pool))
        meas, rest = order[:k], order[k:]
        fit = fit_few_shot_predictions(q_all[meas], y[meas], ridges=(1e-3, 1e-1, 10.0))  # fewer: faster
        p = fit.predict(q_all[rest])
        h = fit.interval_log_halfwidth
        inside = (y[rest] >= p * np.exp(-h)) & (y[rest] <= p * np.exp(h))
        rows.append(
            (
                np.mean(np.abs(fit.loo_predictions - y[meas]) / y[meas]),
                np.mean(np.abs(p - y[rest]) / y[rest]),
                inside.mean(),
            )
        )
    return np.array(rows)


def test_leave_one_out_error_is_honest_on_average():
    rows = _noisy_trials(trials=40, k=10, sigma=0.05, seed=4)
    estimate, true = rows[:, 0].mean(), rows[:, 1].mean()
    assert 0.75 < estimate / true < 1.4, (estimate, true)


def test_intervals_cover_at_the_nominal_rate():
    rows = _noisy_trials(trials=60, k=10, sigma=0.08, seed=5)
    coverage = rows[:, 2].mean()
    # conformal with k = 10 at 90%: the largest of 10 residuals, expected coverage 10/11 = 0.909
    assert 0.85 <= coverage <= 0.96, coverage


def test_conformal_quantile():
    r = np.log(np.arange(1, 11) / 100 + 1)
    assert conformal_quantile(r, 0.9) == pytest.approx(r.max())  # ceil(11 * 0.9) = 10
    assert conformal_quantile(-r, 0.5) == pytest.approx(r[5])  # ceil(11 * 0.5) = 6th smallest, sign ignored
    assert conformal_quantile(np.arange(100) / 100, 0.9) == pytest.approx(0.90)  # ceil(101 * 0.9) = 91st


def test_errors():
    rng = np.random.default_rng(6)
    prior = _prior(rng, 3)
    samples = [(_features(rng), 1.0) for _ in range(5)]
    with pytest.raises(NasError, match="at least 3"):
        fit_few_shot(prior, samples[:2])
    with pytest.raises(NasError, match="positive"):
        fit_few_shot(prior, [(samples[0][0], 0.0)] + samples[1:])
    with pytest.raises(NasError, match="no device models"):
        fit_few_shot({}, samples)
    with pytest.raises(TypeError):
        fit_few_shot({"x": "not a model"}, samples)
    with pytest.raises(NasError, match="coverage"):
        fit_few_shot(prior, samples, coverage=1.5)


# ------------------------------------------------------------------------------------------- NB201


@pytest.fixture(scope="module")
def nb201():
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import nb201 as module

    return module


EDGE_CASES = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|",
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",
]


def _random_archs(nb201, n, seed):
    return EDGE_CASES + random.Random(seed).sample(nb201.all_arch_strs(), n)


@pytest.mark.parametrize("zero, n", [("mul", 8), ("absent", 6), ("fold", 6)])
def test_nb201_composed_features_equal_the_exported_network(nb201, zero, n):
    archs = _random_archs(nb201, n, seed={"mul": 0, "absent": 1, "fold": 2}[zero])
    if zero == "fold":  # a constant-output network exports to no nodes at all; its features are empty
        assert nb201.network_features(EDGE_CASES[0], "fold").kinds == {}
        archs = [a for a in archs if not nb201.output_is_constant(a)]
    matrix = nb201.network_matrix(archs, COLUMNS, zero)
    for row, arch in zip(matrix, archs):
        exported = nb201.exported_features(arch, zero).vector(COLUMNS)
        assert np.array_equal(nb201.network_features(arch, zero).vector(COLUMNS), exported), arch
        assert np.allclose(row, exported, rtol=1e-12, atol=0), arch


def test_nb201_eager_counts_differ_from_the_export_only_by_merged_nodes(nb201):
    # cse=False counts every edge's own ReLU / pool / Mul / partial sum (PyTorch eager); the exporter
    # merges identical nodes. Without duplicates (every source read by at most one conv and one pool
    # edge and one zero edge, no skip edges) the two agree.
    arch = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    assert nb201.cell_nodes(arch, "mul", cse=False) == nb201.cell_nodes(arch, "mul", cse=True)
    dup = EDGE_CASES[3]
    eager, merged = nb201.cell_nodes(dup, "mul", cse=False), nb201.cell_nodes(dup, "mul", cse=True)
    assert eager["relu"] == 6 and merged["relu"] == 3  # one ReLU per source node after merging
    assert eager["nor_conv_3x3"] == merged["nor_conv_3x3"] == 4  # convolutions never merge
    allzero = nb201.cell_nodes(EDGE_CASES[0], "mul", cse=False)
    assert allzero == {"zero": 6, "add": 3}


def test_fbnet_composed_features_equal_the_exported_network():
    pytest.importorskip("torch")
    import optuna

    from nas.builder import build_model
    from nas.latency._arch_features import ArchitectureFeaturizer
    from nas.latency._graph import graph_features
    from nas.onnx_io import export_onnx
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("fbnet")
    names = [f"{s.name}.b{i}.op" for s in space.stages for i in range(s.depth[0])]
    ops = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]
    featurizer = ArchitectureFeaturizer(num_classes=100)
    rng = random.Random(0)
    for _ in range(3):
        arch = space.sample(optuna.trial.FixedTrial({n: rng.choice(ops) for n in names}))
        exported = graph_features(export_onnx(build_model(arch, 100, seed=0), arch.resolution, fast=True))
        assert np.allclose(
            featurizer.features(arch).vector(COLUMNS), exported.vector(COLUMNS), rtol=1e-12, atol=0
        )
