"""The search: study and storage, the ask/tell driver, executors, and run outputs.

Imported lazily (like `nas`), so the CLI can read the settings without importing torch.
"""

from __future__ import annotations

from nas._lazy import lazy_exports

_EXPORTS = {
    "nas.search._api": ("SearchResult", "search"),
    "nas.search._config": ("SAMPLERS", "SearchConfig"),
    "nas.search._executor": ("Executor", "RayExecutor", "TaskFailed"),
    "nas.search._acquisition": (
        "AccuracySurrogate",
        "cost_features",
        "finite_last_score",
        "screening_features",
        "select_by_ehvi",
    ),
    "nas.search._results": ("dominates", "hypervolume", "pareto_indices", "trained_trials"),
    "nas.search._study": ("load_run_study", "storage_url"),
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS, globals())
