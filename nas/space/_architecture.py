"""`Architecture`: one sampled candidate, as an immutable value.

It is what flows between the rooms of the package (sampler -> builder -> evaluators -> export), so it
is plain data: hashable, JSON round-trip, and a stable content hash that names files and deduplicates
candidates across trials and runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from nas.space._primitives import get_primitive, known_primitives


@dataclass(frozen=True)
class BlockSpec:
    """One block. Attributes a primitive does not use are None (so equal blocks hash equally)."""

    primitive: str
    kernel: int | None = None
    expansion: float | None = None
    groups: int | None = None
    se: bool | str | None = None  # false, true (squeeze-excitation), "eca" or "coord"
    activation: str | None = None
    # Channel counts a structured pruning left (`nas prune`); None in every sampled block, and then absent
    # from the JSON, so unpruned architectures keep their hash. `channels`: the block's output channels
    # (instead of its stage's width); `expanded`: its inner channels (instead of those its expansion gives);
    # `attention_width`: the channel count its attention's inner layers were sized for (the unpruned one).
    channels: int | None = None
    expanded: int | None = None
    attention_width: int | None = None

    def __post_init__(self):
        # 6 and 6.0 are the same expansion; keep one spelling so equal blocks hash equally.
        if self.expansion is not None:
            object.__setattr__(self, "expansion", float(self.expansion))
        for name in PRUNED_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"{name}: must be a positive integer channel count, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, int(value))

    @property
    def pruned(self) -> bool:
        return any(getattr(self, name) is not None for name in PRUNED_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if k not in PRUNED_FIELDS or v is not None}


PRUNED_FIELDS = ("channels", "expanded", "attention_width")


@dataclass(frozen=True)
class StageSpec:
    name: str
    stride: int
    width: int
    blocks: tuple[BlockSpec, ...]

    @property
    def depth(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class Architecture:
    space: str
    resolution: int
    stem_channels: int
    stem_kernel: int
    stem_stride: int
    stem_activation: str
    stages: tuple[StageSpec, ...]
    head_width: int | None
    head_activation: str
    dropout: float
    # Stages followed by an early-exit head (pool + linear), in network order; the head after the last stage
    # is always the final exit. Empty (and then absent from the JSON, so the hash is unchanged) by default.
    exits: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "exits", tuple(self.exits))
        names = [stage.name for stage in self.stages]
        for name in self.exits:
            if name not in names[:-1]:
                raise ValueError(
                    f"exits: {name!r} is not a stage before the last one ({', '.join(names[:-1])})"
                )
        if list(self.exits) != sorted(set(self.exits), key=names.index):
            raise ValueError(f"exits: stages must be distinct and in network order, got {list(self.exits)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stage, spec in zip(data["stages"], self.stages):
            stage["blocks"] = [block.to_dict() for block in spec.blocks]
        if self.exits:
            data["exits"] = list(self.exits)
        else:
            del data["exits"]
        return data

    @property
    def pruned(self) -> bool:
        """Some block has channel counts a pruning left (see `BlockSpec.channels`)."""
        return any(block.pruned for stage in self.stages for block in stage.blocks)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Architecture fields: {sorted(unknown)}")
        stages = tuple(
            StageSpec(
                name=s["name"],
                stride=int(s["stride"]),
                width=int(s["width"]),
                blocks=tuple(BlockSpec(**b) for b in s["blocks"]),
            )
            for s in data["stages"]
        )
        return cls(**{**data, "stages": stages})

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Architecture":
        return cls.from_dict(json.loads(text))

    @property
    def hash(self) -> str:
        """Stable content hash (12 hex digits of SHA-256 over the canonical JSON)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    @property
    def depth(self) -> int:
        return sum(stage.depth for stage in self.stages)

    def summary(self) -> str:
        """A compact one-line description, one group per stage: blocks x depth @ width.

        e.g. `MBk3e6se*2@24 DSk5hs*1@40`: each primitive's declared short code (MB mbconv, FMB
        fused_mbconv, DS dwsep, SB shuffle_bottleneck, SKIP skip), then the attention (se, eca, ca for
        coordinate attention); a stage whose layers differ lists its distinct blocks joined by '/'. A pruned
        block shows its inner channels (`x96`), a pruned stage the output channels of each block (`@16,24`).
        """
        parts = []
        for stage in self.stages:
            kinds = "/".join(dict.fromkeys(_block_label(b) for b in stage.blocks)) or "-"
            widths = [block.channels or stage.width for block in stage.blocks]
            width = stage.width if set(widths) <= {stage.width} else ",".join(map(str, widths))
            parts.append(f"{kinds}*{stage.depth}@{width}")
        exits = f" exits@{','.join(self.exits)}" if self.exits else ""
        return " ".join(parts) + exits


def _block_label(block: BlockSpec) -> str:
    label = get_primitive(block.primitive).short if block.primitive in known_primitives() else block.primitive
    if block.kernel is not None:
        label += f"k{block.kernel}"
    if block.expansion is not None:
        label += f"e{block.expansion:g}"
    if block.groups not in (None, 1):
        label += f"g{block.groups}"
    if block.se:
        label += "se" if block.se is True else {"coord": "ca"}.get(block.se, block.se)
    if block.activation is not None:
        label += {"relu": "", "relu6": "r6", "hardswish": "hs"}.get(block.activation, block.activation)
    if block.expanded is not None:
        label += f"x{block.expanded}"
    return label
