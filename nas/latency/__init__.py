"""Latency: hardware profiles (YAML data files), the ONNX Runtime measurement protocol, and the latency
model that predicts a remote device's latency from block measurements taken there."""

from nas.latency._graph import COLUMNS, FEATURES, KINDS, GraphFeatures, NodeFeatures, graph_features
from nas.latency._measure import LatencyMeasurement, MeasurementSettings, measure_latency
from nas.latency._model import (
    LatencyModel,
    cross_validate,
    error_metrics,
    fit_latency_model,
    held_out_predictions,
    kendall_tau,
    nnls,
)
from nas.latency._profiles import HardwareProfile, list_profiles, load_profile, write_profile
from nas.latency._table_profiles import BUILTIN_PROFILES, generate_builtin_profiles, import_block_table
from nas.latency._tables import (
    BlockConfig,
    BlockRow,
    block_features,
    block_table_samples,
    read_block_table,
    read_unique_blocks_table,
)

__all__ = [
    "BUILTIN_PROFILES",
    "BlockConfig",
    "BlockRow",
    "COLUMNS",
    "FEATURES",
    "GraphFeatures",
    "HardwareProfile",
    "KINDS",
    "LatencyMeasurement",
    "LatencyModel",
    "MeasurementSettings",
    "NodeFeatures",
    "block_features",
    "block_table_samples",
    "cross_validate",
    "error_metrics",
    "fit_latency_model",
    "generate_builtin_profiles",
    "graph_features",
    "held_out_predictions",
    "import_block_table",
    "kendall_tau",
    "list_profiles",
    "load_profile",
    "measure_latency",
    "nnls",
    "read_block_table",
    "read_unique_blocks_table",
    "write_profile",
]
