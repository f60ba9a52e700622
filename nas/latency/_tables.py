"""Per-block latency tables: reading and checking a measured block table into `BlockRow`s.

Block table schema (CSV, header row, one measured block per row; also in hardware_profiles/data/README.md)
----------------------------------------------------------------------------------------------------------

Required columns (any order; other columns, e.g. ``dataset``, ``layer_index``, ``energy_mJ``, are kept or
ignored): ``block, kernel, expansion, groups, stride, c_in, c_out, h_in, w_in, latency_ms``.

=========================  ==========================================================================
``block``                  what was measured (input ``1 x c_in x h_in x w_in``, float32, batch 1)
=========================  ==========================================================================
``k{K}_e{E}[_g{G}]``       HW-NAS-Bench FBNet ConvBlock = `shuffle_bottleneck` with ReLU, kernel K,
                           expansion E, groups G (default 1), ``stride``; identity residual when
                           ``c_in == c_out`` and stride 1. ``kernel``/``expansion``/``groups`` columns,
                           when filled, must agree with the name.
``skip``                   the identity, or 1x1 conv + BN + ReLU (stride ``stride``) when the shape
                           changes (`skip` primitive); ``skip(conv1x1_proj)`` is the same block
``stem_conv3x3``           conv_bn(c_in -> c_out, ``kernel`` (default 3), ``stride``) + ReLU
``head_conv1x1``           1x1 conv_bn(c_in -> c_out) + ReLU
``avgpool``                global average pooling + flatten (HW-NAS-Bench: ``global_avgpool``)
``classifier``             Linear(c_in -> c_out) on a ``1 x c_in`` input (HW-NAS-Bench: ``fc``);
                           ``h_in``/``w_in`` may be empty
=========================  ==========================================================================

Integer columns a block does not use may be empty; ``stride`` empty means 1. ``latency_ms`` must be a
finite number >= 0. The HW-NAS-Bench per-device files (``jetson-tx2_fbnet_blocks.csv``,
``raspberry-pi-4_fbnet_blocks.csv``; ``layer_index`` -1 stem, 0..21 searchable layers, 22 head conv,
23 pool, 24 classifier) follow this schema as they are. `read_unique_blocks_table` converts the
source's unique-blocks file (``op`` ConvBlock / Skip / ConvNorm / AvgP / FC, one latency column per
device) into the same rows.

Every problem is a `NasError` naming the file, the line (the header is line 1, so data row r is line
r + 1) and the column.

Turning the rows into samples for fitting a latency model: `nas.latency._block_samples`.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from nas.errors import NasError

REQUIRED_COLUMNS = (
    "block",
    "kernel",
    "expansion",
    "groups",
    "stride",
    "c_in",
    "c_out",
    "h_in",
    "w_in",
    "latency_ms",
)
# Accepted spellings of the non-searchable blocks -> canonical name.
_ALIASES = {
    "skip": "skip",
    "skip(conv1x1_proj)": "skip",
    "stem_conv3x3": "stem_conv3x3",
    "head_conv1x1": "head_conv1x1",
    "avgpool": "avgpool",
    "global_avgpool": "avgpool",
    "classifier": "classifier",
    "fc": "classifier",
}
_CONV_BLOCK = re.compile(r"^k(\d+)_e(\d+(?:\.\d+)?)(?:_g(\d+))?$")
BLOCK_NAMES_HELP = (
    "k{K}_e{E}[_g{G}], skip, skip(conv1x1_proj), stem_conv3x3, head_conv1x1, avgpool, global_avgpool, "
    "classifier, fc"
)

UNIQUE_BLOCKS_COLUMNS = (
    "key",
    "op",
    "h_in",
    "w_in",
    "c_in",
    "c_out",
    "expansion",
    "kernel",
    "stride",
    "groups",
)
# Latency columns of the unique-blocks file that are measurements on a device (the Eyeriss and FPGA
# columns are simulator estimates and are refused).
UNIQUE_BLOCKS_DEVICES = {
    "pixel3": "pixel3_latency_ms",
    "raspi4": "raspi4_latency_ms",
    "edgegpu": "edgegpu_latency_ms",
}


@dataclass(frozen=True)
class BlockConfig:
    """What is built and featurized: a canonical block name and its shape (hashable: the cache key)."""

    block: str  # "conv_block" | "skip" | "stem_conv3x3" | "head_conv1x1" | "avgpool" | "classifier"
    kernel: int
    expansion: float
    groups: int
    stride: int
    c_in: int
    c_out: int
    h_in: int
    w_in: int


@dataclass(frozen=True)
class BlockRow:
    """One row of a block table: where it came from, its configuration and its measured latency."""

    source: str  # file name
    line: int  # line number in the file (header = line 1)
    block: str  # as written in the file
    config: BlockConfig
    latency_ms: float
    dataset: str = ""
    layer_index: int | None = None


# ------------------------------------------------------------------------------------------- reading


class _Row:
    def __init__(self, path: Path, line: int, values: dict[str, str]):
        self.path, self.line, self.values = path, line, values

    def fail(self, column: str, problem: str) -> NasError:
        return NasError(f"{self.path}:{self.line}: data row {self.line - 1}: {column}: {problem}")

    def text(self, column: str) -> str:
        value = self.values.get(column)
        return "" if value is None else value.strip()

    def _parsed(self, column: str, default: float | None) -> float | None:
        """The column as a finite-or-not float, or `default` when empty (None: the value is required)."""
        text = self.text(column)
        if text == "":
            if default is None:
                raise self.fail(column, "missing value")
            return None
        try:
            return float(text)
        except ValueError:
            raise self.fail(column, f"not a number: {text!r}") from None

    def integer(self, column: str, default: int | None = None, *, minimum: int = 1) -> int:
        number = self._parsed(column, default)
        if number is None:
            return default
        if not math.isfinite(number) or number != int(number) or number < minimum:
            raise self.fail(column, f"must be an integer >= {minimum}, got {self.text(column)!r}")
        return int(number)

    def number(self, column: str, default: float | None = None) -> float:
        number = self._parsed(column, default)
        if number is None:
            return default
        if not math.isfinite(number) or number <= 0:
            raise self.fail(column, f"must be a positive number, got {self.text(column)!r}")
        return number

    def latency(self, column: str) -> float:
        text = self.text(column)
        if text == "":
            raise self.fail(column, "missing latency")
        try:
            value = float(text)
        except ValueError:
            raise self.fail(column, f"latency is not a number: {text!r}") from None
        if math.isnan(value) or math.isinf(value):
            raise self.fail(column, f"latency must be a finite number, got {text!r}")
        if value < 0:
            raise self.fail(column, f"latency must be >= 0, got {text!r}")
        return value


def _open_csv(path: str | Path, required: Iterable[str]) -> tuple[Path, list[_Row]]:
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise NasError(f"latency table not found: {path}") from None
    except OSError as error:
        raise NasError(f"{path}: cannot read latency table: {error}") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise NasError(f"{path}: the latency table is empty (no header row)")
            missing = [c for c in required if c not in header]
            if missing:
                raise NasError(f"{path}:1: missing required column(s): {', '.join(missing)}")
            rows = []
            for values in reader:
                line = reader.line_num
                if None in values:  # more fields than the header
                    rows.append(_Row(path, line, values))
                    raise rows[-1].fail(
                        "row", f"{len(header) + len(values[None])} fields, the header has {len(header)}"
                    )
                rows.append(_Row(path, line, values))
        except (csv.Error, UnicodeDecodeError) as error:
            raise NasError(f"{path}: not a readable CSV file: {error}") from None
    if not rows:
        raise NasError(f"{path}: the latency table has no data rows")
    return path, rows


def _config(row: _Row, block: str) -> BlockConfig:
    stride = row.integer("stride", 1)
    c_in, c_out = row.integer("c_in"), row.integer("c_out")
    match = _CONV_BLOCK.match(block)
    if match:
        kernel, expansion = int(match.group(1)), float(match.group(2))
        groups = int(match.group(3)) if match.group(3) else 1
        for column, named in (("kernel", kernel), ("expansion", expansion), ("groups", groups)):
            if row.text(column) and row.number(column) != named:
                raise row.fail(column, f"{row.text(column)} does not match block {block!r}")
        if kernel % 2 == 0 or kernel < 1 or expansion <= 0 or groups < 1:
            raise row.fail("block", f"impossible block {block!r}")
        mid = int(round(c_in * expansion))
        if c_in % groups or c_out % groups:
            raise row.fail("groups", f"{groups} groups do not divide c_in {c_in} and c_out {c_out}")
        if mid < 1:
            raise row.fail("expansion", f"expansion {expansion} of {c_in} channels leaves no channel")
        return BlockConfig(
            "conv_block",
            kernel,
            expansion,
            groups,
            stride,
            c_in,
            c_out,
            row.integer("h_in"),
            row.integer("w_in"),
        )
    canonical = _ALIASES.get(block)
    if canonical is None:
        raise row.fail("block", f"unknown block {block!r}; expected one of {BLOCK_NAMES_HELP}")
    if canonical == "classifier":
        return BlockConfig(
            canonical, 1, 1.0, 1, 1, c_in, c_out, row.integer("h_in", 1), row.integer("w_in", 1)
        )
    h_in, w_in = row.integer("h_in"), row.integer("w_in")
    if canonical == "avgpool":
        if c_in != c_out:
            raise row.fail("c_out", f"average pooling keeps the channels: c_in {c_in} != c_out {c_out}")
        return BlockConfig(canonical, 1, 1.0, 1, 1, c_in, c_out, h_in, w_in)
    if canonical == "stem_conv3x3":
        kernel = row.integer("kernel", 3)
        if kernel % 2 == 0:
            raise row.fail("kernel", f"must be odd, got {kernel}")
        return BlockConfig(canonical, kernel, 1.0, 1, stride, c_in, c_out, h_in, w_in)
    if canonical == "head_conv1x1":
        if row.integer("kernel", 1) != 1:
            raise row.fail("kernel", f"a head_conv1x1 has kernel 1, got {row.text('kernel')}")
        return BlockConfig(canonical, 1, 1.0, 1, stride, c_in, c_out, h_in, w_in)
    return BlockConfig("skip", 1, 1.0, 1, stride, c_in, c_out, h_in, w_in)  # skip


def read_block_table(path: str | Path) -> list[BlockRow]:
    """Read and validate a block table (schema: module docstring). Every row is checked."""
    path, rows = _open_csv(path, REQUIRED_COLUMNS)
    result = []
    for row in rows:
        block = row.text("block")
        if not block:
            raise row.fail("block", "missing block name")
        config = _config(row, block)
        latency = row.latency("latency_ms")
        layer = row.text("layer_index")
        layer_index = row.integer("layer_index", minimum=-1) if layer else None
        result.append(
            BlockRow(
                source=path.name,
                line=row.line,
                block=block,
                config=config,
                latency_ms=latency,
                dataset=row.text("dataset"),
                layer_index=layer_index,
            )
        )
    return result


def _unique_block_name(row: _Row) -> str:
    op = row.text("op")
    if op == "ConvBlock":
        groups = row.integer("groups", 1)
        expansion = row.number("expansion")
        e = f"{int(expansion)}" if expansion == int(expansion) else f"{expansion:g}"
        return f"k{row.integer('kernel')}_e{e}" + (f"_g{groups}" if groups > 1 else "")
    if op == "Skip":
        return "skip"
    if op == "ConvNorm":
        kernel = row.integer("kernel")
        if kernel == 1:
            return "head_conv1x1"
        return "stem_conv3x3"
    if op == "AvgP":
        return "avgpool"
    if op == "FC":
        return "classifier"
    raise row.fail("op", f"unknown op {op!r}; expected one of ConvBlock, Skip, ConvNorm, AvgP, FC")


def read_unique_blocks_table(path: str | Path, device: str = "pixel3") -> list[BlockRow]:
    """Convert HW-NAS-Bench's unique-blocks file (``hwnasbench_fbnet_unique_blocks_all_devices.csv``:
    key, op, h_in, w_in, c_in, c_out, expansion, kernel, stride, groups, then one column per metric)
    into block-table rows, with the latency of one measured device: ``pixel3`` (Pixel 3,
    ``pixel3_latency_ms``), ``raspi4`` or ``edgegpu`` (Jetson TX2). The Eyeriss and FPGA columns are
    simulator estimates, not measurements, and cannot be chosen."""
    if device not in UNIQUE_BLOCKS_DEVICES:
        raise NasError(
            f"unknown device {device!r} for the unique-blocks table; measured devices: "
            f"{', '.join(UNIQUE_BLOCKS_DEVICES)} (Eyeriss and FPGA columns are simulator estimates)"
        )
    column = UNIQUE_BLOCKS_DEVICES[device]
    path, rows = _open_csv(path, UNIQUE_BLOCKS_COLUMNS + (column,))
    result = []
    for row in rows:
        block = _unique_block_name(row)
        config = _config(row, block)
        result.append(
            BlockRow(
                source=path.name,
                line=row.line,
                block=block,
                config=config,
                latency_ms=row.latency(column),
                dataset="",
                layer_index=None,
            )
        )
    return result


def table_format(path: str | Path) -> str:
    """ "block_table" or "unique_blocks", from the header of a CSV file (NasError if neither)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except FileNotFoundError:
        raise NasError(f"latency table not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise NasError(f"{path}: cannot read latency table: {error}") from None
    if all(c in header for c in REQUIRED_COLUMNS):
        return "block_table"
    if all(c in header for c in UNIQUE_BLOCKS_COLUMNS):
        return "unique_blocks"
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    raise NasError(f"{path}:1: missing required column(s): {', '.join(missing)}")
