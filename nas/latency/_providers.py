"""Execution-provider options of a measurement protocol (a profile's ``runtime.provider_options``).

ONNX Runtime ignores an option it does not know and falls back to its CPU provider when the requested one
cannot start, both silently: a latency "on TensorRT fp16" would then be CPU fp32. So the options of the
providers below are checked when a profile loads (a typo is a one-line error), and a measurement refuses a
session that does not run on the provider it asked for (`check_session_provider`). Options of a provider
not listed here are passed on unchecked (names must still be strings, values scalars).
"""

from __future__ import annotations

import math
from typing import Any

from nas.errors import NasError

_BOOL = "a boolean (true or false)"
_COUNT = "a non-negative integer"
_TEXT = "a non-empty string"

# The documented options of the providers users measure with, and the kind of value each takes.
KNOWN_OPTIONS: dict[str, dict[str, str]] = {
    "CPUExecutionProvider": {},
    "CUDAExecutionProvider": {
        "device_id": _COUNT,
        "gpu_mem_limit": _COUNT,
        "arena_extend_strategy": _TEXT,
        "cudnn_conv_algo_search": _TEXT,
        "do_copy_in_default_stream": _BOOL,
        "cudnn_conv_use_max_workspace": _BOOL,
        "cudnn_conv1d_pad_to_nc1d": _BOOL,
        "enable_cuda_graph": _BOOL,
        "tunable_op_enable": _BOOL,
        "tunable_op_tuning_enable": _BOOL,
        "use_tf32": _BOOL,
        "prefer_nhwc": _BOOL,
        "enable_skip_layer_norm_strict_mode": _BOOL,
    },
    "TensorrtExecutionProvider": {
        "device_id": _COUNT,
        "trt_fp16_enable": _BOOL,
        "trt_bf16_enable": _BOOL,
        "trt_int8_enable": _BOOL,
        "trt_int8_calibration_table_name": _TEXT,
        "trt_int8_use_native_calibration_table": _BOOL,
        "trt_engine_cache_enable": _BOOL,
        "trt_engine_cache_path": _TEXT,
        "trt_engine_cache_prefix": _TEXT,
        "trt_timing_cache_enable": _BOOL,
        "trt_timing_cache_path": _TEXT,
        "trt_force_timing_cache": _BOOL,
        "trt_max_workspace_size": _COUNT,
        "trt_max_partition_iterations": _COUNT,
        "trt_min_subgraph_size": _COUNT,
        "trt_builder_optimization_level": _COUNT,
        "trt_auxiliary_streams": _COUNT,
        "trt_dla_enable": _BOOL,
        "trt_dla_core": _COUNT,
        "trt_layer_norm_fp32_fallback": _BOOL,
        "trt_cuda_graph_enable": _BOOL,
        "trt_sparsity_enable": _BOOL,
        "trt_context_memory_sharing_enable": _BOOL,
        "trt_force_sequential_engine_build": _BOOL,
        "trt_detailed_build_log": _BOOL,
        "trt_build_heuristics_enable": _BOOL,
        "trt_dump_subgraphs": _BOOL,
        "trt_profile_min_shapes": _TEXT,
        "trt_profile_max_shapes": _TEXT,
        "trt_profile_opt_shapes": _TEXT,
    },
    "OpenVINOExecutionProvider": {
        "device_type": _TEXT,  # CPU, GPU, GPU.0, NPU, AUTO:GPU,CPU, HETERO:..., MULTI:...
        "precision": _TEXT,
        "num_of_threads": _COUNT,
        "num_streams": _COUNT,
        "cache_dir": _TEXT,
        "load_config": _TEXT,
        "model_priority": _TEXT,
        "enable_qdq_optimizer": _BOOL,
        "disable_dynamic_shapes": _BOOL,
        "enable_opencl_throttling": _BOOL,
    },
    "XnnpackExecutionProvider": {"intra_op_num_threads": _COUNT},
}


def _wrong_kind(kind: str, value: Any) -> bool:
    if kind == _BOOL:
        return not isinstance(value, bool)
    if kind == _COUNT:
        return not isinstance(value, int) or isinstance(value, bool) or value < 0
    return not isinstance(value, str) or not value.strip()


def provider_options_problem(provider: str, options: Any) -> tuple[str, str] | None:
    """(the option, why it is wrong) for `options` of `provider`; "" as the option for the mapping itself;
    None when they are fine."""
    if not isinstance(options, dict):
        return "", f"must be a mapping of {provider} option names to values, got {options!r}"
    known = KNOWN_OPTIONS.get(provider)
    for name, value in options.items():
        if not isinstance(name, str) or not name:
            return str(name), "option names must be non-empty strings"
        if known is not None and name not in known:
            takes = f"one of: {', '.join(sorted(known))}" if known else "none (it takes no options)"
            return name, f"not an option of {provider}; expected {takes}"
        if known is not None and _wrong_kind(known[name], value):
            return name, f"must be {known[name]}, got {value!r}"
        scalar = isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value))
        if not scalar:
            return name, f"must be a string, number or boolean, got {value!r}"
    return None


def check_session_provider(session: Any, provider: str) -> None:
    """A session ONNX Runtime quietly moved off the requested provider (its libraries missing, a device
    absent) is refused: its latencies would be another provider's."""
    running = list(session.get_providers())
    if provider not in running:
        raise NasError(
            f"execution provider {provider!r} could not start here: ONNX Runtime fell back to "
            f"{', '.join(running) or 'nothing'} (check the provider's libraries, device and provider_options)"
        )
