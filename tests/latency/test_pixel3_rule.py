"""benchmarks/_pixel3_rule.py: which ops of a NAS-Bench-201 network ran on pixel3, on the cells whose
measurements docs/latency-corpus.md quotes (no ../shared data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks import _pixel3_rule as rule  # noqa: E402


def _convs(record) -> int:
    return sum(1 for _, op, _ in record["ops"] if op == "nor_conv_3x3")


def test_a_zero_read_only_by_a_merged_none_runs_its_convolution():
    # 7.99 ms measured: node 1's convolution ran, though only `none` edges read it ('fold': nothing runs)
    record = rule.running_ops("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert record is not None and record["stem"] and all(record["reductions"])
    assert _convs(record) == 15 * 3  # each cell: the convolution and its two merged zero-weight copies


def test_one_edge_elsewhere_folds_everything():
    # 0.005 ms measured: node 2 sums a skip and the merged zero, so it is not lone; node 3 is a zero
    assert rule.running_ops("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|") is None


def test_a_convolution_of_a_zero_runs_on_a_constant_and_its_inputs_do_not():
    # 1.88 ms: node 3 = conv(node 2 = 0): the last cell's convolution runs, on a constant, and nothing before
    record = rule.running_ops("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert record is not None and _convs(record) == 1 and not record["stem"]
    # 8.24 ms: the skip from the cell input keeps every cell's input running, and with it every convolution
    record = rule.running_ops("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert _convs(record) == 15 and record["stem"]


def test_fold_and_the_rule_agree_where_nothing_is_zero():
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert sorted(rule.running_ops(arch)["ops"]) == sorted(rule.fold_running_ops(arch)["ops"])


def test_the_features_compose_the_parts_that_run():
    from benchmarks import nb201
    from nas.latency import COLUMNS

    parts = {key: f.vector(COLUMNS) for key, f in nb201.part_features().items()}
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    expected = parts["stem"] + parts[("reduction", 1)] + parts[("reduction", 2)] + parts["head"]
    for s in range(3):  # per cell: the convolution with its ReLU and two merged copies sharing it, no Add
        expected = expected + 5 * (3 * parts[("nor_conv_3x3", s)] + parts[("relu", s)])
    empty = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"
    rows = rule.rule_matrix([arch, empty], COLUMNS)
    assert np.allclose(rows[0], expected) and not rows[1].any()
