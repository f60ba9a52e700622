"""nas: hardware-aware neural architecture search for lightweight vision models.

The public API. Everything the `nas` command does is available here:

    import nas
    result = nas.search(space="mobilenet", profile="x86-cpu", trials=24)
    nas.export_run(result.run_dir)
"""

from nas.builder import build_model
from nas.data import ImageDataset, load_dataset
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, Trainer, TrainingRecipe, count_costs
from nas.export import ExportedModel, export_run, read_preprocessing
from nas.latency import HardwareProfile, MeasurementSettings, list_profiles, load_profile, measure_latency
from nas.onnx_io import export_onnx
from nas.search import Executor, RayExecutor, SearchConfig, SearchResult, search
from nas.space import Architecture, SearchSpace, list_spaces, load_space

__version__ = "0.1.0"

__all__ = [
    "Architecture", "SearchSpace", "load_space", "list_spaces",
    "build_model", "count_costs", "export_onnx",
    "ImageDataset", "load_dataset",
    "HardwareProfile", "MeasurementSettings", "list_profiles", "load_profile", "measure_latency",
    "Trainer", "ProxyTrainer", "TrainingRecipe",
    "Executor", "RayExecutor", "SearchConfig", "SearchResult", "search",
    "ExportedModel", "export_run", "read_preprocessing",
    "NasError",
]
