"""The prior's rules: a kind priced through its measured sibling, a thinly measured zero-weight kind
priced rather than free, and each extrapolated kind bounded by the interval of the rule that priced it."""

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
    fit_prior,
)
from nas.latency._features import FEATURES
from nas.latency._prediction import MIN_NODES, unidentified_kinds
from nas.latency._prior import hidden_family_ratios_by_rule, sibling_families


def graph(**macs: float) -> GraphFeatures:
    """A graph with one node per kind: count 1 and its MACs."""
    nodes = []
    for kind, m in macs.items():
        vector = np.zeros(len(FEATURES))
        vector[FEATURES.index("count")], vector[FEATURES.index("macs")] = 1, m
        nodes.append(NodeFeatures(name=kind, op_type="Conv", kind=kind, features=vector))
    return GraphFeatures.from_nodes(nodes)


def test_siblings_are_the_same_convolution_with_another_kernel_size():
    measured = {"conv_depthwise_k3", "conv_depthwise_k5", "conv_pointwise", "conv_dense_k3"}
    assert sibling_families("conv_depthwise_k7", measured) == ["conv_depthwise_k3", "conv_depthwise_k5"]
    assert sibling_families("conv_dense_k7", measured) == ["conv_dense_k3"]
    assert sibling_families("conv_grouped", measured) == []  # another operator: no sibling
    assert sibling_families("add", measured) == []


def test_a_kind_with_a_measured_sibling_costs_the_siblings_ratio_not_the_devices_overall_scale():
    """The device is 2x the reference on 1x1 convolutions and 8x on 3x3 depthwise ones. Its unmeasured
    5x5 depthwise kind is priced at 8x the reference (the sibling's ratio), where the overall scale (the
    median ratio over graphs, pulled toward 2x by the 1x1 convolutions) would price it far lower."""
    reference = LatencyModel(
        overhead_ms=0.0,
        weights={
            "conv_pointwise_l.macs": 1e-6,
            "conv_depthwise_k3_l.macs": 1e-6,
            "conv_depthwise_k5_l.macs": 3e-6,
        },
    )
    device = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.macs": 2e-6, "conv_depthwise_k3_l.macs": 8e-6}
    )
    mixes = [(1e6, 1e4), (2e6, 5e4), (3e6, 1e4), (5e6, 8e4), (1e6, 9e4)]
    samples = [
        (
            graph(conv_pointwise_l=p, conv_depthwise_k3_l=d),
            device.predict(graph(conv_pointwise_l=p, conv_depthwise_k3_l=d)),
        )
        for p, d in mixes
    ]
    everything = Coverage.of([graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, conv_depthwise_k5_l=1.0)])
    prior = fit_prior(device, Coverage.of([g for g, _ in samples]), samples, reference, everything, "ref")
    assert prior.weights == pytest.approx({"conv_depthwise_k5_l.macs": 8 * 3e-6})
    assert prior.scale < 3  # the overall ratio would have priced it at less than 3x
    assert prior.siblings == ((("conv_depthwise_k5_l",), ("conv_depthwise_k3",), pytest.approx(8.0)),)
    assert Prior.from_dict(prior.to_dict()) == prior


def test_a_device_that_pays_a_cost_per_node_pays_it_for_a_kind_it_never_measured():
    """The device costs 2x the reference per MAC plus 0.05 ms per node (a kernel launch). Its unmeasured
    `memory` kind is priced the same way: 2x the reference's price and 0.05 ms per node, where one
    scale (the median ratio, above 2 because of the launches) would charge no launch and too much per
    MAC."""
    reference = LatencyModel(
        overhead_ms=0.0,
        weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 4e-6, "memory.macs": 1e-6},
    )
    device = LatencyModel(
        overhead_ms=0.0,
        weights={
            "conv_pointwise_l.macs": 2e-6,
            "conv_pointwise_l.count": 0.05,
            "conv_depthwise_k3_l.macs": 8e-6,
            "conv_depthwise_k3_l.count": 0.05,
        },
    )
    mixes = [(1e5, 1e4), (2e5, 5e4), (3e5, 1e4), (5e5, 8e4), (1e5, 9e4), (4e4, 2e4)]
    graphs = [graph(conv_pointwise_l=p, conv_depthwise_k3_l=d) for p, d in mixes]
    samples = [(g, device.predict(g)) for g in graphs]
    everything = Coverage.of([graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, memory=1.0)])
    prior = fit_prior(device, Coverage.of(graphs), samples, reference, everything, "ref")
    assert prior.weights == pytest.approx({"memory.macs": 2e-6, "memory.count": 0.05}, rel=1e-6)
    assert prior.scale > 2.1  # one scale would have charged more per MAC and nothing per node
    assert prior.combinations == (
        (("memory",), {"ref": pytest.approx(2.0), "per-node": pytest.approx(0.05)}),
    )
    assert Prior.from_dict(prior.to_dict()) == prior


def test_a_reference_that_prices_a_minority_of_the_devices_time_joins_no_combination():
    """`narrow` prices only depthwise convolutions (under half of the device's time) and memory at 100x
    the main reference. With it, the combination would be exact on the measured kinds (2 x reference +
    2 x narrow) and carry narrow's coefficient to memory at 100x; without it, memory costs about what
    the main reference and the per-node cost say."""
    reference = LatencyModel(
        overhead_ms=0.0,
        weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 1e-6, "memory.macs": 1e-6},
    )
    narrow = LatencyModel(overhead_ms=0.0, weights={"conv_depthwise_k3_l.macs": 1e-6, "memory.macs": 1e-4})
    device = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.macs": 2e-6, "conv_depthwise_k3_l.macs": 4e-6}
    )
    mixes = [(1e6, 1e5), (2e6, 3e5), (3e6, 2e5), (5e6, 8e5), (1e6, 4e5), (4e6, 1e6)]
    graphs = [graph(conv_pointwise_l=p, conv_depthwise_k3_l=d) for p, d in mixes]
    samples = [(g, device.predict(g)) for g in graphs]
    everything = Coverage.of([graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, memory=1.0)])
    prior = fit_prior(
        device,
        Coverage.of(graphs),
        samples,
        reference,
        everything,
        "ref",
        also=[("narrow", narrow, everything)],
    )
    ((kinds, coefficients),) = prior.combinations
    assert kinds == ("memory",) and "narrow" not in coefficients
    assert 1e-6 < prior.weights["memory.macs"] < 5e-6


def test_when_only_the_per_node_cost_is_informative_it_prices_the_kind_alone():
    """A launch-bound device (a GPU at batch 1: a fixed cost per node) whose main reference prices only a
    tenth of its time: the reference joins no combination, and the per-node cost alone prices `memory`
    rather than the reference it left (whose price per MAC the device does not pay)."""
    reference = LatencyModel(overhead_ms=0.0, weights={"conv_depthwise_k3_l.macs": 1e-6, "memory.macs": 1e-4})
    device = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.count": 0.09, "conv_depthwise_k3_l.count": 0.01}
    )
    mixes = [(1e5, 1e4), (2e5, 5e4), (3e5, 1e4), (5e5, 8e4), (1e5, 9e4), (4e4, 2e4)]
    graphs = [graph(conv_pointwise_l=p, conv_depthwise_k3_l=d) for p, d in mixes]
    samples = [(g, device.predict(g)) for g in graphs]
    everything = Coverage.of([graph(conv_pointwise_l=1.0, conv_depthwise_k3_l=1.0, memory=1.0)])
    prior = fit_prior(device, Coverage.of(graphs), samples, reference, everything, "ref")
    assert prior.combinations == ((("memory",), {"per-node": pytest.approx(0.05)}),)
    assert prior.weights == pytest.approx({"memory.count": 0.05})


def test_a_thinly_measured_kind_with_zero_weight_is_priced_by_the_prior_not_free():
    """`memory` occurs in two graphs and its weight came out zero: too few nodes to call it free, so the
    prior prices it. `activation_relu`, at zero over many nodes, is trusted to be free (fused)."""
    model = LatencyModel(overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6})
    coverage = Coverage.of(
        [graph(conv_pointwise_l=1.0, activation_relu=1.0) for _ in range(MIN_NODES)]
        + [graph(conv_pointwise_l=1.0, memory=1.0)] * 2
    )
    assert unidentified_kinds(model, coverage) == {"memory"}
    prior = Prior(
        "ref", 2.0, Interval(0.9, 0.5, 3.0, 100), {"memory.macs": 1e-6, "conv_dense_k7_l.macs": 1e-6}
    )
    predictor = Predictor("dev", model, coverage, Interval(0.9, 0.9, 1.1, 100), prior)
    prediction = predictor.predict(graph(conv_pointwise_l=1e6, memory=1e6, activation_relu=1e6))
    assert prediction.latency_ms == pytest.approx(2.0) and prediction.extrapolated_ms == pytest.approx(1.0)
    assert prediction.uncovered == ()  # measured, so not "never measured"; but not priced at zero either


def test_each_extrapolated_kind_takes_the_interval_of_the_rule_that_priced_it():
    model = LatencyModel(overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6})
    prior = Prior(
        "ref",
        2.0,
        Interval(0.9, 0.2, 5.0, 100),
        {"conv_depthwise_k7_l.macs": 1e-6, "conv_dense_k7_l.macs": 1e-6},
        siblings=((("conv_depthwise_k7_l",), ("conv_depthwise_k3",), 4.0),),
        sibling_interval=Interval(0.9, 0.8, 1.25, 50),
    )
    predictor = Predictor(
        "dev", model, Coverage.of([graph(conv_pointwise_l=1.0)]), Interval(0.9, 0.9, 1.1, 100), prior
    )
    by_sibling = predictor.predict(graph(conv_pointwise_l=1e6, conv_depthwise_k7_l=1e6))
    assert (by_sibling.low_ms, by_sibling.high_ms) == pytest.approx((0.9 + 0.8, 1.1 + 1.25))
    by_scale = predictor.predict(graph(conv_pointwise_l=1e6, conv_dense_k7_l=1e6))
    assert (by_scale.low_ms, by_scale.high_ms) == pytest.approx((0.9 + 0.2, 1.1 + 5.0))
    assert Prior.from_dict(prior.to_dict()) == prior
    with pytest.raises(NasError, match=r"siblings\[0\]"):
        Prior.from_dict({**prior.to_dict(), "siblings": [{"kinds": ["x"], "measured_on": [], "ratio": -1}]})


def test_hidden_families_are_scored_under_the_rule_that_priced_them():
    """Depthwise 3x3 and 5x5 are siblings: hiding either prices it through the other. The device is 3x
    the reference on 1x1 and 6x on depthwise convolutions, so the sibling rule is exact."""
    reference = LatencyModel(
        overhead_ms=0.0,
        weights={
            "conv_pointwise_l.macs": 1e-6,
            "conv_depthwise_k3_l.macs": 4e-6,
            "conv_depthwise_k5_l.macs": 9e-6,
        },
    )
    rng = np.random.default_rng(2)
    samples = []
    for i in range(90):
        kinds = {"conv_pointwise_l": float(rng.uniform(1e5, 1e6))}
        if i % 3:
            kinds["conv_depthwise_k3_l" if i % 3 == 1 else "conv_depthwise_k5_l"] = float(
                rng.uniform(1e4, 1e5)
            )
        features = graph(**kinds)
        pointwise = reference.predict(graph(conv_pointwise_l=kinds["conv_pointwise_l"]))
        samples.append((features, 3 * pointwise + 6 * (reference.predict(features) - pointwise)))
    by_rule = hidden_family_ratios_by_rule(
        samples,
        reference,
        Coverage.of([graph(conv_pointwise_l=1, conv_depthwise_k3_l=1, conv_depthwise_k5_l=1)]),
    )
    assert len(by_rule["sibling"]) >= 10 and np.allclose(by_rule["sibling"], 1.0, rtol=1e-3)


def test_a_hidden_family_the_prior_underprices_still_counts_toward_its_interval():
    """The device runs depthwise convolutions 10x dearer, relative to the reference, than 1x1 ones. Hidden,
    they are priced at a tenth of their cost, a small share of the prediction: the graphs still count
    (their share is the device's own), so the interval learns the 10x."""
    reference = LatencyModel(
        overhead_ms=0.0, weights={"conv_pointwise_l.macs": 1e-6, "conv_depthwise_k3_l.macs": 1e-6}
    )
    rng = np.random.default_rng(3)
    samples = []
    for i in range(60):
        kinds = {"conv_pointwise_l": float(rng.uniform(4e5, 6e5))}
        if i % 3 == 0:
            kinds["conv_depthwise_k3_l"] = float(rng.uniform(2e4, 4e4))
        latency = 3e-6 * kinds["conv_pointwise_l"] + 30e-6 * kinds.get("conv_depthwise_k3_l", 0.0)
        samples.append((graph(**kinds), latency))
    coverage = Coverage.of([graph(conv_pointwise_l=1, conv_depthwise_k3_l=1)])
    ratios = hidden_family_ratios_by_rule(samples, reference, coverage)["reference"]
    assert len(ratios) >= 10 and np.allclose(ratios, 10.0, rtol=1e-3)
