"""Latency: hardware profiles (YAML data files), the ONNX Runtime measurement protocol, and the latency
model that predicts a remote device's latency from measurements taken there, with what it covers,
its prediction interval and a prior for what the device never measured.

Importing it does not import torch: `ArchitectureFeaturizer` (which traces torch modules) loads on first use."""

from nas._io import cpu_model
from nas._lazy import lazy_exports
from nas.latency._block_samples import block_features, block_table_samples
from nas.latency._bundle import bundle_groups, bundle_reference, measure_bundle, write_bundle
from nas.latency._calibrate import fit_profile, predict_models, validate_on_measurements
from nas.latency._coverage import Coverage
from nas.latency._device import (
    DEVICE_RESOURCE_PREFIX,
    WeightlessGraph,
    device_resource,
    full_graph,
    measure_on_device,
    strip_weights,
)
from nas.latency._device_calibration import calibrated_profile
from nas.latency._features import COLUMNS, FEATURES, GraphFeatures, NodeFeatures
from nas.latency._graph import graph_features
from nas.latency._hardware_profile import HardwareProfile
from nas.latency._machine import calibrate_profile, local_profile
from nas.latency._measure import (
    LatencyMeasurement,
    MeasurementSettings,
    measure_latency,
    paired_latencies,
    paired_measurements,
)
from nas.latency._model import (
    LatencyModel,
    cross_validate,
    error_metrics,
    fit_latency_model,
    held_out_predictions,
    kendall_tau,
    nnls,
)
from nas.latency._op_kinds import KINDS
from nas.latency._prediction import (
    Interval,
    LatencyPrediction,
    Predictor,
    Prior,
    conformal_interval,
)
from nas.latency._prior import fit_prior
from nas.latency._profile_lookup import builtin_profile_names, corpus_profiles, list_profiles, load_profile
from nas.latency._profiles import write_profile
from nas.latency._signature import machine_signature, user_profile_dir
from nas.latency._space_coverage import check_space_coverage, space_kinds
from nas.latency._table_profiles import BUILTIN_PROFILES, generate_builtin_profiles, import_block_table
from nas.latency._tables import BlockConfig, BlockRow, read_block_table, read_unique_blocks_table

__all__ = [
    "cpu_model",
    "write_bundle",
    "validate_on_measurements",
    "predict_models",
    "measure_bundle",
    "bundle_groups",
    "bundle_reference",
    "fit_profile",
    "builtin_profile_names",
    "BUILTIN_PROFILES",
    "BlockConfig",
    "BlockRow",
    "DEVICE_RESOURCE_PREFIX",
    "device_resource",
    "measure_on_device",
    "strip_weights",
    "full_graph",
    "WeightlessGraph",
    "COLUMNS",
    "Coverage",
    "FEATURES",
    "GraphFeatures",
    "HardwareProfile",
    "Interval",
    "KINDS",
    "LatencyMeasurement",
    "LatencyModel",
    "LatencyPrediction",
    "MeasurementSettings",
    "NodeFeatures",
    "Predictor",
    "Prior",
    "block_features",
    "block_table_samples",
    "calibrate_profile",
    "calibrated_profile",
    "check_space_coverage",
    "conformal_interval",
    "cross_validate",
    "error_metrics",
    "fit_prior",
    "fit_latency_model",
    "generate_builtin_profiles",
    "graph_features",
    "held_out_predictions",
    "import_block_table",
    "kendall_tau",
    "list_profiles",
    "load_profile",
    "local_profile",
    "machine_signature",
    "measure_latency",
    "paired_latencies",
    "paired_measurements",
    "nnls",
    "read_block_table",
    "read_unique_blocks_table",
    "space_kinds",
    "user_profile_dir",
    "write_profile",
]

# Building blocks of fitting and few-shot transfer, for the benchmarks that study them.
from nas.latency._calibrate import (  # noqa: E402
    choose_graph_term,
    fit_sections,
    measurement_samples,
    reference_latencies,
)
from nas.latency._fewshot import (  # noqa: E402
    design_few_shot,
    fit_few_shot_predictions,
    held_out_few_shot,
    model_arrays,
    prior_matrix,
)
from nas.latency._machine import calibrate_model, calibrated_with_held_out, leave_one_out  # noqa: E402
from nas.latency._model import conv_node_counts, fit_matrix, held_out_matrix  # noqa: E402
from nas.latency._prior import MIN_HIDDEN, MIN_KEPT, kind_family  # noqa: E402

__all__ += [
    "MIN_HIDDEN",
    "MIN_KEPT",
    "calibrate_model",
    "calibrated_with_held_out",
    "choose_graph_term",
    "conv_node_counts",
    "corpus_profiles",
    "design_few_shot",
    "fit_few_shot_predictions",
    "fit_matrix",
    "fit_sections",
    "held_out_few_shot",
    "held_out_matrix",
    "kind_family",
    "leave_one_out",
    "measurement_samples",
    "model_arrays",
    "prior_matrix",
    "reference_latencies",
]


# Energy per inference, for profiles whose data measured it (nas.latency._energy), and what fits it.
from nas.latency._energy import EnergyPrediction, EnergySection  # noqa: E402
from nas.latency._energy_fit import add_energy_section, table_energies  # noqa: E402
from nas.latency._model import fold_splits  # noqa: E402

__all__ += ["EnergyPrediction", "EnergySection", "add_energy_section", "fold_splits", "table_energies"]


# Torch-backed names load on first use, so the rest of nas.latency stays importable without torch.
_lazy_all, __getattr__ = lazy_exports(
    "nas.latency", {"nas.latency._arch_features": ("ArchitectureFeaturizer",)}, globals()
)
__all__ += _lazy_all
