"""nas.latency profiles: the built-in x86-cpu profile and every way a profile file can be wrong."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nas._resources import builtin_dir
from nas.errors import NasError
from nas.latency import (
    HardwareProfile,
    LatencyModel,
    MeasurementSettings,
    list_profiles,
    load_profile,
    write_profile,
)

GOOD = """\
name: my-cpu
description: a test profile
latency: measured
runtime: {engine: onnxruntime, execution_provider: CPUExecutionProvider, intra_op_threads: 2, graph_optimization: basic}
measurement: {warmup_runs: 4, rounds: 3, round_ms: 20, max_spread: 0.1, max_attempts: 2}
provenance: written by a test
"""


def write(tmp_path: Path, text: str, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(NasError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message  # every file error names the file
    return message


# ---------------------------------------------------------------------------------------- built-ins


def test_builtin_x86_cpu_loads():
    profile = load_profile("x86-cpu")
    assert isinstance(profile, HardwareProfile)
    assert profile.name == "x86-cpu"
    assert profile.latency == "measured"
    assert profile.path == builtin_dir("hardware_profiles") / "x86-cpu.yaml"
    assert profile.runtime["engine"] == "onnxruntime"
    assert profile.measurement == MeasurementSettings(
        execution_provider="CPUExecutionProvider",
        intra_op_threads=1,
        graph_optimization="all",
        warmup_runs=10,
        rounds=5,
        round_ms=25.0,
        max_spread=0.05,
        max_attempts=3,
    )
    assert profile.provenance and profile.description
    assert profile.raw["runtime"]["intra_op_threads"] == 1
    described = profile.describe()
    json.dumps(described)  # JSON-friendly
    assert described["name"] == "x86-cpu" and described["measurement"]["rounds"] == 5


def test_list_profiles_sorted_and_named_like_their_files():
    profiles = list_profiles()
    names = [p.name for p in profiles]
    assert "x86-cpu" in names
    assert names == sorted(names)
    for profile in profiles:
        assert profile.path.stem == profile.name
        assert load_profile(profile.name) == profile


def test_load_by_path(tmp_path):
    path = write(tmp_path, GOOD)
    for given in (path, str(path)):
        profile = load_profile(given)
        assert profile.name == "my-cpu" and profile.path == path
        assert profile.measurement.intra_op_threads == 2
        assert profile.measurement.graph_optimization == "basic"
        assert profile.measurement.round_ms == 20.0 and isinstance(profile.measurement.round_ms, float)
        assert profile.measurement.max_attempts == 2
        assert profile.provenance == "written by a test"


def test_optional_sections_default(tmp_path):
    path = write(
        tmp_path,
        """\
        name: minimal
        description: only the required fields
        latency: measured
        runtime: {engine: onnxruntime}
    """,
    )
    profile = load_profile(path)
    assert profile.measurement == MeasurementSettings()
    assert profile.provenance == ""


PREDICTED = """\
name: some-board
description: a remote board whose latency is predicted
latency: predicted
runtime: {engine: tensorrt, precision: fp16}
provenance: fitted by a test
model: {overhead_ms: 0.5, weights: {conv_depthwise_k3_l.macs: 2.0e-08, gemm.count: 0.25}}
validation: {mape: 12.5, within_10pct: 0.5, kendall_tau: 0.7, n: 20, folds: 5, data: some blocks}
measurements: {path: blocks.csv, format: block_table, provenance: measured by a test, license: MIT}
"""


def write_predicted(tmp_path: Path, text: str = PREDICTED) -> Path:
    (tmp_path / "blocks.csv").write_text("block,latency_ms\n")
    return write(tmp_path, text)


def test_predicted_profile_is_accepted(tmp_path):
    profile = load_profile(write_predicted(tmp_path))
    assert profile.latency == "predicted"
    assert profile.runtime == {"engine": "tensorrt", "precision": "fp16"}
    assert profile.latency_model == LatencyModel(0.5, {"conv_depthwise_k3_l.macs": 2e-8, "gemm.count": 0.25})
    assert profile.validation["mape"] == 12.5 and profile.validation["data"] == "some blocks"
    assert profile.measurements["path"] == str((tmp_path / "blocks.csv").resolve())
    described = profile.describe()
    json.dumps(described)
    assert (
        described["validation_error"]
        == "MAPE 12.5%, 50% within +-10%, Kendall tau 0.70 (20 held-out samples)"
    )
    assert described["model"] == {"overhead_ms": 0.5, "weights": 2}


def test_predicted_profile_without_model_is_refused(tmp_path):
    text = "\n".join(line for line in PREDICTED.splitlines() if not line.startswith("model:")) + "\n"
    message = error_of(write_predicted(tmp_path, text))
    assert ": model: missing required field" in message


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "gemm.count: 0.25",
            "gemm.count: -1",
            "model.weights.gemm.count: must be a non-negative number, got -1",
        ),
        ("gemm.count: 0.25", "gemm.flops: 1", "model.weights.gemm.flops: unknown feature column"),
        ("overhead_ms: 0.5", "overhead_ms: soon", "model.overhead_ms: must be a non-negative number"),
        (
            "model: {overhead_ms: 0.5, weights: {conv_depthwise_k3_l.macs: 2.0e-08, gemm.count: 0.25}}",
            "model: 3",
            "model: must be a mapping",
        ),
        ("mape: 12.5", "mape: -3", "validation.mape: must be a non-negative number"),
        ("kendall_tau: 0.7", "kendall_tau: 2", "validation.kendall_tau: must be a number in [-1, 1]"),
        ("n: 20, ", "", "validation.n: missing required field"),
        ("path: blocks.csv", "path: missing.csv", "measurements.path: data file not found"),
        (
            "format: block_table",
            "format: parquet",
            "measurements.format: must be one of block_table, unique_blocks, onnx_measurements",
        ),
        ("license: MIT", "licence: MIT", "measurements.licence: unknown key"),
    ],
)
def test_predicted_profile_errors_name_the_field(tmp_path, old, new, expected):
    assert old in PREDICTED
    message = error_of(write_predicted(tmp_path, PREDICTED.replace(old, new)))
    assert expected in message, message


def test_measured_profile_may_carry_a_model_but_not_validation_alone(tmp_path):
    profile = load_profile(write(tmp_path, GOOD + "model: {overhead_ms: 0.5, weights: {}}\n"))
    assert profile.latency == "measured" and profile.latency_model.overhead_ms == 0.5
    message = error_of(
        write(tmp_path, GOOD + "validation: {mape: 1.0, within_10pct: 0.9, kendall_tau: 0.9, n: 20}\n")
    )
    assert ": validation: only a profile with a fitted model has this section" in message


@pytest.mark.parametrize(
    "name, overhead_floor", [("jetson-tx2", 0.2), ("raspberry-pi-4", 0.0), ("pixel-3", 0.0)]
)
def test_shipped_predicted_profiles_load_and_report_validation(name, overhead_floor):
    profile = load_profile(name)
    assert profile.latency == "predicted" and profile.path.stem == name
    assert profile.latency_model is not None and profile.latency_model.overhead_ms >= overhead_floor
    assert profile.validation["n"] > 200 and profile.validation["folds"] == 5
    assert 0 < profile.validation["mape"] < 50
    assert "HW-NAS-Bench" in profile.provenance and "arXiv:2103.10584" in profile.provenance
    data = Path(profile.measurements["path"])
    assert data.is_file() and data.parent == builtin_dir("hardware_profiles") / "data"
    assert "MIT" in profile.measurements["license"]
    assert "MAPE" in profile.describe()["validation_error"]


def test_write_profile_round_trip_and_refusal(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blocks.csv").write_text("block,latency_ms\n")
    profile = {
        "name": "board",
        "description": "a board",
        "latency": "predicted",
        "runtime": {"engine": "tflite"},
        "provenance": "test",
        "model": {"overhead_ms": 0.1, "weights": {"gemm.macs": 1e-9}},
        "measurements": {"path": str((tmp_path / "data" / "blocks.csv").resolve()), "format": "block_table"},
    }
    out = tmp_path / "profiles" / "board.yaml"
    (tmp_path / "profiles").mkdir()
    write_profile(profile, out)
    loaded = load_profile(out)
    assert loaded.latency_model.weights == {"gemm.macs": 1e-9}
    assert loaded.raw["measurements"]["path"] == "../data/blocks.csv"  # relative to the profile file
    bad = {**profile, "model": {"overhead_ms": -1, "weights": {}}}
    with pytest.raises(NasError, match=r"bad\.yaml:\d+: model\.overhead_ms"):
        write_profile(bad, tmp_path / "profiles" / "bad.yaml")
    assert not (tmp_path / "profiles" / "bad.yaml").exists()
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["board.yaml"]  # no temp file left


# ---------------------------------------------------------------------------------------- errors


def test_unknown_profile_name_lists_available():
    with pytest.raises(NasError, match=r"unknown hardware profile 'pdp-11'.*available: .*x86-cpu"):
        load_profile("pdp-11")


def test_file_not_found(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(NasError, match=r"not found: .*missing\.yaml"):
        load_profile(missing)
    with pytest.raises(NasError, match="not found"):
        load_profile(str(missing))


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(
        tmp_path,
        """\
        name: broken
        description: fine
        latency: measured
        runtime: {engine: onnxruntime
        provenance: x
    """,
    )
    message = error_of(path)
    assert f"{path}:5: invalid YAML: " in message, message


def test_yaml_bad_indentation_line(tmp_path):
    path = write(tmp_path, "name: a\ndescription: b\n  latency: measured\n")
    message = error_of(path)
    assert f"{path}:3: invalid YAML: " in message, message


@pytest.mark.parametrize("field", ["name", "description", "latency", "runtime"])
def test_missing_required_field(tmp_path, field):
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"{field}:")]
    message = error_of(write(tmp_path, "\n".join(lines) + "\n"))
    assert f": {field}: missing required field" in message


def test_missing_runtime_engine(tmp_path):
    message = error_of(write(tmp_path, GOOD.replace("engine: onnxruntime, ", "")))
    assert "runtime.engine: missing required field" in message


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("rounds: 3", "rounds: abc", "measurement.rounds: must be a positive integer, got 'abc'"),
        ("rounds: 3", "rounds: 0", "measurement.rounds: must be a positive integer, got 0"),
        ("rounds: 3", "rounds: yes", "measurement.rounds: must be a positive integer, got True"),
        ("round_ms: 20", "round_ms: fast", "measurement.round_ms: must be a positive number"),
        ("max_spread: 0.1", "max_spread: -1", "measurement.max_spread: must be a non-negative number"),
        (
            "warmup_runs: 4",
            "warmup_runs: 1.5",
            "measurement.warmup_runs: must be a positive integer, got 1.5",
        ),
        (
            "intra_op_threads: 2",
            "intra_op_threads: many",
            "runtime.intra_op_threads: must be a positive integer",
        ),
        (
            "graph_optimization: basic",
            "graph_optimization: turbo",
            "runtime.graph_optimization: must be one of disable, basic, extended, all, got 'turbo'",
        ),
        (
            "execution_provider: CPUExecutionProvider",
            "execution_provider: 7",
            "runtime.execution_provider: must be",
        ),
        ("engine: onnxruntime", "engine: tflite", "runtime.engine: a measured profile runs on this machine"),
        (
            "latency: measured",
            "latency: guessed",
            "latency: must be one of measured, predicted, got 'guessed'",
        ),
        ("name: my-cpu", "name: 42", "name: must be a non-empty string, got 42"),
        ("description: a test profile", "description: ''", "description: must be a non-empty string"),
        (
            "provenance: written by a test",
            "provenance: [a, b]",
            "provenance: must be a string, got ['a', 'b']",
        ),
    ],
)
def test_wrong_type_or_value(tmp_path, old, new, expected):
    assert old in GOOD
    message = error_of(write(tmp_path, GOOD.replace(old, new)))
    assert expected in message, message


def test_unknown_key_in_measurement(tmp_path):
    message = error_of(write(tmp_path, GOOD.replace("rounds: 3", "roundz: 3")))
    assert "measurement.roundz: unknown key" in message
    assert "rounds" in message  # the expected keys are listed


def test_runtime_key_under_measurement_gets_a_hint(tmp_path):
    message = error_of(write(tmp_path, GOOD.replace("rounds: 3", "intra_op_threads: 3")))
    assert "measurement.intra_op_threads: unknown key (it belongs under runtime)" in message


def test_unknown_key_in_runtime_of_measured_profile(tmp_path):
    message = error_of(write(tmp_path, GOOD.replace("intra_op_threads: 2", "intra_op_thread: 2")))
    assert "runtime.intra_op_thread: unknown key" in message


def test_unknown_top_level_field(tmp_path):
    message = error_of(write(tmp_path, GOOD + "measurment: {rounds: 3}\n"))
    assert "measurment: unknown field" in message


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "",
            ":1: expected a mapping of fields (name, description, latency, runtime, ...) at the top level, "
            "got an empty file",
        ),
        (
            "- a\n- b\n",
            ":1: expected a mapping of fields (name, description, latency, runtime, ...) at the top level, got list",
        ),
        (GOOD.replace("runtime: {", "runtime: [").replace("basic}", "basic]"), "runtime: must be a mapping"),
        (
            GOOD.replace("measurement: {", "measurement: [").replace("max_attempts: 2}", "max_attempts: 2]"),
            "measurement: must be a mapping",
        ),
    ],
)
def test_wrong_shapes(tmp_path, text, expected):
    message = error_of(write(tmp_path, text))
    assert expected in message, message
