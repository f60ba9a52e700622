"""NAS-Bench-201 networks (Dong & Yang, ICLR 2020) as torch modules, and their graph features composed
from cached per-part features (exporting all 15,625 networks to ONNX would take hours here).

Macro-structure (CIFAR-10, 32x32 input): stem 3x3 conv 3->16 + BN; 5 cells at 16 channels; a residual
reduction block to 32 (ReLU-conv3x3 s2-BN, ReLU-conv3x3-BN; shortcut avg-pool 2x2 s2 then 1x1 conv);
5 cells at 32; reduction to 64; 5 cells at 64; BN, ReLU, global average pool, linear to 10 classes.
Every cell has the same genotype ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node j (1..3) sums op(node i)
over i < j, ops ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3`` (ReLU-conv-BN) and
``avg_pool_3x3`` (stride 1, padding 1, count_include_pad=False). The cell's output is node 3.

What the graph of a cell contains with zero="absent" (the builder computes exactly this, and it is what the ONNX
exporter leaves after dead-code elimination):

* a ``none`` edge is absent: no node, and nothing to add;
* only *used* nodes are computed: node 3, and any node that a non-``none`` edge into a used node reads
  (a node nobody reads is dead code, which the exporter drops anyway);
* a used node with m >= 1 incoming non-``none`` edges costs its edges' ops plus m - 1 Add nodes;
* a used node with no incoming non-``none`` edge is zero; it is computed as ``input * 0`` (one Mul),
  as NAS-Bench-201's own ``Zero`` op does, so that the network stays a function of its input (a
  constant zero would let the exporter fold everything downstream away, and the measured networks did
  run those ops).

The features of a network are then stem + 5 x cell(16 ch, 32x32) + reduction + 5 x cell(32, 16x16) +
reduction + 5 x cell(64, 8x8) + head, with one exception the exporter introduces: the head's
BatchNorm is folded into the last convolution when the network's output comes straight from a
convolution whose output has no other reader (see `head_bn_folds`), and identical nodes are merged
(see `cell_nodes`). tests/latency/test_fewshot.py checks that the composed features equal
``graph_features(export_onnx(whole network))`` exactly, for every `zero` mode.

`zero` selects what a ``none`` edge is: "mul" (NAS-Bench-201's reference code: ``x * 0``, summed like
any edge, so no node is ever dead: what the corpus devices ran; the default), "absent" (left out, as
described above) or "fold" (left out and zero propagated: an op reading a zero node is dropped too, and
a network whose cell output is provably zero has no features at all, as on a runtime that folds
constants, e.g. the corpus' pixel3). `network_matrix(..., cse=False)` counts every edge's own nodes
(PyTorch eager, which merges nothing): the features the benchmark uses (docs/latency-corpus.md).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
STAGES = ((16, 32), (32, 16), (64, 8))  # (channels, spatial size) of the cells of each stage
CELLS_PER_STAGE = 5
NUM_CLASSES = 10


def parse_arch(arch_str: str) -> tuple[tuple[tuple[str, int], ...], ...]:
    """``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|`` -> (((a, 0),), ((b, 0), (c, 1)), ((d, 0), (e, 1), (f, 2)))."""
    nodes = []
    for j, part in enumerate(arch_str.split("+"), start=1):
        edges = []
        for token in part.strip("|").split("|"):
            op, _, source = token.partition("~")
            if op not in OPS:
                raise ValueError(f"{arch_str!r}: unknown op {op!r}")
            edges.append((op, int(source)))
        if [s for _, s in edges] != list(range(j)):
            raise ValueError(f"{arch_str!r}: node {j} must read nodes 0..{j - 1} in order")
        nodes.append(tuple(edges))
    if len(nodes) != 3:
        raise ValueError(f"{arch_str!r}: expected 3 nodes")
    return tuple(nodes)


def edge_ops(arch_str: str) -> list[str]:
    """The six edges' ops, in the order e0 = 0->1, e1 = 0->2, e2 = 1->2, e3 = 0->3, e4 = 1->3, e5 = 2->3."""
    return [op for node in parse_arch(arch_str) for op, _ in node]


def arch_str_of(ops) -> str:
    """The inverse of `edge_ops`: six ops -> ``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|``."""
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def all_arch_strs() -> list[str]:
    """All 15,625 cells (enumeration order, not the corpus' arch_index: index by arch_str)."""
    return [arch_str_of(ops) for ops in itertools.product(OPS, repeat=6)]


def single_conv_arch_strs() -> list[str]:
    """The 192 cells with one 3x3 convolution and every other edge `none` or `skip_connect` (where pixel3's
    measurements show plainly whether the convolution ran: docs/latency-corpus.md, section 1)."""
    out = []
    for position in range(6):
        for rest in itertools.product(("none", "skip_connect"), repeat=5):
            ops = list(rest)
            ops.insert(position, "nor_conv_3x3")
            out.append(arch_str_of(ops))
    return out


ZERO_MODES = ("mul", "absent", "fold")


def cell_plan(arch_str: str, zero: str = "mul") -> tuple[dict[int, list[tuple[str, int]]], list[int]]:
    """(edges computed into each used node, used nodes in order). Nodes are 0 (input) .. 3 (output).

    zero="mul": a ``none`` edge is computed as ``source * 0`` (NAS-Bench-201's ``Zero``) and summed like
    any edge; zero="absent": it is left out (see the module docstring)."""
    if zero not in ZERO_MODES:
        raise ValueError(f"zero must be one of {ZERO_MODES}, got {zero!r}")
    nodes = parse_arch(arch_str)
    live = {
        j + 1: [(op, i) for op, i in edges if zero == "mul" or op != "none"] for j, edges in enumerate(nodes)
    }
    if zero == "fold":  # op(zero) is a constant: edges reading a zero node fold away too
        zeros: set[int] = set()
        for j in (1, 2, 3):
            live[j] = [(op, i) for op, i in live[j] if i not in zeros]
            if not live[j]:
                zeros.add(j)
        if 3 in zeros:
            return {}, []  # the cell's output is a constant: everything folds
    used = {3}
    for j in (3, 2, 1):
        if j in used:
            used.update(i for _, i in live[j])
    order = [j for j in (1, 2, 3) if j in used]
    return {j: live[j] for j in order}, order


# ------------------------------------------------------------------------------------------- modules


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(op: str, channels: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "none":
        return Zero()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"no module for op {op!r}")


class Zero(nn.Module):
    """NAS-Bench-201's Zero (stride 1): ``x * 0``, one Mul node."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class Cell(nn.Module):
    def __init__(self, arch_str: str, channels: int, zero: str = "mul"):
        super().__init__()
        self.plan, self.order = cell_plan(arch_str, zero)
        self.edges = nn.ModuleDict()
        for j, edges in self.plan.items():
            if not edges:
                self.edges[f"{j}"] = Zero()
            for op, i in edges:
                self.edges[f"{j}_{i}"] = make_op(op, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.order:  # zero="fold" and the output is provably zero
            return torch.zeros_like(x)
        nodes = {0: x}
        for j in self.order:
            edges = self.plan[j]
            if not edges:
                nodes[j] = self.edges[f"{j}"](x)
                continue
            total = None
            for op, i in edges:
                y = self.edges[f"{j}_{i}"](nodes[i])
                total = y if total is None else total + y
            nodes[j] = total
        return nodes[3]


class Reduction(nn.Module):
    """NAS-Bench-201's ResNetBasicblock with stride 2."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _stem() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))


def _head(channels: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(channels, NUM_CLASSES),
    )


class NB201Network(nn.Module):
    def __init__(self, arch_str: str, zero: str = "mul", seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        layers: list[nn.Module] = [_stem()]
        for s, (channels, _) in enumerate(STAGES):
            if s > 0:
                layers.append(Reduction(STAGES[s - 1][0], channels))
            layers.extend(Cell(arch_str, channels, zero) for _ in range(CELLS_PER_STAGE))
        self.body = nn.Sequential(*layers)
        self.head = _head(STAGES[-1][0])
        for m in self.modules():  # non-trivial BN statistics: folding must not hide behind identity BNs
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# ------------------------------------------------------------------------------------------- features


def _export_features(module: nn.Module, shape: tuple[int, ...]):
    from nas.latency import graph_features
    from nas.onnx_io import export_onnx

    return graph_features(export_onnx(module, 32, fast=True, input_shape=shape))


class _Twice(nn.Module):
    def forward(self, x):
        return x + x  # one Add node reading two activations of x's shape


@lru_cache(maxsize=None)
def part_features() -> dict:
    """Features of every part: stem, head, reductions, and per stage one node of each kind a cell has
    (ReLU, 1x1 conv with its BN folded, 3x3 conv likewise, 3x3 average pool, Add, Zero's Mul)."""
    parts = {
        "stem": _export_features(_stem(), (1, 3, 32, 32)),
        "head": _export_features(_head(64), (1, 64, 8, 8)),
        "head_relu_pool_fc": _export_features(nn.Sequential(*list(_head(64))[1:]), (1, 64, 8, 8)),
    }
    for s, (channels, size) in enumerate(STAGES):
        shape = (1, channels, size, size)
        if s > 0:
            c_in, s_in = STAGES[s - 1]
            parts[("reduction", s)] = _export_features(Reduction(c_in, channels), (1, c_in, s_in, s_in))
        parts[("relu", s)] = _export_features(nn.ReLU(), shape)
        for op in ("nor_conv_1x1", "nor_conv_3x3"):
            parts[(op, s)] = _export_features(
                nn.Sequential(*list(make_op(op, channels))[1:]), shape
            )  # conv + BN, no ReLU
        parts[("avg_pool_3x3", s)] = _export_features(make_op("avg_pool_3x3", channels), shape)
        parts[("add", s)] = _export_features(_Twice(), shape)
        parts[("zero", s)] = _export_features(Zero(), shape)
    return parts


def cell_nodes(arch_str: str, zero: str = "mul", cse: bool = True) -> dict[str, int]:
    """Graph nodes of one cell after the exporter's common-subexpression elimination, by kind.

    The TorchScript exporter merges identical nodes with identical inputs: two conv edges reading the
    same node share one ReLU, two pooling edges reading the same node share one AveragePool, a skip
    edge makes its target the same value as its source (so ``pool(node 1)`` and ``pool(node 0)`` merge
    when node 1 = skip(node 0)), identical partial sums share their Add, and several zero nodes share
    one Mul. Convolutions never merge (each edge has its own weights). Simulated by hash-consing the
    cell's expression graph. PyTorch eager (how the corpus' GPUs and CPUs ran the networks) does not
    merge anything; the features follow the exported graph, which is what the package featurizes.
    """
    plan, order = cell_plan(arch_str, zero)
    seen: dict[tuple, tuple] = {}
    unique = itertools.count()
    counts: dict[str, int] = {}
    conv_ids = itertools.count()

    def node(key: tuple) -> tuple:
        if not cse:
            key = (*key, next(unique))
        if key not in seen:
            seen[key] = key
            counts[key[0]] = counts.get(key[0], 0) + 1
        return seen[key]

    values = {0: ("input",)}
    for j in order:
        edges = plan[j]
        if not edges:
            values[j] = node(("zero", values[0]))
            continue
        total = None
        for op, i in edges:
            x = values[i]
            if op == "skip_connect":
                y = x
            elif op == "none":
                y = node(("zero", x))
            elif op == "avg_pool_3x3":
                y = node(("avg_pool_3x3", x))
            else:
                y = node((op, node(("relu", x)), next(conv_ids)))
            total = y if total is None else node(("add", total, y))
        values[j] = total
    return counts


def head_bn_folds(arch_str: str, zero: str = "mul") -> bool:
    """True when the exporter folds the head's BatchNorm into the last cell's last convolution: the
    network output (node 3 of the last cell, following skip edges back) is a single conv edge's output
    that nothing else in the cell reads."""
    plan, _ = cell_plan(arch_str, zero)
    readers: dict[int, int] = {}
    for edges in plan.values():
        for _, i in edges:
            readers[i] = readers.get(i, 0) + 1
    j = 3
    while True:
        edges = plan[j]
        if len(edges) != 1:
            return False
        op, i = edges[0]
        if op == "skip_connect":
            if i == 0:
                return False  # the cell's input: a previous cell (same rule) or a reduction's Add
            if readers.get(i, 0) != 1:
                return False
            j = i
            continue
        return op in ("nor_conv_1x1", "nor_conv_3x3")


def output_is_constant(arch_str: str) -> bool:
    """zero="fold": node 3 is provably zero, so the network's output is a constant and a runtime that
    folds constants runs nothing at all (features: empty)."""
    return cell_plan(arch_str, "fold")[1] == []


def cell_features(arch_str: str, stage: int, zero: str = "mul"):
    from nas.latency import GraphFeatures

    parts = part_features()
    total = GraphFeatures.empty()
    for kind, count in sorted(cell_nodes(arch_str, zero).items()):
        for _ in range(count):
            total = total + parts[(kind, stage)]
    return total


def network_features(arch_str: str, zero: str = "mul"):
    """Composed `GraphFeatures` of the whole network (see the module docstring)."""
    from nas.latency import GraphFeatures

    if zero == "fold" and output_is_constant(arch_str):
        return GraphFeatures.empty()
    parts = part_features()
    total = parts["stem"]
    for s in range(len(STAGES)):
        if s > 0:
            total = total + parts[("reduction", s)]
        cell = cell_features(arch_str, s, zero)
        for _ in range(CELLS_PER_STAGE):
            total = total + cell
    if head_bn_folds(arch_str, zero):
        return total + parts["head_relu_pool_fc"]
    return total + parts["head"]


def network_matrix(arch_strs: list[str], columns, zero: str = "mul", cse: bool = True) -> np.ndarray:
    """Feature matrix (networks x columns): `network_features` as vectors, computed from the parts'
    vectors and each cell's node counts (no GraphFeatures additions: ~15 s for all 15,625)."""
    parts = {key: f.vector(columns) for key, f in part_features().items()}
    fixed = parts["stem"] + parts[("reduction", 1)] + parts[("reduction", 2)]
    rows = []
    for arch_str in arch_strs:
        if zero == "fold" and output_is_constant(arch_str):
            rows.append(np.zeros(len(fixed)))
            continue
        row = fixed + (parts["head_relu_pool_fc"] if head_bn_folds(arch_str, zero) else parts["head"])
        for kind, count in cell_nodes(arch_str, zero, cse).items():
            for s in range(len(STAGES)):
                row = row + CELLS_PER_STAGE * count * parts[(kind, s)]
        rows.append(row)
    return np.stack(rows)


def exported_features(arch_str: str, zero: str = "mul"):
    """``graph_features(export_onnx(whole network))``: the slow reference."""
    return _export_features(NB201Network(arch_str, zero), (1, 3, 32, 32))
