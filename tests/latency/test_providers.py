"""Execution providers and their options in a profile's protocol: checked on load, passed to ONNX Runtime,
a provider that is absent or fell back to the CPU refused at measurement time, recorded in the run."""

from __future__ import annotations

import textwrap

import onnxruntime
import pytest
from onnx import TensorProto, helper

from nas.errors import NasError
from nas.latency import MeasurementSettings, _measure, load_profile, measure_latency
from nas.latency._providers import check_session_provider

FAST = dict(warmup_runs=1, rounds=1, round_ms=1.0, max_attempts=1)


@pytest.fixture(scope="module")
def relu_model() -> bytes:
    """The smallest float32 model: one Relu on a 1x4 input (no torch export needed)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def runtime_of(provider: str, options: str) -> str:
    return f"{{engine: onnxruntime, execution_provider: {provider}, provider_options: {options}}}"


def profile_file(tmp_path, runtime: str):
    path = tmp_path / "profile.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: p
        description: providers test
        latency: measured
        runtime: {runtime}
        """)
    )
    return path


def test_a_profiles_provider_options_reach_the_measurement_and_the_run_record(tmp_path, relu_model):
    trt_options = (
        "{trt_fp16_enable: true, trt_engine_cache_enable: true, trt_engine_cache_path: /var/cache/trt}"
    )
    trt = runtime_of("TensorrtExecutionProvider", trt_options)
    profile = load_profile(profile_file(tmp_path, trt))  # loads anywhere; measuring needs the provider
    assert profile.measurement.provider_options["trt_engine_cache_path"] == "/var/cache/trt"
    assert profile.describe()["measurement"]["provider_options"]["trt_fp16_enable"] is True  # config.json
    cpu = load_profile(
        profile_file(tmp_path, "{engine: onnxruntime, execution_provider: CPUExecutionProvider}")
    )
    assert cpu.measurement.provider_options == {}
    assert (
        measure_latency(relu_model, MeasurementSettings(**{**cpu.measurement.to_dict(), **FAST})).median_ms
        > 0
    )


@pytest.mark.parametrize(
    "runtime, field, problem",
    [
        (
            runtime_of("TensorrtExecutionProvider", "{trt_fp16_enable: 'yes'}"),
            "runtime.provider_options.trt_fp16_enable",
            "must be a boolean (true or false), got 'yes'",
        ),
        (
            runtime_of("TensorrtExecutionProvider", "{trt_fp16_enabled: true}"),
            "runtime.provider_options.trt_fp16_enabled",
            "not an option of TensorrtExecutionProvider; expected one of: device_id,",
        ),
        (
            runtime_of("OpenVINOExecutionProvider", "{device_type: 3}"),
            "runtime.provider_options.device_type",
            "must be a non-empty string, got 3",
        ),
        (
            runtime_of("XnnpackExecutionProvider", "{intra_op_num_threads: -1}"),
            "runtime.provider_options.intra_op_num_threads",
            "must be a non-negative integer, got -1",
        ),
        (
            runtime_of("CUDAExecutionProvider", "{device_id: '1'}"),
            "runtime.provider_options.device_id",
            "must be a non-negative integer, got '1'",
        ),
        (
            runtime_of("CPUExecutionProvider", "{threads: 2}"),
            "runtime.provider_options.threads",
            "not an option of CPUExecutionProvider; expected none (it takes no options)",
        ),
        (
            runtime_of("CPUExecutionProvider", "[1, 2]"),
            "runtime.provider_options",
            "must be a mapping",
        ),
        (
            runtime_of("QNNExecutionProvider", "{backend_path: {a: 1}}"),
            "runtime.provider_options.backend_path",
            "must be a string, number or boolean",
        ),
    ],
)
def test_bad_provider_options_are_one_line_naming_file_and_field(tmp_path, runtime, field, problem):
    path = profile_file(tmp_path, runtime)
    with pytest.raises(NasError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert f"{field}: {problem}" in message


def test_options_of_a_provider_not_listed_pass_unchecked(tmp_path):
    runtime = runtime_of("QNNExecutionProvider", "{backend_path: libQnnHtp.so}")
    assert load_profile(profile_file(tmp_path, runtime)).measurement.provider_options == {
        "backend_path": "libQnnHtp.so"
    }


def test_a_provider_this_onnxruntime_lacks_is_a_clear_line_at_measurement(relu_model):
    assert (
        "TensorrtExecutionProvider" not in onnxruntime.get_available_providers()
    )  # this machine's CPU build
    settings = MeasurementSettings(
        execution_provider="TensorrtExecutionProvider", provider_options={"trt_fp16_enable": True}, **FAST
    )
    with pytest.raises(
        NasError, match="'TensorrtExecutionProvider' is not available in this ONNX Runtime build"
    ):
        measure_latency(relu_model, settings)


def test_a_session_that_fell_back_to_the_cpu_is_refused(relu_model, monkeypatch):
    """ONNX Runtime, asked for a provider it cannot start, warns and runs on its CPU provider: refused."""
    monkeypatch.setattr(_measure, "_check_provider", lambda ort, provider: None)  # as if it were installed
    settings = MeasurementSettings(
        execution_provider="CUDAExecutionProvider", provider_options={"device_id": 0}, **FAST
    )
    with (
        pytest.warns(UserWarning),
        pytest.raises(NasError, match="'CUDAExecutionProvider' could not start here"),
    ):
        measure_latency(relu_model, settings)
    session = onnxruntime.InferenceSession(relu_model, providers=["CPUExecutionProvider"])
    check_session_provider(session, "CPUExecutionProvider")  # the provider asked for: accepted


def test_settings_made_in_code_are_checked_too():
    with pytest.raises(NasError, match="provider_options.trt_fp16_enable: must be a boolean"):
        MeasurementSettings(
            execution_provider="TensorrtExecutionProvider", provider_options={"trt_fp16_enable": 1}
        )


def test_the_machine_record_lists_the_execution_providers_here():
    from nas.search._machine_record import machine_record

    assert "CPUExecutionProvider" in machine_record()["onnxruntime_providers"]
