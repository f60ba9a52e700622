"""The search: study and storage, the ask/tell driver, executors, and run outputs."""

from nas.search._api import SearchResult, search
from nas.search._config import SAMPLERS, SearchConfig
from nas.search._executor import Executor, RayExecutor, TaskFailed
from nas.search._results import hypervolume, pareto_indices
from nas.search._study import storage_url

__all__ = ["SearchConfig", "SearchResult", "search", "SAMPLERS", "Executor", "RayExecutor", "TaskFailed",
           "hypervolume", "pareto_indices", "storage_url"]
