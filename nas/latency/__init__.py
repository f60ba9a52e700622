"""Latency: hardware profiles (YAML data files) and the ONNX Runtime measurement protocol."""

from nas.latency._measure import LatencyMeasurement, MeasurementSettings, measure_latency
from nas.latency._profiles import HardwareProfile, list_profiles, load_profile

__all__ = [
    "HardwareProfile",
    "LatencyMeasurement",
    "MeasurementSettings",
    "list_profiles",
    "load_profile",
    "measure_latency",
]
