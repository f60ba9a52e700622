"""The vocabulary of a trial record: its statuses, its `user_attrs` keys and the `trials.csv` columns.

`nas.records.TrialRecord` reads and writes trials in these terms (and re-exports every name here); they
live apart so the record's reading and writing stay one short module. No torch, no Optuna.
"""

from __future__ import annotations

from enum import Enum


class TrialStatus(str, Enum):
    """What became of a trial (`user_attrs["status"]`); the value is the string written to the study and files."""

    COMPLETE = "complete"  # trained to the end; its values are (objective, latency_ms)
    INFEASIBLE = "infeasible"  # over the latency budget, --max-params or --max-macs
    SCREENED_OUT = "screened_out"  # pre-screening kept a better-scoring candidate of its latency band
    STOPPED_EARLY = "stopped_early"  # multi-fidelity: dominated at an early rung, never trained to the end
    FAILED = "failed"  # an error while preparing, measuring or training it
    INTERRUPTED = "interrupted"  # the driver stopped before it finished (re-queued when it was sampled)
    RUNNING = "running"  # not finished yet

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, value: str | TrialStatus) -> TrialStatus:
        """The status named `value`; anything else is a ValueError that lists the known statuses."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown trial status {value!r} (known: {known})") from None

    @property
    def counts_toward_budget(self) -> bool:
        """Evaluated to an answer, so it uses one of --trials: not interrupted, not screened out, not running."""
        return self not in (TrialStatus.INTERRUPTED, TrialStatus.SCREENED_OUT, TrialStatus.RUNNING)


class Attr:
    """The `user_attrs` keys of a trial. Each is also the name of the `TrialRecord` field holding it."""

    STATUS = "status"  # a TrialStatus value
    ARCH_HASH = "arch_hash"
    SUMMARY = "summary"  # the architecture in one short line
    ARCHITECTURE = "architecture"  # Architecture.to_dict()
    INFEASIBLE_REASON = "infeasible_reason"  # why infeasible, screened out or stopped early
    FAILURE_REASON = "failure_reason"  # why failed or interrupted
    DUPLICATE_OF = "duplicate_of"  # number of the trial whose result a re-sampled architecture repeats
    REQUEUED_FROM = "requeued_from"  # number of the interrupted trial this one repeats
    PARAMS = "params"  # parameter count
    MACS = "macs"
    PEAK_MEMORY_KB = "peak_memory_kb"  # peak activation memory (KiB, ONNX tensor lifetimes, batch 1)
    WEIGHTS_KB = "weights_kb"  # weight memory (KiB of the graph's constants)
    LATENCY_MS = "latency_ms"
    LATENCY_SOURCE = "latency_source"  # "measured" (here), "device" (a device node), "predicted", "fallback"
    LATENCY_SPREAD = "latency_spread"  # measured: relative spread of the repeats
    LATENCY_STABLE = "latency_stable"
    LATENCY_ATTEMPTS = "latency_attempts"
    LATENCY_NODE_ID = "latency_node_id"  # device: the Ray node that measured it
    LATENCY_HOST = "latency_host"  # device: that node's host name
    LATENCY_LOW_MS = "latency_low_ms"  # predicted: the prediction interval
    LATENCY_HIGH_MS = "latency_high_ms"
    LATENCY_EXTRAPOLATED = "latency_extrapolated"  # predicted: share of the latency outside the table's range
    LATENCY_STRADDLES_BUDGET = "latency_straddles_budget"  # predicted: the interval holds the budget
    LATENCY_PREDICTED_MS = "latency_predicted_ms"  # hybrid: the online model's, before measuring
    LATENCY_CALIBRATED_ON = "latency_calibrated_on"  # hybrid: device measurements that model was refitted on
    LATENCY_WHOLE_MS = "latency_whole_ms"  # early exits: every image to the final exit (latency_ms: expected)
    ENERGY_MJ = "energy_mj"  # predicted energy per inference (a profile with an energy model)
    ENERGY_LOW_MJ = "energy_low_mj"  # its prediction interval
    ENERGY_HIGH_MJ = "energy_high_mj"
    ENERGY_EXTRAPOLATED = "energy_extrapolated"  # share of it priced by the energy model's prior
    PRESCREEN_SCORE = "prescreen_score"
    NASWOT = "naswot"
    RUNG_ACCURACY = "rung_accuracy"  # multi-fidelity: {"epochs": accuracy} at each rung reached
    VAL_LOSS = "val_loss"
    EPOCHS = "epochs"
    CLEAN_ACCURACY = "clean_accuracy"
    CORRUPTED_ACCURACY = "corrupted_accuracy"  # robust search: mean accuracy on the corrupted slices
    WORST_SLICE = "worst_slice"
    WORST_SLICE_ACCURACY = "worst_slice_accuracy"
    CHECKPOINT = "checkpoint"  # the trained weights, relative to the run directory
    PREPARE_SECONDS = "prepare_seconds"
    LATENCY_SECONDS = "latency_seconds"
    RUNG_SECONDS = "rung_seconds"
    TRAIN_SECONDS = "train_seconds"
    TRAIN_DEVICE = "train_device"  # where the proxy training ran: "cpu", or "cuda (GPU name, bf16)"
    EVAL_SECONDS = "eval_seconds"
    ROBUST_SECONDS = "robust_seconds"
    WALL_SECONDS = "wall_seconds"


# The trials.csv columns, in file order; then one "param:NAME" column per sampled parameter.
CSV_COLUMNS = (
    "number",
    "state",
    "status",
    "arch_hash",
    "accuracy",
    "latency_ms",
    "latency_source",
    "latency_spread",
    "latency_stable",
    "params",
    "macs",
    "peak_memory_kb",
    "weights_kb",
    "train_seconds",
    "eval_seconds",
    "prepare_seconds",
    "latency_seconds",
    "wall_seconds",
    "failure_reason",
    "duplicate_of",
    "summary",
    "clean_accuracy",
    "corrupted_accuracy",
    "worst_slice",
    "worst_slice_accuracy",
    "robust_seconds",
    "prescreen_score",
    "naswot",
    "rung_accuracy",
    "rung_seconds",
    "latency_low_ms",
    "latency_high_ms",
    "latency_extrapolated",
    "latency_straddles_budget",
    "latency_node_id",
    "latency_host",
    "train_device",
    "latency_predicted_ms",
    "latency_calibrated_on",
    "energy_mj",
    "energy_low_mj",
    "energy_high_mj",
    "energy_extrapolated",
    "latency_whole_ms",
)
PARAM_PREFIX = "param:"
# A fact about another device of the fleet (--budget PROFILE=MS): the attribute, "@", the profile's name.
FLEET_SEPARATOR = "@"
FLEET_ATTRS = ("latency_ms", "latency_source", "latency_low_ms", "latency_high_ms", "latency_whole_ms")


def fleet_key(attr: str, profile: str) -> str:
    """The user_attrs key and trials.csv column of `attr` on the fleet device `profile`: latency_ms@jetson-tx2."""
    return f"{attr}{FLEET_SEPARATOR}{profile}"


def is_fleet_key(key: str) -> bool:
    return key.partition(FLEET_SEPARATOR)[0] in FLEET_ATTRS and FLEET_SEPARATOR in key


def fleet_order(key: str) -> tuple[str, int]:
    """Fleet columns by device, then latency, low, high, whole network."""
    attr, _, profile = key.partition(FLEET_SEPARATOR)
    return profile, FLEET_ATTRS.index(attr)
