"""The search-space file format: parsing, validation, and sampling an `Architecture` from a trial.

A space declares a stem, stages (fixed stride each) and a head. Any field given as a list is a search
choice; a scalar is fixed. Block decisions are made once per stage (`choose: per_stage`) or for every
layer (`choose: per_layer`), either as independent attributes (primitive, kernel, expansion, se,
activation, groups) or as named `ops` that bundle them (how HW-NAS-Bench's FBNet space is defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nas._yaml import YamlDocument
from nas.space._architecture import Architecture, BlockSpec, StageSpec
from nas.space._primitives import (
    ACTIVATIONS,
    ATTENTIONS,
    BLOCK_ATTRIBUTES,
    known_primitives,
    primitive_attributes,
)

_TOP_KEYS = {"name", "description", "input", "stem", "ops", "block_choices", "stages", "head", "exits"}
_STAGE_KEYS = {"name", "stride", "depth", "width"} | {"choose", "primitive", "op"} | set(BLOCK_ATTRIBUTES)
_BLOCK_KEYS = {"choose", "primitive", "op"} | set(BLOCK_ATTRIBUTES)


class Suggester(Protocol):
    """The part of `optuna.trial.Trial` that sampling needs (FixedTrial works too)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class StageChoices:
    name: str
    stride: int
    depth: tuple[int, ...]
    width: tuple[int, ...]
    choose: str  # "per_stage" or "per_layer"
    block: dict[str, tuple[Any, ...]] = field(hash=False)  # attribute (or "op") -> choices


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    path: Path
    resolution: tuple[int, ...]
    stem: dict[str, Any] = field(hash=False)
    ops: dict[str, BlockSpec] = field(hash=False)
    stages: tuple[StageChoices, ...] = ()
    head_width: tuple[int | None, ...] = (None,)
    head_activation: str = "relu"
    dropout: float = 0.0
    exits: dict[str, tuple[bool, ...]] = field(default_factory=dict, hash=False)  # stage -> exit head there?

    def sample(self, trial: Suggester) -> Architecture:
        """Draw one architecture; only choices with more than one value become trial parameters."""
        pick = _Picker(trial)
        stages = []
        for stage in self.stages:
            depth = pick(f"{stage.name}.depth", stage.depth)
            width = pick(f"{stage.name}.width", stage.width)
            if stage.choose == "per_stage":
                block = self._pick_block(pick, stage, stage.name)
                blocks = (block,) * depth
            else:
                blocks = tuple(self._pick_block(pick, stage, f"{stage.name}.b{i}") for i in range(depth))
            stages.append(StageSpec(name=stage.name, stride=stage.stride, width=width, blocks=blocks))
        return Architecture(
            space=self.name,
            resolution=pick("resolution", self.resolution),
            stem_channels=pick("stem.channels", self.stem["channels"]),
            stem_kernel=self.stem["kernel"],
            stem_stride=self.stem["stride"],
            stem_activation=self.stem["activation"],
            stages=tuple(stages),
            head_width=pick("head.width", self.head_width),
            head_activation=self.head_activation,
            dropout=self.dropout,
            exits=tuple(name for name, choices in self.exits.items() if pick(f"exits.{name}", choices)),
        )

    def _pick_block(self, pick: "_Picker", stage: StageChoices, prefix: str) -> BlockSpec:
        if "op" in stage.block:
            return self.ops[pick(f"{prefix}.op", stage.block["op"])]
        primitive = pick(f"{prefix}.primitive", stage.block["primitive"])
        values = {
            attr: pick(f"{prefix}.{attr}", stage.block[attr])
            for attr in BLOCK_ATTRIBUTES
            if attr in primitive_attributes(primitive)
        }
        return BlockSpec(primitive=primitive, **values)

    def describe(self) -> dict[str, Any]:
        choices = 1
        for stage in self.stages:
            per_block = 1
            for values in stage.block.values():
                per_block *= len(values)
            depth_options = sum(per_block ** (d if stage.choose == "per_layer" else 1) for d in stage.depth)
            choices *= depth_options * len(stage.width)
        choices *= len(self.resolution) * len(self.head_width) * len(self.stem["channels"])
        for options in self.exits.values():
            choices *= len(options)
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "stages": len(self.stages),
            "max_depth": sum(max(s.depth) for s in self.stages),
            "resolution": list(self.resolution),
            "size_upper_bound": choices,
        }


class _Picker:
    def __init__(self, trial: Suggester):
        self.trial = trial

    def __call__(self, name: str, choices: tuple[Any, ...]) -> Any:
        if len(choices) == 1:
            return choices[0]
        return self.trial.suggest_categorical(name, list(choices))


MIN_RESOLUTION = 8  # smaller inputs leave nothing for the stages to downsample


def parse_space(path: Path) -> SearchSpace:
    """Read and validate a space file; every problem is a NasError naming file, line and field."""
    doc = YamlDocument.read(path, "fields (name, stem, stages, ...)")
    data = doc.data
    _reject_unknown(doc, (), data, _TOP_KEYS)
    name = _require(doc, ("name",), data, str)
    v = _Validator(doc)
    inp = data.get("input", {}) or {}
    resolution = v.choices(("input", "resolution"), inp.get("resolution", 32), int, positive=True)
    stem_data = _require(doc, ("stem",), data, dict)
    _reject_unknown(doc, ("stem",), stem_data, {"channels", "kernel", "stride", "activation"})
    stem = {
        "channels": v.choices(
            ("stem", "channels"), _require(doc, ("stem", "channels"), stem_data), int, mult8=True
        ),
        "kernel": v.scalar(("stem", "kernel"), stem_data.get("kernel", 3), int, odd=True),
        "stride": v.scalar(("stem", "stride"), stem_data.get("stride", 1), int, stride=True),
        "activation": v.scalar(
            ("stem", "activation"), stem_data.get("activation", "relu"), str, among=ACTIVATIONS
        ),
    }
    ops = {op: v.op(("ops", op), spec) for op, spec in (data.get("ops") or {}).items()}
    raw_defaults = data.get("block_choices") or {}
    _reject_unknown(doc, ("block_choices",), raw_defaults, _BLOCK_KEYS)
    defaults = v.block_values(("block_choices",), raw_defaults, ops)
    stages_data = _require(doc, ("stages",), data, list)
    if not stages_data:
        raise doc.error(("stages",), "needs at least one stage")
    stages = tuple(v.stage(i, s, defaults, ops) for i, s in enumerate(stages_data))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise doc.error(("stages",), f"stage names must be unique, got {names}")
    total_stride = stem["stride"]
    for stage in stages:
        total_stride *= stage.stride
    smallest = max(MIN_RESOLUTION, total_stride)
    for i, r in enumerate(resolution):
        if r < smallest:
            where = (
                ("input", "resolution", i)
                if isinstance(inp.get("resolution"), list)
                else ("input", "resolution")
            )
            raise doc.error(
                where,
                f"must be at least {smallest} pixels (at least {MIN_RESOLUTION}, and at least the "
                f"network's total stride {total_stride}), got {r}",
            )
    head = data.get("head") or {}
    _reject_unknown(doc, ("head",), head, {"width", "activation", "dropout"})
    head_width = v.choices(("head", "width"), head.get("width"), int, mult8=True, allow_none=True)
    dropout = head.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise doc.error(("head", "dropout"), f"must be a number in [0, 1), got {dropout!r}")
    exits = _exits(doc, v, data.get("exits"), [s.name for s in stages])
    return SearchSpace(
        name=name,
        description=str(data.get("description", "")),
        path=path,
        resolution=resolution,
        stem=stem,
        ops=ops,
        stages=stages,
        head_width=head_width,
        head_activation=v.scalar(
            ("head", "activation"), head.get("activation", "relu"), str, among=ACTIVATIONS
        ),
        dropout=float(dropout),
        exits=exits,
    )


def _exits(doc: YamlDocument, v: "_Validator", data: Any, stage_names: list[str]) -> dict[str, tuple]:
    """`exits: {stage: false | true | [false, true]}`: an exit head after that stage (a list: a search
    choice). Only stages before the last may carry one (the head after the last is the final exit)."""
    if data is None:
        return {}
    _reject_unknown(doc, ("exits",), data, set(stage_names[:-1]))
    exits = {name: v.choices(("exits", name), data[name], bool) for name in stage_names if name in data}
    return {name: choices for name, choices in exits.items() if choices != (False,)}


def _require(doc: YamlDocument, fld: tuple[Any, ...], data: dict, kind: type | None = None) -> Any:
    if not isinstance(data, dict) or fld[-1] not in data:
        raise doc.error(fld, "missing required field")
    value = data[fld[-1]]
    if kind is not None and not isinstance(value, kind):
        raise doc.error(fld, f"must be a {kind.__name__}, got {value!r}")
    return value


def _reject_unknown(doc: YamlDocument, fld: tuple[Any, ...], data: Any, allowed: set[str]) -> None:
    if not isinstance(data, dict):
        raise doc.error(fld, f"must be a mapping, got {data!r}")
    for key in data:
        if key not in allowed:
            raise doc.error(fld + (key,), f"unknown field (allowed: {', '.join(sorted(allowed))})")


class _Validator:
    def __init__(self, doc: YamlDocument):
        self.doc = doc

    def scalar(
        self,
        fld,
        value,
        kind,
        *,
        positive=False,
        mult8=False,
        odd=False,
        stride=False,
        among=None,
        attention=False,
    ):
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.doc.error(fld, f"must be an integer, got {value!r}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self.doc.error(fld, f"must be a number, got {value!r}")
        if kind is bool and attention and not isinstance(value, bool) and value not in ATTENTIONS:
            raise self.doc.error(fld, f"must be true, false, {' or '.join(ATTENTIONS)}, got {value!r}")
        if kind is bool and not attention and not isinstance(value, bool):
            raise self.doc.error(fld, f"must be true or false, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise self.doc.error(fld, f"must be a string, got {value!r}")
        if (positive or mult8) and value <= 0:
            raise self.doc.error(fld, f"must be positive, got {value!r}")
        if mult8 and value % 8:
            raise self.doc.error(fld, f"channel counts must be multiples of 8, got {value}")
        if odd and (value < 1 or value % 2 == 0):
            raise self.doc.error(fld, f"kernel sizes must be odd and positive, got {value}")
        if stride and value not in (1, 2):
            raise self.doc.error(fld, f"stride must be 1 or 2, got {value}")
        if among is not None and value not in among:
            raise self.doc.error(fld, f"unknown value {value!r} (choose from {', '.join(map(str, among))})")
        return value

    def choices(self, fld, value, kind, *, allow_none=False, **checks) -> tuple:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise self.doc.error(fld, "an empty list of choices")
        out = []
        for i, item in enumerate(values):
            if item is None and allow_none:
                out.append(None)
                continue
            where = fld + (i,) if isinstance(value, list) else fld
            out.append(self.scalar(where, item, kind, **checks))
        if len(set(out)) != len(out):
            raise self.doc.error(fld, f"repeated choices {values}")
        return tuple(out)

    def attribute(self, fld, attr, value) -> tuple:
        if attr == "kernel":
            return self.choices(fld, value, int, odd=True)
        if attr == "expansion":
            return tuple(float(e) for e in self.choices(fld, value, float, positive=True))
        if attr == "groups":
            return self.choices(fld, value, int, among=(1, 2, 4, 8))
        if attr == "se":  # false, true (squeeze-excitation), or another channel attention (ATTENTIONS)
            return self.choices(fld, value, bool, attention=True)
        if attr == "activation":
            return self.choices(fld, value, str, among=ACTIVATIONS)
        return self.choices(fld, value, str, among=known_primitives())  # primitive

    def op(self, fld, spec) -> BlockSpec:
        _reject_unknown(self.doc, fld, spec, {"primitive"} | set(BLOCK_ATTRIBUTES))
        primitive = self.scalar(
            fld + ("primitive",),
            _require(self.doc, fld + ("primitive",), spec),
            str,
            among=known_primitives(),
        )
        used = primitive_attributes(primitive)
        values = {}
        for attr in BLOCK_ATTRIBUTES:
            if attr in used:
                values[attr] = self.attribute(fld + (attr,), attr, spec.get(attr, _DEFAULTS[attr]))[0]
        return BlockSpec(primitive=primitive, **values)

    def block_values(self, fld, mapping, ops) -> dict[str, Any]:
        """Validate the block keys given at `fld` (block_choices or one stage), each on its own path."""
        out: dict[str, Any] = {}
        for key in ("choose", "op", "primitive", *BLOCK_ATTRIBUTES):
            if key not in mapping:
                continue
            if key == "choose":
                out[key] = self.scalar(fld + (key,), mapping[key], str, among=("per_stage", "per_layer"))
            elif key == "op":
                out[key] = self.choices(
                    fld + (key,), mapping[key], str, among=tuple(ops) or ("<no ops defined>",)
                )
            else:
                out[key] = self.attribute(fld + (key,), key, mapping[key])
        if "op" in out and set(out) & ({"primitive"} | set(BLOCK_ATTRIBUTES)):
            raise self.doc.error(
                fld + ("op",), "give either op or block attributes (primitive, kernel, ...), not both"
            )
        return out

    def stage(self, index, spec, defaults, ops) -> StageChoices:
        """A stage's own block keys win; giving an op replaces inherited attributes and vice versa."""
        fld = ("stages", index)
        _reject_unknown(self.doc, fld, spec, _STAGE_KEYS)
        name = self.scalar(fld + ("name",), spec.get("name", f"s{index}"), str)
        if name in _RESERVED_NAMES or "." in name:
            raise self.doc.error(
                fld + ("name",), f"{name!r} is reserved or contains '.' (it names trial parameters)"
            )
        own = self.block_values(fld, spec, ops)
        if "op" in own:
            inherited = {k: v for k, v in defaults.items() if k == "choose"}
        elif set(own) & ({"primitive"} | set(BLOCK_ATTRIBUTES)):
            inherited = {k: v for k, v in defaults.items() if k != "op"}
        else:
            inherited = defaults
        merged = {**inherited, **own}
        block: dict[str, tuple] = {}
        if "op" in merged:
            block["op"] = merged["op"]
        else:
            block["primitive"] = merged.get("primitive", ("mbconv",))
            used = set().union(*(primitive_attributes(p) for p in block["primitive"]))
            for attr in BLOCK_ATTRIBUTES:
                if attr in used:
                    block[attr] = merged.get(attr, (_DEFAULTS[attr],))
        return StageChoices(
            name=name,
            stride=self.scalar(
                fld + ("stride",), _require(self.doc, fld + ("stride",), spec), int, stride=True
            ),
            depth=self.choices(
                fld + ("depth",), _require(self.doc, fld + ("depth",), spec), int, positive=True
            ),
            width=self.choices(fld + ("width",), _require(self.doc, fld + ("width",), spec), int, mult8=True),
            choose=merged.get("choose", "per_stage"),
            block=block,
        )


_RESERVED_NAMES = ("head", "stem", "resolution")
_DEFAULTS = {"kernel": 3, "expansion": 1, "groups": 1, "se": False, "activation": "relu"}
