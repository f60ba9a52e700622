"""Coverage: which node kinds (and sizes) a profile's measurements contain, recorded at fit time."""

from __future__ import annotations

import pytest

from nas.blocks import build_block, conv_bn
from nas.errors import NasError
from nas.latency import Coverage, GraphFeatures, graph_features
from nas.latency._features import conv_shape
from nas.onnx_io import export_onnx
from nas.space import BlockSpec


def features_of(module, shape):
    return graph_features(export_onnx(module, 0, fast=True, input_shape=shape))


def test_conv_shape_reads_channels_height_kernel_stride_and_groups():
    assert conv_shape((1, 24, 16, 16), (24, 1, 5, 5), (1, 24, 8, 8), 24) == (24, 24, 8, 5, 2, 24)
    assert conv_shape((1, 3, 32, 32), (16, 3, 3, 3), (1, 16, 16, 16), 1) == (3, 16, 16, 3, 2, 1)


def test_coverage_records_kinds_node_counts_and_ranges():
    small = features_of(
        build_block(BlockSpec("dwsep", 3, None, None, False, "relu"), 16, 24, 1), (1, 16, 8, 8)
    )
    large = features_of(
        build_block(BlockSpec("dwsep", 3, None, None, False, "relu"), 32, 48, 2), (1, 32, 16, 16)
    )
    coverage = Coverage.of([small, large], source="two blocks")
    assert set(coverage.kinds) == set(small.kinds) | set(large.kinds)
    pointwise = coverage.kinds["conv_pointwise_m"]
    assert pointwise["nodes"] == 2 and pointwise["c_in"] == [16, 32] and pointwise["c_out"] == [24, 48]
    assert pointwise["height"] == [8, 8] and pointwise["kernel"] == [1, 1]
    assert coverage.kinds["conv_depthwise_k3_m"]["stride"] == [1, 2]


def test_composed_graphs_without_node_detail_count_nodes_from_their_count_feature():
    """Features composed from parts carry no per-node detail; their `count` feature still says how many
    nodes of each kind they hold, so a kind measured in thousands of composed networks is not "thinly
    measured" (which would let the prior re-price a kind the device measured at zero)."""
    block = features_of(
        build_block(BlockSpec("dwsep", 3, None, None, False, "relu"), 16, 24, 1), (1, 16, 8, 8)
    )
    composed = GraphFeatures(kinds=block.kinds)
    assert not composed.nodes
    coverage = Coverage.of([composed, composed])
    assert coverage.kinds == {k: {"nodes": 2 * Coverage.of([block]).kinds[k]["nodes"]} for k in block.kinds}


def test_uncovered_kinds_and_out_of_range_nodes_are_named():
    measured = features_of(
        build_block(BlockSpec("dwsep", 3, None, None, False, "relu"), 16, 24, 1), (1, 16, 8, 8)
    )
    coverage = Coverage.of([measured])
    wider = features_of(
        build_block(BlockSpec("dwsep", 3, None, None, False, "relu"), 16, 64, 1), (1, 16, 8, 8)
    )
    assert coverage.uncovered_kinds(wider) == []
    assert any("c_out 64 outside [24, 24]" in line for line in coverage.out_of_range(wider))
    seven = features_of(
        build_block(BlockSpec("dwsep", 7, None, None, True, "hardswish"), 16, 24, 1), (1, 16, 8, 8)
    )
    assert {"conv_depthwise_k7_m", "activation_hardswish", "mul"} <= set(coverage.uncovered_kinds(seven))
    assert coverage.uncovered_kinds(measured) == [] and coverage.out_of_range(measured) == []


def test_round_trip_and_errors_name_the_field():
    coverage = Coverage.of([features_of(conv_bn(3, 16, 3, 2, act="relu"), (1, 3, 16, 16))], source="stem")
    assert Coverage.from_dict(coverage.to_dict()) == coverage
    bad = coverage.to_dict()
    bad["kinds"]["conv_bogus"] = {"nodes": 1}
    with pytest.raises(NasError, match="kinds.conv_bogus: unknown node kind"):
        Coverage.from_dict(bad)
    bad = coverage.to_dict()
    bad["kinds"]["conv_input"]["c_in"] = [5, 1]
    with pytest.raises(NasError, match=r"kinds.conv_input.c_in: must be \[low, high\]"):
        Coverage.from_dict(bad)


def test_a_profile_without_recorded_coverage_treats_zero_weight_kinds_as_uncovered():
    coverage = Coverage.inferred({"conv_pointwise_l.macs": 1e-9, "activation_relu.count": 0.0})
    assert coverage.covers("conv_pointwise_l") and not coverage.covers("activation_relu")
    assert "refit" in coverage.source
