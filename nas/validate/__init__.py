"""Production validation of exported models: corruption and user slices, INT8 quantization, model cards.

from nas.validate import evaluate_slices, quantize_int8, compare_precisions, write_model_card
report = evaluate_slices("run/export/00_abcd/model.onnx", "builtin", user_slices="slices/")
report.print(); report.write_json("slices.json"); report.write_plot("slices.png")
"""

from nas.validate._card import write_model_card
from nas.validate._corruptions import FAMILIES, GROUPS, SEVERITIES, corrupt
from nas.validate._int8 import compare_precisions, quantize_int8
from nas.validate._onnx import OnnxClassifier, preprocess
from nas.validate._render import save_figure
from nas.validate._robust import ROBUST_FAMILIES, ROBUST_MAX_IMAGES, ROBUST_SEVERITIES, corrupted_accuracy
from nas.validate._slices import SliceReport, evaluate_slices, load_slice_report
from nas.validate._stats import expected_calibration_error, wilson_interval

__all__ = [
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
