"""The ONNX Runtime latency measurement protocol.

One measurement of a model:

1. an ``InferenceSession`` with ``intra_op_threads`` intra-op threads, one inter-op thread, sequential
   execution, the requested graph optimization level and exactly one execution provider, given
   ``provider_options`` (checked: `nas.latency._providers`); a session that fell back to another provider is
   refused;
2. a fixed-seed random float32 input of the model's input shape (a symbolic batch dimension becomes
   ``batch_size``; any other symbolic dimension is an error);
3. ``warmup_runs`` untimed-for-the-result runs, whose median duration calibrates how many runs make one
   round of about ``round_ms`` (never fewer than 3);
4. ``rounds`` rounds; every run is timed with ``time.perf_counter_ns`` and each round is summarised by
   its median;
5. the attempt's latency is the median of the round medians and its spread is
   ``(max - min) / median`` of the round medians. If the spread exceeds ``max_spread`` the rounds are
   measured again (same session, same calibration), up to ``max_attempts`` attempts in all, and the
   attempt with the smallest spread is kept. ``stable`` says whether that one is within
   ``max_spread``; an unstable measurement is reported as such, never hidden.

A ~1 ms model costs about 10 ms of warm-up plus 5 x 50 ms of rounds: ~0.3 s when the first attempt is
tight enough.

**Paired measurement** (`paired_measurements`, `paired_latencies`), for a machine whose speed changes in
phases (a shared virtual machine, a device that throttles): the models are measured between measurements
of one reference model (R M1 R M2 R ...), and each model's median is divided by the geometric mean of the
two reference medians next to it. A slow phase spanning the three (under a second) cancels; the ratio
times the reference's median over the pass gives milliseconds again.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from nas.errors import NasError, first_line
from nas.latency._providers import check_session_provider, provider_options_problem

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")

# The clock. A module-level name so tests can substitute a fake one.
_now_ns = time.perf_counter_ns

_MIN_RUNS_PER_ROUND = 3
_INPUT_SEED = 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_setting(name: str, value: Any) -> str | None:
    """Why `value` is not valid for the MeasurementSettings field `name` (None if it is).

    Shared with the hardware-profile loader so both report the same problem text.
    """
    if name == "execution_provider":
        if not isinstance(value, str) or not value:
            return f"must be an execution provider name such as 'CPUExecutionProvider', got {value!r}"
    elif name == "provider_options":
        found = provider_options_problem("the execution provider", value)  # the provider's own: __post_init__
        if found is not None:
            return f"{found[0]}: {found[1]}" if found[0] else found[1]
    elif name == "graph_optimization":
        if value not in GRAPH_OPTIMIZATION_LEVELS:
            return f"must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}, got {value!r}"
    elif name in ("intra_op_threads", "warmup_runs", "rounds", "max_attempts", "batch_size"):
        if not _is_int(value) or value < 1:
            return f"must be a positive integer, got {value!r}"
    elif name == "round_ms":
        if not _is_number(value) or value <= 0:
            return f"must be a positive number of milliseconds, got {value!r}"
    elif name == "max_spread":
        if not _is_number(value) or value < 0:
            return f"must be a non-negative number (a fraction, e.g. 0.05), got {value!r}"
    else:
        return "unknown measurement setting"
    return None


@dataclass(frozen=True)
class MeasurementSettings:
    """How to measure: the runtime configuration and the timing protocol (see the module docstring)."""

    execution_provider: str = "CPUExecutionProvider"
    # passed to ONNX Runtime for execution_provider. Not in the repr: a run's profile fingerprint (repr-based)
    # stays that of runs made before this field; a profile's options count there through its runtime section
    provider_options: dict = field(default_factory=dict, repr=False)
    intra_op_threads: int = 1
    graph_optimization: str = "all"  # "disable" | "basic" | "extended" | "all"
    warmup_runs: int = 10
    rounds: int = 5
    round_ms: float = 50.0  # each round runs the model repeatedly for about this long (>= 3 runs)
    max_spread: float = 0.05  # (max - min) / median of the round medians above which we re-measure
    max_attempts: int = 3
    batch_size: int = 1

    def __post_init__(self) -> None:
        for setting in fields(self):
            problem = check_setting(setting.name, getattr(self, setting.name))
            if problem is not None:
                raise NasError(f"measurement setting {setting.name}: {problem}")
        found = provider_options_problem(self.execution_provider, self.provider_options)
        if found is not None:
            raise NasError(f"measurement setting provider_options.{found[0]}: {found[1]}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LatencyMeasurement:
    """The result of `measure_latency`."""

    median_ms: float  # median of the round medians of the accepted attempt
    spread: float  # (max - min) / median of the round medians
    round_medians_ms: tuple[float, ...]
    attempts: int  # how many attempts were made (1 = the first one was tight enough)
    stable: bool  # spread <= max_spread

    def to_dict(self) -> dict:
        return {
            "median_ms": self.median_ms,
            "spread": self.spread,
            "round_medians_ms": list(self.round_medians_ms),
            "attempts": self.attempts,
            "stable": self.stable,
        }


def _graph_optimization_level(ort: Any, name: str) -> Any:
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    return levels[name]


def _check_provider(ort: Any, provider: str) -> None:
    available = ort.get_available_providers()
    if provider in available:
        return
    if provider in ort.get_all_providers():
        raise NasError(
            f"execution provider {provider!r} is not available in this ONNX Runtime build "
            f"(available: {', '.join(available)})"
        )
    raise NasError(f"unknown execution provider {provider!r} (available: {', '.join(available)})")


def _open_session(model: bytes | str | Path, settings: MeasurementSettings) -> Any:
    import onnxruntime as ort

    _check_provider(ort, settings.execution_provider)
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _graph_optimization_level(ort, settings.graph_optimization)
    options.log_severity_level = 3  # errors only: no per-session warnings in the search log
    providers = {"providers": [settings.execution_provider], "provider_options": [settings.provider_options]}
    if isinstance(model, (bytes, bytearray, memoryview)):
        session = ort.InferenceSession(bytes(model), sess_options=options, **providers)
    else:
        path = Path(model)
        if not path.is_file():
            raise NasError(f"ONNX model file not found: {path}")
        try:
            session = ort.InferenceSession(str(path), sess_options=options, **providers)
        except Exception as error:  # ORT's own exception types; a bad user file is a user mistake
            raise NasError(f"{path}: not a loadable ONNX model: {first_line(error)}") from error
    check_session_provider(session, settings.execution_provider)
    return session


_ORT_FLOAT_TYPES = {"tensor(float)": np.float32}


def _make_feeds(session: Any, batch_size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(_INPUT_SEED)
    feeds: dict[str, np.ndarray] = {}
    for node_arg in session.get_inputs():
        if node_arg.type not in _ORT_FLOAT_TYPES:
            raise NasError(
                f"model input {node_arg.name!r}: only float32 inputs can be measured, got {node_arg.type}"
            )
        shape = []
        for axis, dim in enumerate(node_arg.shape):
            if _is_int(dim) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(batch_size)  # symbolic (or unknown) batch dimension
            else:
                raise NasError(
                    f"model input {node_arg.name!r}: dimension {axis} is symbolic ({dim!r}); "
                    "only the batch dimension (0) may be symbolic"
                )
        feeds[node_arg.name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def _median_ns(samples: list[int]) -> float:
    return float(statistics.median(samples))


def _measure_rounds(run: Any, rounds: int, runs_per_round: int) -> list[float]:
    """The median run time (ns) of each of `rounds` rounds of `runs_per_round` timed runs."""
    medians = []
    samples = [0] * runs_per_round
    for _ in range(rounds):
        for i in range(runs_per_round):
            start = _now_ns()
            run()
            samples[i] = _now_ns() - start
        medians.append(_median_ns(samples))
    return medians


def _spread(values: list[float]) -> float:
    median = statistics.median(values)
    if median <= 0:
        return math.inf if max(values) > min(values) else 0.0
    return (max(values) - min(values)) / median


def measure_latency(
    model: bytes | str | Path, settings: MeasurementSettings = MeasurementSettings()
) -> LatencyMeasurement:
    """Measure the inference latency of an ONNX model (serialized bytes or a file path)."""
    if not isinstance(settings, MeasurementSettings):
        raise TypeError(f"settings must be a MeasurementSettings, got {type(settings).__name__}")
    session = _open_session(model, settings)
    feeds = _make_feeds(session, settings.batch_size)
    output_names = [output.name for output in session.get_outputs()]

    def run() -> None:
        session.run(output_names, feeds)

    warmup = []
    for _ in range(settings.warmup_runs):
        start = _now_ns()
        run()
        warmup.append(_now_ns() - start)
    # The later half of the warm-up is past first-run effects (allocations, caches).
    per_run_ns = max(_median_ns(warmup[len(warmup) // 2 :]), 1.0)
    runs_per_round = max(_MIN_RUNS_PER_ROUND, math.ceil(settings.round_ms * 1e6 / per_run_ns))

    best: tuple[float, list[float]] | None = None
    attempts = 0
    while attempts < settings.max_attempts:
        attempts += 1
        medians = _measure_rounds(run, settings.rounds, runs_per_round)
        spread = _spread(medians)
        if best is None or spread < best[0]:
            best = (spread, medians)
        if spread <= settings.max_spread:
            break
    assert best is not None
    spread, medians = best
    return LatencyMeasurement(
        median_ms=statistics.median(medians) / 1e6,
        spread=spread,
        round_medians_ms=tuple(m / 1e6 for m in medians),
        attempts=attempts,
        stable=spread <= settings.max_spread,
    )


def paired_measurements(
    models: Iterable[Any],
    reference: bytes | str | Path,
    settings: MeasurementSettings = MeasurementSettings(),
    measure: Callable[..., LatencyMeasurement] | None = None,
) -> Iterator[tuple[Any, LatencyMeasurement, float]]:
    """(model, its measurement, the geometric mean of the reference's medians right before and after it)
    for each model, measured R M1 R M2 R ...: one reference measurement more than models, each shared by
    the two models beside it. `measure`: default `measure_latency`."""
    measure, models = measure or measure_latency, list(models)
    if not models:  # nothing to pair: no reference measurement either
        return
    before = measure(reference, settings).median_ms
    for model in models:
        measurement = measure(model, settings)
        after = measure(reference, settings).median_ms
        yield model, measurement, math.sqrt(before * after)
        before = after


def paired_latencies(pairs: Sequence[tuple[float, float]], scale: float | None = None) -> np.ndarray:
    """Each (median, adjacent reference ms) as median / reference x `scale` (default: the median of the
    reference values, the reference's latency over the pass): milliseconds from which the machine's slow
    phases cancel. Passes compared with each other need one common `scale`."""
    if not pairs:
        return np.zeros(0)
    medians, references = np.asarray(pairs, dtype=np.float64).T
    scale = float(np.median(references)) if scale is None else scale
    return medians / references * scale
