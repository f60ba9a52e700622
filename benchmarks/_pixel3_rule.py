"""Which ops of a NAS-Bench-201 network ran on pixel3: a rule that explains its measurements.

pixel3's toolchain (TensorFlow Lite, HW-NAS-Bench) folded some zeros and not others (docs/latency-corpus.md,
section 1): the 'fold' graphs of benchmarks/nb201.py get 64 of the 192 one-convolution cells wrong and call
341 networks empty, of which 213 ran. This rule, found by reading the measurements, gets all 192 right and
calls exactly the 128 networks that measure under 0.015 ms empty. It is fitted to these measurements
(no toolchain was run here); the mechanism it suggests is a multiply by a constant merged into the
convolution before it, and convolutions of a constant not folded.

A value is a compile-time zero (`ZERO`, nothing runs for it) or computed at run time; a computed value is
*lone* when it is exactly one convolution's output (directly or through skips). Per edge, in the order
e0 = 0->1, e1 = 0->2, e2 = 1->2, e3 = 0->3, e4 = 1->3, e5 = 2->3:
- `none`: a zero; except on e2 and e5 (the last term of node 2's and node 3's sums) when its source is lone:
  then `x * 0` merges into that convolution, which runs a second time (zero weights) and is lone too;
- `skip_connect`: its source's value, lone if the source is;
- a convolution or pooling of a zero: runs, on a constant (its source does not run for it);
- otherwise the op runs on its source.
A node is the sum of its non-zero terms, a zero if it has none. A cell's input is the previous cell's output,
lone unless that output's single term is a merged `none` (node 3's own term: a skip of a merged node 2
stays lone); the stem's and a
reduction's outputs are not lone, and a reduction of a zero is a constant. What runs is traced back from
the last cell's output: nothing, if that output is a zero.

    .venv/bin/python -m benchmarks._pixel3_rule

writes results/benchmark-runs/latency_corpus/pixel3_rule.json: the 192 cells, the empty networks, and a
least-squares fit of pixel3's latency on counts of the running ops (rule against 'fold'), on all but 5,625
networks, scored on those. `rule_matrix` gives the rule's graph as the package's features: the `merge`
graph of `benchmarks/latency_corpus.py --representations`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmarks import nb201
from benchmarks._corpus_fits import CACHE, DEFAULT_DATA, mape, read_corpus, spearman
from benchmarks._harness import run_main, write_result

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
MERGING_EDGES = (2, 5)  # the last term of node 2's and of node 3's sum
CELLS = 3 * nb201.CELLS_PER_STAGE
REDUCTIONS_BEFORE = (nb201.CELLS_PER_STAGE, 2 * nb201.CELLS_PER_STAGE)  # the first cells of stages 2 and 3
OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
EMPTY_MS, HOLDOUT = 0.015, 5625
# The 192 one-convolution cells' classes: nothing ran (under 0.1 ms), the convolutions did not run (under
# 4 ms: a 3x3 convolution per cell costs ~6 ms on pixel3, the rest ~1.5 ms), or they ran; a rule says they
# ran when at least RAN_CONVOLUTIONS of the 15 cells' (or their merged copies') convolutions run.
CELL_EMPTY_MS, CONV_RAN_MS, RAN_CONVOLUTIONS = 0.1, 4.0, 10
ZERO = None


@dataclass(frozen=True)
class Value:
    """A value computed at run time; `conv` names the convolution it is the output of when it is lone."""

    conv: str | None = None


@dataclass(frozen=True)
class Term:
    op: str  # the op that runs for this term ("skip_connect": none)
    edge: int
    value: Value
    reads_source: bool  # False: the op runs on a constant, its source need not run
    merged: bool = False  # a `none` merged into its source's convolution


def cell_terms(ops: list[str], x0: Value) -> dict[int, list[Term]]:
    """Each node's non-zero terms, given the cell's input value `x0`."""
    nodes, terms = [x0, ZERO, ZERO, ZERO], {1: [], 2: [], 3: []}
    for k, ((i, j), op) in enumerate(zip(EDGES, ops)):
        source, term = nodes[i], None
        if op == "none":
            if k in MERGING_EDGES and source is not ZERO and source.conv:
                term = Term(source.conv, k, Value(source.conv), True, merged=True)
        elif op == "skip_connect":
            if source is not ZERO:
                term = Term(op, k, source, True)
        else:
            lone = op if op.startswith("nor_conv") else None
            term = Term(op, k, Value(lone), source is not ZERO)
        if term is not None:
            terms[j].append(term)
        if k in (0, 2, 5):  # node j's last edge: its value is known
            nodes[j] = node_value(terms[j])
    return terms


def node_value(terms: list[Term]):
    """The sum of a node's terms: a zero without any, lone when it is a single lone term."""
    if not terms:
        return ZERO
    return terms[0].value if len(terms) == 1 else Value()


def running_ops(arch_str: str) -> dict | None:
    """None when nothing runs; else {"ops": [(cell, op, edge)] that run, "adds": [cell] one per Add that runs,
    "stem": bool, "reductions": [bool, bool]}."""
    ops = nb201.edge_ops(arch_str)
    x, cells = Value(), []
    for c in range(CELLS):
        if c in REDUCTIONS_BEFORE:
            x = Value()  # a reduction's output: computed (a constant when its input is a zero), not lone
        terms = cell_terms(ops, x)
        cells.append(terms)
        x = node_value(terms[3])
        if x is not ZERO and any(t.merged for t in terms[3]):
            x = Value()  # lone through a merged convolution: not lone for the next cell
    if x is ZERO:
        return None
    ran, adds, reductions, stem, input_live = [], [], [False, False], False, True
    for c in range(CELLS - 1, -1, -1):
        live, input_live = {3}, False
        for j in (3, 2, 1):
            if j not in live:
                continue
            adds += [c] * (len(cells[c][j]) - 1)
            for term in cells[c][j]:
                if term.op != "skip_connect":
                    ran.append((c, term.op, term.edge))
                if term.reads_source:
                    source = EDGES[term.edge][0]
                    input_live |= source == 0
                    live.add(source)
        if not input_live:
            break
        if c in REDUCTIONS_BEFORE:
            reductions[REDUCTIONS_BEFORE.index(c)] = True
        stem = stem or c == 0
    return {"ops": ran, "adds": adds, "stem": stem, "reductions": reductions}


def rule_matrix(arch_strs: list[str], columns) -> np.ndarray:
    """The package's node-kind features of the graph the rule says ran (networks x columns), composed from
    nb201's parts: the stem and reductions that run, the head, and per running op its stage's part (a
    convolution with its ReLU; a merged copy shares its original's ReLU), per sum of n terms n - 1 Adds."""
    parts = {key: f.vector(columns) for key, f in nb201.part_features().items()}
    rows = []
    for arch_str in arch_strs:
        record = running_ops(arch_str)
        row = np.zeros(len(columns))
        if record is not None:
            edges = nb201.edge_ops(arch_str)
            folds_bn = not nb201.output_is_constant(arch_str) and nb201.head_bn_folds(arch_str, "fold")
            head = "head_relu_pool_fc" if folds_bn else "head"
            row = row + parts[head] + (parts["stem"] if record["stem"] else 0)
            for s, alive in enumerate(record["reductions"], start=1):
                row = row + (parts[("reduction", s)] if alive else 0)
            for c, op, edge in record["ops"]:
                row = row + parts[(op, stage(c))]
                if op != "avg_pool_3x3" and edges[edge] != "none":
                    row = row + parts[("relu", stage(c))]
            for c in record["adds"]:
                row = row + parts[("add", stage(c))]
        rows.append(row)
    return np.stack(rows)


def stage(cell: int) -> int:
    return cell // nb201.CELLS_PER_STAGE


def fold_running_ops(arch_str: str) -> dict | None:
    """The same record for nb201's 'fold' graphs (every cell alike, stem and reductions always run)."""
    if nb201.output_is_constant(arch_str):
        return None
    plan, _ = nb201.cell_plan(arch_str, "fold")
    index = {edge: k for k, edge in enumerate(EDGES)}
    ran = [(c, op, index[(i, j)]) for c in range(CELLS) for j, edges in plan.items() for op, i in edges]
    return {"ops": [r for r in ran if r[1] != "skip_connect"], "stem": True, "reductions": [True, True]}


def count_features(record: dict | None) -> list[float]:
    """Runs at all, stem, the two reductions, and per stage the running ops of each kind."""
    if record is None:
        return [0.0] * (4 + 3 * len(OPS))
    per_stage = [
        sum(1 for c, op, _ in record["ops"] if op == kind and stage(c) == s) for s in range(3) for kind in OPS
    ]
    return [1.0, float(record["stem"]), *map(float, record["reductions"]), *per_stage]


def single_conv_cells(latency: dict[str, float], runs) -> dict:
    """The 192 cells with one 3x3 convolution, the other edges `none` / `skip_connect`: empty (< 0.1 ms),
    the convolutions did not run (< 4 ms) or they ran, as measured and as `runs` says."""
    cells, right = nb201.single_conv_arch_strs(), 0
    for arch in cells:
        ms, record = latency[arch], runs(arch)
        measured = "empty" if ms < CELL_EMPTY_MS else ("ran" if ms > CONV_RAN_MS else "not run")
        convs = 0 if record is None else sum(1 for _, op, _ in record["ops"] if op == "nor_conv_3x3")
        said = "empty" if record is None else ("ran" if convs >= RAN_CONVOLUTIONS else "not run")
        right += said == measured
    return {"cells": len(cells), "right": right}


def held_out_least_squares(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Least squares with an intercept on all but `HOLDOUT` networks; Spearman and MAPE on those."""
    order = np.random.default_rng(seed).permutation(len(y))
    test, rest = order[:HOLDOUT], order[HOLDOUT:]
    design = np.hstack([np.ones((len(y), 1)), x])
    w, *_ = np.linalg.lstsq(design[rest], y[rest], rcond=None)
    p = design[test] @ w
    return {"spearman": round(spearman(p, y[test]), 4), "mape": round(mape(p, y[test]), 1)}


def main() -> int:
    started = time.perf_counter()
    archs, devices, latency = read_corpus(DEFAULT_DATA / "nasbench201_latency_ms.csv")
    y = latency[:, devices.index("pixel3")]
    by_arch = dict(zip(archs, y))
    report = {}
    for name, runs in (("fold", fold_running_ops), ("rule", running_ops)):
        records = [runs(a) for a in archs]
        empty = np.array([r is None for r in records])
        measured_empty = y < EMPTY_MS
        report[name] = {
            "single_conv_cells": single_conv_cells(by_arch, runs),
            "called_empty": int(empty.sum()),
            "called_empty_and_measured_under_0.015_ms": int((empty & measured_empty).sum()),
            "measured_under_0.015_ms": int(measured_empty.sum()),
            "least_squares_on_running_op_counts": held_out_least_squares(
                np.array([count_features(r) for r in records]), y
            ),
        }
    write_result("pixel3_rule", report, started=started, out=CACHE / "pixel3_rule.json")
    print(report)
    return 0


if __name__ == "__main__":
    run_main(main)
