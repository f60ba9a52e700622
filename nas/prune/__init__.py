"""Hardware-aware structured pruning: cut whole channels of an exported network until it meets a latency
target on a hardware profile (cheapest accuracy per millisecond first), fine-tune it and re-export it.
Channel removal across coupled layers is torch-pruning's dependency graph; the pruned architecture is an
ordinary `Architecture` whose blocks record the channel counts left (`BlockSpec.channels`, `expanded`).
The fine-tuning may distil from the network before the cut (`distill=True`, `nas prune --distill`)."""

from nas.prune._command import (
    CUT_FOLDER,
    DEFAULT_KD_ALPHA,
    DEFAULT_KD_TEMPERATURE,
    PRUNE_FILE,
    WEIGHTS_FILE,
    default_out,
    prune_export,
)

__all__ = [
    "CUT_FOLDER",
    "DEFAULT_KD_ALPHA",
    "DEFAULT_KD_TEMPERATURE",
    "PRUNE_FILE",
    "WEIGHTS_FILE",
    "default_out",
    "prune_export",
]
