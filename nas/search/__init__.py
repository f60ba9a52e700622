"""The search: settings, study and storage, the ask/tell driver and its strategies, executors, run outputs.

`SearchConfig` is the list of settings (the `nas search` flags and config files derive from it). The
driver is composed of `Constraint` filters, a pre-screening `Selector` (registered in `SELECTORS`), the
`FidelitySchedule` and the `TrialLedger`; samplers are registered in `SAMPLERS`.

Imported lazily (like `nas`), so the CLI can read the settings without importing torch.
"""

from __future__ import annotations

from nas._lazy import lazy_exports

_EXPORTS = {
    "nas.search._api": ("SearchResult", "search"),
    "nas.search._arguments": (
        "add_config_arguments",
        "config_from_arguments",
        "load_config_file",
        "read_config_file",
    ),
    "nas.search._candidate": ("Candidate", "Progress"),
    "nas.search._config": ("SearchConfig",),
    "nas.search._constraints": (
        "Constraint",
        "LatencyBudget",
        "MaxMacs",
        "MaxParams",
        "MaxPeakMemory",
        "MaxWeights",
        "constraints_from",
    ),
    "nas.search._cheap_objectives": ("resolve_latency_mode",),
    "nas.search._driver": ("BatchDriver",),
    "nas.search._steady_driver": ("SteadyDriver", "driver_class"),
    "nas.search._device_nodes": ("DeviceMeasurer",),
    "nas.search._hybrid": (
        "HybridLatency",
        "OnlineCalibration",
        "calibration_samples",
        "latencies_as_the_run",
        "profile_from_run",
    ),
    "nas.search._executor": ("Executor", "RayExecutor", "TaskFailed"),
    "nas.search._fidelity": ("FidelitySchedule",),
    "nas.search._ledger": ("TrialLedger",),
    "nas.search._registry": ("Registry",),
    "nas.search._acquisition": (
        "AccuracySurrogate",
        "cost_features",
        "finite_last_score",
        "screening_features",
        "select_by_ehvi",
    ),
    "nas.search._results": ("dominates", "hypervolume", "pareto_indices", "trained_trials"),
    "nas.search._samplers": ("SAMPLERS",),
    "nas.search._setting": ("setting",),
    "nas.search._selection": (
        "SELECTORS",
        "EhviSelector",
        "LatencyBandSelector",
        "SelectionContext",
        "Selector",
    ),
    "nas.search._study": ("METRIC_NAMES", "load_run_study", "open_study", "storage_url"),
    "nas.search._tasks": ("task_resources", "train_candidate", "training_placement"),
    "nas.search._tracking": ("TRACKERS", "TrialCallback", "tracker_callbacks"),
    "nas.records": ("TrialRecord", "TrialStatus"),
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS, globals())
