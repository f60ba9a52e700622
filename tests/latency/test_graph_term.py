"""The latency model's whole-graph term: conv_log_ms * log(1 + convolution nodes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency import COLUMNS, GraphFeatures, LatencyModel, conv_node_counts, fit_latency_model, fit_matrix
from nas.latency._calibrate import choose_graph_term
from nas.latency._fewshot import combine
from nas.latency._machine import calibrate_model
from nas.latency._model import CONV_LOG, conv_nodes, sample_matrix

LINEAR = {"conv_pointwise_l.macs": 5e-9, "conv_depthwise_k3_l.count": 0.02, "gemm.bytes": 1e-6}
CONCAVE = LatencyModel(overhead_ms=0.3, weights=LINEAR, conv_log_ms=0.4)


def _graph(rng, convs: int) -> GraphFeatures:
    """A graph with `convs` convolution nodes split over two conv kinds, and one gemm."""
    pointwise = int(rng.integers(0, convs + 1))
    kinds = {"gemm": np.array([1.0, 1e4, rng.uniform(1e3, 1e5), 1e4, 1e4, 0, 0])}
    for kind, n in (("conv_pointwise_l", pointwise), ("conv_depthwise_k3_l", convs - pointwise)):
        if n:
            macs = n * rng.uniform(1e5, 1e7)
            kinds[kind] = np.array([n, macs, n * 1e4, n * 1e3, macs, n * 5e3, n * 5e3])
    return GraphFeatures(kinds)


def _samples(model: LatencyModel, n: int, seed: int, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    graphs = [_graph(rng, int(rng.integers(0, 12))) for _ in range(n)]
    return [(g, model.predict(g) * math.exp(rng.normal(0, noise))) for g in graphs]


def test_the_term_is_priced_on_the_whole_graph_not_per_block():
    rng = np.random.default_rng(0)
    a, b = _graph(rng, 3), _graph(rng, 5)
    assert conv_nodes(a + b) == conv_nodes(a) + conv_nodes(b) == 8
    linear = LatencyModel(overhead_ms=0.3, weights=LINEAR)
    whole = CONCAVE.predict(a + b)
    assert whole == pytest.approx(linear.predict(a + b) + 0.4 * math.log(9))
    # composing blocks is not adding their predictions: the term is concave in the conv nodes
    assert whole < CONCAVE.predict(a) + CONCAVE.predict(b) - CONCAVE.overhead_ms


def test_conv_node_counts_sums_every_convolution_kind():
    x = np.zeros((2, len(COLUMNS)))
    x[0, COLUMNS.index("conv_dense_k3_l.count")] = 3
    x[0, COLUMNS.index("conv_input.count")] = 1
    x[0, COLUMNS.index("add.count")] = 5
    x[1, COLUMNS.index("conv_pointwise_m.macs")] = 1e6
    assert conv_node_counts(x).tolist() == [4.0, 0.0]


def test_breakdown_gives_the_term_its_own_part_and_sums_to_predict():
    rng = np.random.default_rng(1)
    g = _graph(rng, 6)
    parts = CONCAVE.breakdown(g)
    assert parts[CONV_LOG] == pytest.approx(0.4 * math.log(7))
    assert sum(parts.values()) == pytest.approx(CONCAVE.predict(g))
    assert CONV_LOG not in LatencyModel(overhead_ms=0.3, weights=LINEAR).breakdown(g)


def test_predict_rows_is_predict_of_each_row():
    rng = np.random.default_rng(2)
    graphs = [_graph(rng, c) for c in range(8)]
    rows = CONCAVE.predict_rows(np.stack([g.vector(COLUMNS) for g in graphs]))
    assert rows == pytest.approx([CONCAVE.predict(g) for g in graphs], rel=1e-12)


def test_a_concave_device_is_recovered_and_a_per_node_fit_cannot_match_it():
    samples = _samples(CONCAVE, 80, seed=3)
    with_term = fit_latency_model(samples, graph_term=True)
    assert with_term.conv_log_ms == pytest.approx(0.4, rel=1e-5)
    assert with_term.overhead_ms == pytest.approx(0.3, rel=1e-5)
    per_node = fit_latency_model(samples)
    assert per_node.conv_log_ms == 0.0
    errors = [abs(per_node.predict(g) - y) / y for g, y in samples]
    assert max(errors) > 0.02  # the per-node fit is biased on this device
    x = np.stack([g.vector(COLUMNS) for g, _ in samples])
    y = np.array([latency for _, latency in samples])
    assert fit_matrix(x, y, graph_term=True) == with_term


def test_serialization_keeps_old_files_unchanged_and_checks_the_term():
    assert "conv_log_ms" not in LatencyModel(overhead_ms=0.3, weights=LINEAR).to_dict()
    assert LatencyModel.from_dict(CONCAVE.to_dict()) == CONCAVE
    with pytest.raises(NasError, match=r"conv_log_ms: must be a non-negative number, got -1"):
        LatencyModel.from_dict({"overhead_ms": 0.1, "weights": {}, "conv_log_ms": -1})


def test_profile_fit_keeps_the_term_only_where_it_cross_validates_better():
    keep, held_out, record = choose_graph_term(
        *sample_matrix(_samples(CONCAVE, 60, seed=4, noise=0.01)), 5, 0
    )
    assert keep and record["kept"]
    assert record["with_log_conv_nodes_mape"] < 0.5 * record["per_node_mape"]
    assert len(held_out) == 60
    additive = LatencyModel(overhead_ms=0.3, weights=LINEAR)
    keep, _, record = choose_graph_term(*sample_matrix(_samples(additive, 60, seed=5)), 5, 0)
    assert record["per_node_mape"] < 1e-6  # exact data: the per-node fit is already exact
    assert keep == (record["with_log_conv_nodes_mape"] < record["per_node_mape"])


def test_few_shot_combination_and_calibration_carry_the_term():
    rng = np.random.default_rng(6)
    other = LatencyModel(overhead_ms=0.1, weights={"gemm.bytes": 2e-6}, conv_log_ms=0.1)
    combined = combine([CONCAVE, other], [2.0, 0.5], extra_overhead_ms=0.05)
    g = _graph(rng, 7)
    assert combined.conv_log_ms == pytest.approx(2.0 * 0.4 + 0.5 * 0.1)
    assert combined.predict(g) == pytest.approx(0.05 + 2.0 * CONCAVE.predict(g) + 0.5 * other.predict(g))
    # a machine 1.5x slower than the prior on everything, the whole-graph term included
    slower = LatencyModel(overhead_ms=0.45, weights={c: 1.5 * w for c, w in LINEAR.items()}, conv_log_ms=0.6)
    calibrated = calibrate_model(CONCAVE, _samples(slower, 40, seed=7))
    assert calibrated.conv_log_ms == pytest.approx(0.6, rel=0.05)
    for graph, measured in _samples(slower, 10, seed=8):
        assert calibrated.predict(graph) == pytest.approx(measured, rel=0.02)


def test_profile_fit_says_when_it_kept_the_term(capsys, tmp_path):
    from nas.cli_profile import _print_validation

    validation = {"mape": 2.0, "within_10pct": 1.0, "kendall_tau": 0.9, "n": 60}
    record = {"per_node_mape": 3.5, "with_log_conv_nodes_mape": 2.0, "kept": True}
    _print_validation(tmp_path / "p.yaml", {**validation, "whole_graph_term": record})
    assert (
        "kept the whole-graph term log(1 + convolution nodes): held-out MAPE 2.0% with it, 3.5% without"
        in (capsys.readouterr().out)
    )
    _print_validation(tmp_path / "p.yaml", {**validation, "whole_graph_term": {**record, "kept": False}})
    assert "whole-graph" not in capsys.readouterr().out
