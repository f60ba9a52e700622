"""What a device's measurements cover: the node kinds that occur in them, and per kind the range seen.

A latency model learns a weight only for the operator kinds its training graphs contain; every other
kind would cost nothing. `Coverage` records, at fit time, which kinds occurred (with how many nodes)
and, for convolutions and matrix products, the range of each shape attribute (`SHAPE_FIELDS`:
channels, output height, kernel, stride, groups; in/out features). A prediction then knows which of
its nodes are of a kind the device never ran (``uncovered_kinds``: they must be priced by a prior or
refused, never at zero) and which are of a measured kind but outside the measured sizes
(``out_of_range``: an extrapolation in size, reported, still priced by the device's own weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from nas.errors import NasError
from nas.latency._features import FEATURES, GraphFeatures, shape_fields
from nas.latency._op_kinds import KINDS

COUNT = FEATURES.index("count")
INFERRED = (
    "inferred from the model's non-zero weights (the profile records no coverage; refit it to record one)"
)


@dataclass(frozen=True)
class Coverage:
    """``kinds[kind] = {"nodes": n, field: [low, high], ...}`` over every kind the data contains."""

    kinds: dict[str, dict[str, Any]]
    source: str = ""

    @classmethod
    def of(cls, graphs: Iterable[GraphFeatures], source: str = "") -> "Coverage":
        """The coverage of the graphs a model is fitted on."""
        kinds: dict[str, dict[str, Any]] = {}
        for graph in graphs:
            for node in graph.nodes:
                entry = kinds.setdefault(node.kind, {"nodes": 0})
                entry["nodes"] += 1
                for name, value in zip(shape_fields(node.kind), node.shape):
                    low, high = entry.get(name, (value, value))
                    entry[name] = (min(low, value), max(high, value))
            for kind, vector in graph.kinds.items():
                entry = kinds.setdefault(kind, {"nodes": 0})
                if not graph.nodes:  # composed without per-node detail: its `count` feature counts them
                    entry["nodes"] += int(round(vector[COUNT]))
        ordered = {
            k: {f: list(v) if isinstance(v, tuple) else v for f, v in kinds[k].items()}
            for k in KINDS
            if k in kinds
        }
        return cls(kinds=ordered, source=source)

    @classmethod
    def inferred(cls, weights: dict[str, float]) -> "Coverage":
        """For a profile that records none: the kinds with a non-zero weight (a measured kind whose
        fitted weights are all zero shows as uncovered: conservative, never silent)."""
        kinds = {column.partition(".")[0] for column, weight in weights.items() if weight > 0}
        return cls(kinds={k: {"nodes": 0} for k in KINDS if k in kinds}, source=INFERRED)

    def covers(self, kind: str) -> bool:
        return kind in self.kinds

    def uncovered_kinds(self, features: GraphFeatures) -> list[str]:
        """The kinds of `features` that the data never contained, in `KINDS` order."""
        return [kind for kind in KINDS if kind in features.kinds and kind not in self.kinds]

    def out_of_range(self, features: GraphFeatures) -> list[str]:
        """'node (kind): field value outside [low, high]' for each covered node outside the measured sizes."""
        found = []
        for node in features.nodes:
            entry = self.kinds.get(node.kind)
            if entry is None:
                continue
            for name, value in zip(shape_fields(node.kind), node.shape):
                if name in entry and not entry[name][0] <= value <= entry[name][1]:
                    low, high = entry[name]
                    found.append(f"{node.name} ({node.kind}): {name} {value} outside [{low}, {high}]")
        return found

    def summary(self) -> str:
        """One line: how many kinds, and which families are missing."""
        missing = [k for k in KINDS if k not in self.kinds]
        text = f"{len(self.kinds)} of {len(KINDS)} node kinds measured"
        return text + (f"; never measured: {', '.join(missing)}" if missing else "")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kinds": {k: dict(v) for k, v in self.kinds.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> "Coverage":
        """The inverse of `to_dict`; problems are `NasError`s naming the field (``kinds.conv_x.c_in``)."""
        if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
            raise NasError("must be a mapping with 'kinds' (kind -> {nodes, ranges})")
        kinds: dict[str, dict[str, Any]] = {}
        for kind, entry in data["kinds"].items():
            if kind not in KINDS:
                raise NasError(f"kinds.{kind}: unknown node kind; expected one of {', '.join(KINDS)}")
            if not isinstance(entry, dict):
                raise NasError(f"kinds.{kind}: must be a mapping, got {entry!r}")
            checked: dict[str, Any] = {}
            for name, value in entry.items():
                if name == "nodes":
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise NasError(f"kinds.{kind}.nodes: must be a non-negative integer, got {value!r}")
                elif name in shape_fields(kind):
                    if not (
                        isinstance(value, list)
                        and len(value) == 2
                        and all(isinstance(v, int) for v in value)
                        and value[0] <= value[1]
                    ):
                        raise NasError(f"kinds.{kind}.{name}: must be [low, high] integers, got {value!r}")
                else:
                    raise NasError(
                        f"kinds.{kind}.{name}: unknown field; expected nodes or "
                        f"{', '.join(shape_fields(kind)) or 'nothing else'}"
                    )
                checked[name] = value
            kinds[kind] = checked
        source = data.get("source", "")
        if not isinstance(source, str):
            raise NasError(f"source: must be a string, got {source!r}")
        return cls(kinds=kinds, source=source)
