"""Production validation of exported models: corruption and user slices, INT8 quantization, model cards.

from nas.validate import evaluate_slices, quantize_int8, compare_precisions, write_model_card
report = evaluate_slices("run/export/00_abcd/model.onnx", "builtin", user_slices="slices/")
report.print(); report.write_json("slices.json"); report.write_plot("slices.png")

Choosing among candidates (nas exports and off-the-shelf ONNX classifiers) and watching for drift:

from nas.validate import compare_candidates, drift_report
compare_candidates(["a/model.onnx", "mobilenet.onnx"], manifest="prod.csv").write_html("select.html")
drift_report("a/model.onnx", "prod.csv", time_column="timestamp", window=200).print()

Fine-tune or replace (`nas adapt`, which adds the deployment trainer): `failing_slices`, `adaptation_set`,
`decide` and `AdaptationReport`.
"""

from nas.validate._adapt import (
    AdaptationReport,
    adaptation_set,
    check_disjoint,
    decide,
    evaluation_pool,
    failing_slices,
    training_conditions,
)
from nas.validate._candidates import PreprocessingFlags, load_candidate
from nas.validate._card import ADAPT_FILE, CARD_FILE, write_model_card
from nas.validate._corruptions import FAMILIES, GROUPS, SEVERITIES, corrupt
from nas.validate._drift import DriftMonitor, Observations, accuracy_trend, observe
from nas.validate._drift_report import DriftReport, drift_report
from nas.validate._int8 import compare_precisions, quantize_int8
from nas.validate._manifest import Manifest, manifest_slices, read_manifest
from nas.validate._onnx import OnnxClassifier, preprocess
from nas.validate._render import save_figure
from nas.validate._robust import ROBUST_FAMILIES, ROBUST_MAX_IMAGES, ROBUST_SEVERITIES, corrupted_accuracy
from nas.validate._select import SelectionReport, compare_candidates
from nas.validate._slices import SliceReport, evaluate_slices, load_slice_report
from nas.validate._stats import expected_calibration_error, mcnemar_exact, wilson_interval

__all__ = [
    "ADAPT_FILE",
    "CARD_FILE",
    "AdaptationReport",
    "adaptation_set",
    "check_disjoint",
    "decide",
    "evaluation_pool",
    "failing_slices",
    "training_conditions",
    "PreprocessingFlags",
    "load_candidate",
    "DriftMonitor",
    "Observations",
    "accuracy_trend",
    "observe",
    "DriftReport",
    "drift_report",
    "Manifest",
    "manifest_slices",
    "read_manifest",
    "SelectionReport",
    "compare_candidates",
    "mcnemar_exact",
    "FAMILIES",
    "GROUPS",
    "OnnxClassifier",
    "ROBUST_FAMILIES",
    "ROBUST_MAX_IMAGES",
    "ROBUST_SEVERITIES",
    "SEVERITIES",
    "SliceReport",
    "compare_precisions",
    "corrupt",
    "corrupted_accuracy",
    "evaluate_slices",
    "expected_calibration_error",
    "load_slice_report",
    "preprocess",
    "quantize_int8",
    "save_figure",
    "wilson_interval",
    "write_model_card",
]
