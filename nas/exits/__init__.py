"""Early exits: joint training of every exit, confidence thresholds calibrated on the validation split
under an accuracy-drop bound, the network cut into one ONNX graph per segment, and the expected latency
(the share of images leaving at each exit times the latency up to it). The cascade itself runs in
`nas.runtime`, which needs no torch."""

from nas.exits._calibrate import (
    DEFAULT_MAX_DROP,
    Calibration,
    calibrate_thresholds,
    check_max_drop,
    exit_shares,
)
from nas.exits._segments import (
    SEGMENT_NAME,
    ExpectedLatency,
    cascade_latency,
    check_segments,
    expected_latency,
    export_segments,
    segment_latencies,
    split_segments,
)
from nas.exits._training import calibrate_network, exit_probabilities, exit_weights, joint_exit_loss

__all__ = [
    "DEFAULT_MAX_DROP",
    "SEGMENT_NAME",
    "Calibration",
    "ExpectedLatency",
    "calibrate_network",
    "calibrate_thresholds",
    "cascade_latency",
    "check_segments",
    "check_max_drop",
    "exit_probabilities",
    "exit_shares",
    "exit_weights",
    "expected_latency",
    "export_segments",
    "joint_exit_loss",
    "segment_latencies",
    "split_segments",
]
