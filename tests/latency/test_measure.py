"""nas.latency.measure_latency: the ONNX Runtime measurement protocol."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from nas.errors import NasError
from nas.latency import LatencyMeasurement, MeasurementSettings, _measure, measure_latency
from nas.onnx_io import export_onnx

# Short rounds keep the suite fast; the protocol is the same as with the profile's 50 ms rounds.
QUICK = MeasurementSettings(warmup_runs=3, rounds=3, round_ms=5.0, max_attempts=2)


def tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )


def big_net() -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for width in (64, 64, 96, 96):
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


@pytest.fixture(scope="module")
def tiny() -> bytes:
    torch.manual_seed(0)
    return export_onnx(tiny_net(), 16, fast=True, dynamic_batch=True)


@pytest.fixture(scope="module")
def big() -> bytes:
    torch.manual_seed(0)
    return export_onnx(big_net(), 64, fast=True)


def relu_model(shape: list) -> bytes:
    """A one-node ONNX model with the given input shape (ints, or strings for symbolic dims)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------- real timings


def test_measurement_is_positive_and_consistent(tiny):
    result = measure_latency(tiny, QUICK)
    assert isinstance(result, LatencyMeasurement)
    assert result.median_ms > 0
    assert len(result.round_medians_ms) == QUICK.rounds
    assert all(m > 0 for m in result.round_medians_ms)
    assert result.median_ms == pytest.approx(float(np.median(result.round_medians_ms)))
    lo, hi = min(result.round_medians_ms), max(result.round_medians_ms)
    assert result.spread == pytest.approx((hi - lo) / result.median_ms)
    assert 1 <= result.attempts <= QUICK.max_attempts
    assert result.stable == (result.spread <= QUICK.max_spread)
    d = result.to_dict()
    assert d["median_ms"] == result.median_ms and d["round_medians_ms"] == list(result.round_medians_ms)
    assert set(d) == {"median_ms", "spread", "round_medians_ms", "attempts", "stable"}


def test_bigger_model_is_slower(tiny, big):
    small = measure_latency(tiny, QUICK)
    large = measure_latency(big, QUICK)
    assert large.median_ms > 5 * small.median_ms, (small, large)


def test_measures_from_a_file_path(tiny, tmp_path):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny)
    assert measure_latency(path, QUICK).median_ms > 0
    assert measure_latency(str(path), QUICK).median_ms > 0


def test_missing_or_broken_model_file(tmp_path):
    with pytest.raises(NasError, match="not found.*nope.onnx"):
        measure_latency(tmp_path / "nope.onnx", QUICK)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(NasError, match="bad.onnx"):
        measure_latency(bad, QUICK)


def test_graph_optimization_levels_all_run(tiny):
    for level in ("disable", "basic", "extended", "all"):
        settings = MeasurementSettings(graph_optimization=level, warmup_runs=1, rounds=1, round_ms=1.0)
        assert measure_latency(tiny, settings).median_ms > 0


# ---------------------------------------------------------------------------------------- inputs


def test_symbolic_batch_becomes_batch_size(monkeypatch):
    import onnxruntime as ort

    session = ort.InferenceSession(relu_model(["N", 3, 8, 8]), providers=["CPUExecutionProvider"])
    feeds = _measure._make_feeds(session, batch_size=4)
    assert feeds["x"].shape == (4, 3, 8, 8) and feeds["x"].dtype == np.float32
    assert measure_latency(
        relu_model(["N", 3, 8, 8]), MeasurementSettings(batch_size=4, rounds=1, round_ms=1)
    ).stable


def test_symbolic_non_batch_dimension_is_an_error():
    with pytest.raises(NasError, match=r"input 'x'.*dimension 2.*'height'"):
        measure_latency(relu_model([1, 3, "height", 8]), QUICK)


# ---------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("graph_optimization", "max", "graph_optimization: must be one of disable, basic, extended, all"),
        ("intra_op_threads", 0, "intra_op_threads: must be a positive integer, got 0"),
        ("warmup_runs", 0, "warmup_runs: must be a positive integer"),
        ("rounds", "abc", "rounds: must be a positive integer, got 'abc'"),
        ("rounds", 2.5, "rounds: must be a positive integer, got 2.5"),
        ("rounds", True, "rounds: must be a positive integer, got True"),
        ("round_ms", 0, "round_ms: must be a positive number"),
        ("round_ms", float("nan"), "round_ms: must be a positive number"),
        ("max_spread", -0.1, "max_spread: must be a non-negative number"),
        ("max_attempts", 0, "max_attempts: must be a positive integer"),
        ("batch_size", -1, "batch_size: must be a positive integer"),
        ("execution_provider", "", "execution_provider: must be an execution provider name"),
    ],
)
def test_invalid_settings_are_rejected(field, value, message):
    with pytest.raises(NasError) as info:
        MeasurementSettings(**{field: value})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_execution_provider(tiny):
    with pytest.raises(
        NasError, match=r"unknown execution provider 'WarpDriveExecutionProvider'.*CPUExecutionProvider"
    ):
        measure_latency(tiny, MeasurementSettings(execution_provider="WarpDriveExecutionProvider"))


def test_known_but_unavailable_execution_provider(tiny):
    import onnxruntime as ort

    missing = [p for p in ort.get_all_providers() if p not in ort.get_available_providers()]
    if not missing:
        pytest.skip("every known execution provider is available here")
    with pytest.raises(NasError, match="not available"):
        measure_latency(tiny, MeasurementSettings(execution_provider=missing[0]))


def test_defaults_match_the_protocol():
    s = MeasurementSettings()
    assert (s.execution_provider, s.intra_op_threads, s.graph_optimization) == (
        "CPUExecutionProvider",
        1,
        "all",
    )
    assert (s.warmup_runs, s.rounds, s.round_ms, s.max_spread, s.max_attempts, s.batch_size) == (
        10,
        5,
        50.0,
        0.05,
        3,
        1,
    )


# ---------------------------------------------------------------------------------------- protocol logic


class FakeClock:
    """A perf_counter_ns stand-in: the k-th timed run (warm-up included) lasts duration(k) ns.

    measure_latency reads the clock exactly twice per run (start, end), so odd reads end a run.
    """

    def __init__(self, duration):
        self.duration = duration
        self.now = 0
        self.reads = 0
        self.runs = 0

    def __call__(self) -> int:
        if self.reads % 2 == 1:
            self.now += self.duration(self.runs)
            self.runs += 1
        self.reads += 1
        return self.now


MS = 1_000_000
WARMUP = 4
ROUNDS = 5
# Warm-up runs last 1 ms, so round_ms=5 calibrates to 5 runs per round.
FAKE = MeasurementSettings(warmup_runs=WARMUP, rounds=ROUNDS, round_ms=5.0, max_spread=0.05, max_attempts=3)
RUNS_PER_ROUND = 5


def round_pattern(per_attempt: list[list[float]]):
    """Run durations such that attempt a's round r has every run lasting per_attempt[a][r] ms."""

    def duration(k: int) -> int:
        if k < WARMUP:
            return MS
        timed = k - WARMUP
        attempt, rest = divmod(timed, ROUNDS * RUNS_PER_ROUND)
        return int(per_attempt[attempt][rest // RUNS_PER_ROUND] * MS)

    return duration


def test_wide_spread_is_remeasured_and_flagged_unstable(tiny, monkeypatch):
    clock = FakeClock(round_pattern([[1, 2, 1, 2, 1], [1, 1.5, 1, 1.5, 1], [1, 1.2, 1, 1.2, 1]]))
    monkeypatch.setattr(_measure, "_now_ns", clock)
    result = measure_latency(tiny, FAKE)
    assert result.attempts == FAKE.max_attempts
    assert result.stable is False
    assert result.spread == pytest.approx(0.2)  # the tightest attempt is kept, still too wide
    assert result.round_medians_ms == pytest.approx((1, 1.2, 1, 1.2, 1))
    assert result.median_ms == pytest.approx(1.0)
    assert clock.runs == WARMUP + 3 * ROUNDS * RUNS_PER_ROUND


def test_tightest_attempt_is_kept_even_if_not_the_last(tiny, monkeypatch):
    clock = FakeClock(round_pattern([[1, 2, 1, 2, 1], [1, 1.1, 1, 1.1, 1], [1, 1.5, 1, 1.5, 1]]))
    monkeypatch.setattr(_measure, "_now_ns", clock)
    result = measure_latency(tiny, FAKE)
    assert result.attempts == 3 and result.stable is False
    assert result.spread == pytest.approx(0.1)
    assert result.round_medians_ms == pytest.approx((1, 1.1, 1, 1.1, 1))


def test_second_attempt_tight_enough_stops_early(tiny, monkeypatch):
    clock = FakeClock(round_pattern([[1, 2, 1, 2, 1], [2, 2, 2.02, 2, 2], [9, 9, 9, 9, 9]]))
    monkeypatch.setattr(_measure, "_now_ns", clock)
    result = measure_latency(tiny, FAKE)
    assert result.attempts == 2
    assert result.stable is True
    assert result.median_ms == pytest.approx(2.0)
    assert result.spread == pytest.approx(0.01)
    assert clock.runs == WARMUP + 2 * ROUNDS * RUNS_PER_ROUND  # the third attempt never ran


def test_tight_first_attempt_is_one_attempt(tiny, monkeypatch):
    monkeypatch.setattr(_measure, "_now_ns", FakeClock(lambda k: 3 * MS))
    result = measure_latency(tiny, FAKE)
    assert (result.attempts, result.stable, result.spread) == (1, True, 0.0)
    assert result.median_ms == pytest.approx(3.0)


def test_round_median_ignores_outlier_runs(tiny, monkeypatch):
    # One 50 ms hiccup per round does not move a round's median.
    monkeypatch.setattr(
        _measure, "_now_ns", FakeClock(lambda k: 50 * MS if k >= WARMUP and k % 5 == 0 else MS)
    )
    result = measure_latency(tiny, FAKE)
    assert result.stable and result.median_ms == pytest.approx(1.0)


def test_calibration_gives_at_least_three_runs_per_round(tiny, monkeypatch):
    # Runs of 100 ms with 5 ms rounds: still 3 runs per round.
    clock = FakeClock(lambda k: 100 * MS)
    monkeypatch.setattr(_measure, "_now_ns", clock)
    result = measure_latency(tiny, FAKE)
    assert result.attempts == 1
    assert clock.runs == WARMUP + ROUNDS * 3
    assert math.isclose(result.median_ms, 100.0)
