"""nas: hardware-aware neural architecture search for lightweight vision models.

The public API. Everything the `nas` command does is available here:

    import nas
    result = nas.search(space="mobilenet", profile="x86-cpu", trials=24)   # or nas.search(SearchConfig(...))
    nas.export_run(result.run_dir)

Names are imported on first use, so that torch-free parts (measuring a calibration bundle on a
device with only onnxruntime, onnx and numpy) work without torch installed.
"""

from __future__ import annotations

from nas._lazy import lazy_exports
from nas._version import DISTRIBUTION, __version__  # noqa: F401  (re-exported)
from nas.errors import NasError  # noqa: F401  (re-exported)

_EXPORTS = {
    "nas.space": ("Architecture", "SearchSpace", "load_space", "list_spaces"),
    "nas.builder": ("build_model",),
    "nas.evaluate": (
        "count_costs",
        "Trainer",
        "ProxyTrainer",
        "TrainingRecipe",
        "zero_cost_scores",
    ),
    "nas.onnx_io": ("export_onnx",),
    "nas.data": ("ImageDataset", "load_dataset"),
    "nas.latency": (
        "HardwareProfile",
        "MeasurementSettings",
        "list_profiles",
        "load_profile",
        "measure_latency",
    ),
    "nas.search": ("Executor", "RayExecutor", "SearchConfig", "SearchResult"),
    "nas.records": ("TrialRecord", "TrialStatus"),
    "nas.export": ("ExportedModel", "deploy_train", "export_run", "read_preprocessing"),
    "nas.report": ("write_report", "write_comparison"),
    "nas.baselines": ("hand_designed", "evaluate_baselines"),
    "nas.validate": ("evaluate_slices", "quantize_int8", "compare_precisions", "write_model_card"),
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted(__all__ + ["NasError", "search"])

# The subpackage nas.search is loaded here (it is torch-free) so that importing it later cannot
# replace the function below with the module of the same name.
import nas.search as _search_package  # noqa: E402,F401


def search(config=None, **settings):
    """Run (or resume) a hardware-aware search: `nas.search(SearchConfig(...))`, or the `SearchConfig` fields
    as keywords (`nas.search(trials=24)`); `trainer`, `executor` and `show_progress` as in `nas.search.search`."""
    from nas.search import search as run_search

    return run_search(config, **settings)
