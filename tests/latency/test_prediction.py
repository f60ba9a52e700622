"""Predictions that say what they know: conformal intervals, a prior for unmeasured kinds, never a zero."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency import (
    Coverage,
    GraphFeatures,
    Interval,
    LatencyModel,
    NodeFeatures,
    Predictor,
    Prior,
    conformal_interval,
    fit_prior,
    load_profile,
)
from nas.latency._features import FEATURES
from nas.latency._prior import hidden_family_ratios, kind_family


def node(kind: str, macs: float, name: str = "n") -> NodeFeatures:
    vector = np.zeros(len(FEATURES))
    vector[FEATURES.index("count")] = 1
    vector[FEATURES.index("macs")] = macs
    return NodeFeatures(name=name, op_type="Conv", kind=kind, features=vector)


def graph(**macs: float) -> GraphFeatures:
    return GraphFeatures.from_nodes(node(kind, value, kind) for kind, value in macs.items())


def test_conformal_interval_covers_new_ratios_at_its_level():
    rng = np.random.default_rng(0)
    interval = conformal_interval(np.exp(rng.normal(0.1, 0.2, 999)), level=0.9)
    fresh = np.exp(rng.normal(0.1, 0.2, 20000))
    covered = np.mean((fresh >= interval.low) & (fresh <= interval.high))
    assert interval.level == 0.9 and 0.88 <= covered <= 0.92


def test_with_few_ratios_the_interval_is_their_range_at_the_level_that_range_promises():
    interval = conformal_interval([0.8, 1.1, 1.3, 0.9, 1.0], level=0.9)
    assert (interval.low, interval.high) == pytest.approx((0.8, 1.3))
    assert interval.level == pytest.approx(4 / 6)
    with pytest.raises(NasError):
        conformal_interval([1.0])


def test_fit_prior_scales_the_reference_and_prices_only_what_the_device_lacks():
    reference = LatencyModel(
        overhead_ms=0.1, weights={"conv_pointwise_l.macs": 1e-6, "conv_dense_k7_l.macs": 2e-6}
    )
    device = LatencyModel(overhead_ms=0.5, weights={"conv_pointwise_l.macs": 3e-6})
    samples = [(graph(conv_pointwise_l=m), 0.5 + 3e-6 * m) for m in (1e5, 2e5, 5e5)]
    prior = fit_prior(
        device,
        Coverage.of([g for g, _ in samples]),
        samples,
        reference,
        Coverage.of([graph(conv_pointwise_l=1.0, conv_dense_k7_l=1.0)]),
        "ref",
    )
    assert prior.scale == pytest.approx(3.0)
    assert prior.weights == pytest.approx({"conv_dense_k7_l.macs": 6e-6})
    assert prior.interval.low <= 1 <= prior.interval.high
    assert Prior.from_dict(prior.to_dict()) == prior


def test_a_kind_several_references_measured_is_priced_by_the_devices_the_device_resembles():
    """The device runs 2x reference B on every kind; the main reference A has other relative costs. The
    kind the device lacks and both references measured is priced as 2x B's price (the combination),
    not as A's price times the one scale; the kind only A measured costs a combination of A's price
    and the per-node cost (`PER_NODE`), fitted on the same graphs."""
    a = LatencyModel(
        overhead_ms=0.0,
        weights={
            "conv_pointwise_l.macs": 1e-6,
            "conv_depthwise_k3_l.macs": 1e-6,
            "conv_dense_k3_l.macs": 1e-6,
            "conv_dense_k7_l.macs": 2e-6,
        },
    )
    b = LatencyModel(
        overhead_ms=0.0,
        weights={
            "conv_pointwise_l.macs": 1e-6,
            "conv_depthwise_k3_l.macs": 4e-6,
            "conv_dense_k3_l.macs": 5e-6,
        },
    )
    device = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.macs": 2e-6, "conv_depthwise_k3_l.macs": 8e-6}
    )
    mixes = [(1e5, 1e4), (2e5, 5e4), (3e5, 1e4), (5e5, 8e4), (1e5, 9e4)]
    samples = [(graph(conv_pointwise_l=p, conv_depthwise_k3_l=d), 2e-6 * p + 8e-6 * d) for p, d in mixes]
    everything = Coverage.of(
        [graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, conv_dense_k3_l=1.0, conv_dense_k7_l=1.0)]
    )
    b_coverage = Coverage.of([graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, conv_dense_k3_l=1.0)])
    device_coverage = Coverage.of([g for g, _ in samples])
    prior = fit_prior(device, device_coverage, samples, a, everything, "a", also=[("b", b, b_coverage)])
    assert prior.weights["conv_dense_k3_l.macs"] == pytest.approx(2 * 5e-6, rel=1e-6)
    assert "conv_dense_k3_l.count" not in prior.weights  # B explains it all: no cost per node
    assert prior.combinations[0] == (("conv_dense_k3_l",), {"b": pytest.approx(2.0)})
    k7, by_a = prior.combinations[1]  # only A measured it: A and the per-node cost
    assert k7 == ("conv_dense_k7_l",) and set(by_a) <= {"a", "per-node"}
    assert prior.weights["conv_dense_k7_l.macs"] == pytest.approx(by_a["a"] * 2e-6)
    assert Prior.from_dict(prior.to_dict()) == prior
    alone = fit_prior(device, device_coverage, samples, a, everything, "a")
    assert alone.combinations[0][0] == ("conv_dense_k3_l", "conv_dense_k7_l")
    one_node = graph(conv_dense_k3_l=1e5)  # A alone prices the kind far below the device's cost
    assert LatencyModel(0.0, alone.weights).predict(one_node) < 0.5 * 2 * 5e-6 * 1e5


def test_prediction_adds_the_prior_and_widens_the_interval_with_the_share_extrapolated():
    model = LatencyModel(overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6})
    prior = Prior("ref", 2.0, Interval(0.9, 0.5, 3.0, 100), {"conv_dense_k7_l.macs": 4e-6})
    predictor = Predictor(
        "dev", model, Coverage.of([graph(conv_pointwise_l=1.0)]), Interval(0.9, 0.9, 1.1, 100), prior
    )
    covered = predictor.predict(graph(conv_pointwise_l=1e6))
    assert covered.latency_ms == pytest.approx(1.0) and covered.extrapolated_ms == 0
    assert (covered.low_ms, covered.high_ms) == pytest.approx((0.9, 1.1))
    mixed = predictor.predict(graph(conv_pointwise_l=1e6, conv_dense_k7_l=1e6))
    assert mixed.latency_ms == pytest.approx(5.0) and mixed.extrapolated_share == pytest.approx(0.8)
    assert (mixed.low_ms, mixed.high_ms) == pytest.approx((0.9 + 2.0, 1.1 + 12.0))
    assert mixed.uncovered == ("conv_dense_k7_l",)
    assert mixed.straddles(4.0) and not mixed.straddles(20.0)
    assert predictor.breakdown(graph(conv_pointwise_l=1e6, conv_dense_k7_l=1e6))[
        "conv_dense_k7_l"
    ] == pytest.approx(4.0)


def test_a_kind_neither_the_device_nor_the_prior_measured_is_an_error_not_a_zero():
    model = LatencyModel(overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6})
    predictor = Predictor("dev", model, Coverage.of([graph(conv_pointwise_l=1.0)]))
    with pytest.raises(NasError, match="conv_dense_k7_l were never measured"):
        predictor.predict(graph(conv_pointwise_l=1e6, conv_dense_k7_l=1e6))
    assert predictor.predict(graph(conv_pointwise_l=1e6)).low_ms is None  # no interval recorded: none made up


def test_hidden_family_ratios_measure_the_prior_on_kinds_the_device_did_measure():
    # A device exactly 3x the reference on every kind: hiding a family and pricing it by the prior is exact.
    reference = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 5e-6}
    )
    rng = np.random.default_rng(1)
    samples = []
    for i in range(60):
        kinds = {"conv_pointwise_l": float(rng.uniform(1e5, 1e6))}
        if i % 3 == 0:
            kinds["conv_depthwise_k3_l"] = float(rng.uniform(1e4, 1e5))
        samples.append((graph(**kinds), 3 * reference.predict(graph(**kinds))))
    ratios = hidden_family_ratios(
        samples, reference, Coverage.of([graph(conv_pointwise_l=1, conv_depthwise_k3_l=1)])
    )
    assert len(ratios) >= 10 and np.allclose(ratios, 1.0, rtol=1e-3)
    assert (
        kind_family("conv_depthwise_k3_l") == "conv_depthwise_k3"
        and kind_family("conv_input") == "conv_input"
    )


@pytest.mark.parametrize("name", ["raspberry-pi-4", "jetson-tx2", "pixel-3", "x86-cpu"])
def test_shipped_profiles_record_coverage_and_intervals(name):
    profile = load_profile(name)
    assert profile.coverage is not None and profile.interval is not None
    assert profile.interval.low < 1 < profile.interval.high and profile.interval.level == 0.9
    if name != "x86-cpu":  # remote: a prior from the local reference prices the kinds the table lacks
        assert profile.prior.reference == "x86-cpu" and math.isfinite(profile.prior.scale)
        assert {"conv_dense_k7_l", "activation_hardswish", "mul"} <= profile.prior.kinds()
        assert not any(profile.coverage.covers(k) for k in profile.prior.kinds())
