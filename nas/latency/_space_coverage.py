"""Which node kinds a search space can produce, and which of its choices produce them.

Before a search predicts latency with a profile, every kind the space can produce must be one the
profile's device measured (its `Coverage`), or the search would optimize prices the device never
showed. `space_kinds` builds each distinct part the space can contain (the stem, every block option
of every stage at that stage's input size, with and without a change of width, and the head) and
featurizes it; `refusal` turns the kinds a profile lacks into one line naming the space choices that
produce them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nas.latency._coverage import Coverage
from nas.latency._op_kinds import KINDS
from nas.space import BLOCK_ATTRIBUTES, BlockSpec, SearchSpace, primitive_attributes


@dataclass(frozen=True)
class Producer:
    """One way a space produces a kind: a fixed part ("stem", "head") or a block's choice values."""

    part: str
    choices: tuple[tuple[str, Any], ...] = ()


def _out_size(size: int, stride: int) -> int:
    return -(-size // stride)


def _block_options(space: SearchSpace, stage) -> list[tuple[BlockSpec, tuple[tuple[str, Any], ...]]]:
    if "op" in stage.block:
        return [(space.ops[op], (("op", op),)) for op in stage.block["op"]]
    options = []
    for primitive in stage.block["primitive"]:
        attributes = [a for a in BLOCK_ATTRIBUTES if a in primitive_attributes(primitive)]
        for values in itertools.product(*(stage.block[a] for a in attributes)):
            choices = (("primitive", primitive), *zip(attributes, values))
            options.append((BlockSpec(primitive=primitive, **dict(zip(attributes, values))), choices))
    return options


def space_kinds(space: SearchSpace, num_classes: int = 10) -> dict[str, list[Producer]]:
    """kind -> every producer of it in `space` (see the module docstring). A few seconds for the
    `mobilenet` space: thousands of tiny forward passes, run on one thread (more threads only wait
    on each other at this size)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _space_kinds(space.path, space, num_classes)[0]
    finally:
        torch.set_num_threads(threads)


def kind_examples(space: SearchSpace, num_classes: int = 10) -> dict[str, tuple]:
    """kind -> (build, input shape) of one part of `space` that produces it, at the shape it runs at
    (what `nas profile bundle` adds so that a bundle measures every kind its space can produce)."""
    space_kinds(space, num_classes)
    return _space_kinds(space.path, space, num_classes)[1]


@lru_cache(maxsize=8)
def _space_kinds(
    _path, space: SearchSpace, num_classes: int
) -> tuple[dict[str, list[Producer]], dict[str, tuple]]:
    from torch import nn

    from nas.blocks import build_block, conv_bn
    from nas.latency._arch_features import module_features
    from nas.latency._trace import traced_features

    found: dict[str, list[Producer]] = {}
    examples: dict[str, tuple] = {}
    cache: dict[tuple, list[str]] = {}

    def add(key: tuple, build, shape: tuple[int, ...], producer: Producer, real_shape=None) -> None:
        if key not in cache:
            features = traced_features(build(), shape)
            produced = (features or module_features(build(), shape)).kinds
            cache[key] = [kind for kind in KINDS if kind in produced]  # a fixed order, whatever the hash seed
        for kind in cache[key]:
            examples.setdefault(kind, (build, real_shape or shape))
            if producer not in found.setdefault(kind, []):
                found[kind].append(producer)

    stem = space.stem
    for resolution in space.resolution:
        size = resolution
        for channels in stem["channels"]:
            add(
                ("stem", channels, size),
                lambda c=channels: conv_bn(3, c, stem["kernel"], stem["stride"], act=stem["activation"]),
                (1, 3, size, size),
                Producer("stem"),
            )
        size = _out_size(size, stem["stride"])
        widths_in = tuple(stem["channels"])
        for stage in space.stages:
            # a block's kinds depend on its shape only through whether it changes width (a projection)
            # or keeps it (a residual), and its stride: one shape of each, at the smallest widths
            pairs = set()
            if max(widths_in) != min(stage.width) or min(widths_in) != max(stage.width):
                c_in = min(widths_in)
                pairs.add((c_in, min((w for w in stage.width if w != c_in), default=c_in), stage.stride))
            if set(widths_in) & set(stage.width):
                same = min(set(widths_in) & set(stage.width))
                pairs.add((same, same, stage.stride))
            if max(stage.depth) > 1:
                pairs.add((min(stage.width), min(stage.width), 1))
            for spec, choices in _block_options(space, stage):
                producer = Producer(stage.name, choices)
                for c_in, width, stride in sorted(pairs):
                    # kinds see the output height only through its bucket (<= 4, <= 8, larger): an input
                    # that keeps the bucket but is at most 9 pixels out is as good and far cheaper
                    small = min(size, 9 * stride)
                    add(
                        ("block", spec, c_in, width, stride, small),
                        lambda s=spec, c=c_in, w=width, st=stride: build_block(s, c, w, st),
                        (1, c_in, small, small),
                        producer,
                        (1, c_in, size, size),
                    )
            size, widths_in = _out_size(size, stage.stride), tuple(stage.width)
        for head_width in space.head_width:
            for c_in in sorted(set(widths_in)):

                def head(h=head_width, c=c_in):
                    conv = conv_bn(c, h, act=space.head_activation) if h else nn.Identity()
                    return nn.Sequential(
                        conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(h or c, num_classes)
                    )

                add(("head", head_width, c_in, size), head, (1, c_in, size, size), Producer("head"))
    return {kind: found[kind] for kind in KINDS if kind in found}, examples


def refusal(
    space: SearchSpace, coverage: Coverage, profile_name: str, priced: set[str] | None = None
) -> str | None:
    """The one-line refusal for a space whose kinds `coverage` lacks (None when it covers them all).

    Each missing kind (spatial buckets joined: ``conv_dense_k7_s/m/l``) is followed by the choice
    values that produce it: each attribute whose producing values are fewer than the space offers
    (e.g. ``primitive fused_mbconv, kernel 7``), the fixed parts (``stem``, ``head``), or ``every block
    of <stage>`` when every option does.
    """
    kinds = space_kinds(space)
    missing = [kind for kind in kinds if not coverage.covers(kind)]
    if not missing:
        return None
    offered: dict[str, set] = {}
    for producers in kinds.values():
        for producer in producers:
            for attribute, value in producer.choices:
                offered.setdefault(attribute, set()).add(value)
    groups: dict[str, list[str]] = {}  # why -> kinds
    for kind in missing:
        groups.setdefault(_why(kinds[kind], offered), []).append(kind)
    unpriced = [kind for kind in missing if priced is not None and kind not in priced]
    produced = "; ".join(f"{_compact(group)} ({why})" for why, group in groups.items())
    text = (
        f"space {space.name} produces node kinds the profile {profile_name} has never measured: {produced}; "
        "measure them (nas profile bundle/measure)"
    )
    if unpriced:
        return text + f"; no prior prices {', '.join(unpriced)}, so --allow-extrapolation cannot help"
    return text + " or pass --allow-extrapolation"


def _why(producers: list[Producer], offered: dict[str, set]) -> str:
    """The choice values (or fixed parts) that produce a kind, e.g. 'primitive fused_mbconv, kernel 7'."""
    named = sorted({p.part for p in producers if not p.choices})
    blocks = [p for p in producers if p.choices]
    narrowed = []
    for attribute in sorted(offered):
        values = {dict(p.choices).get(attribute) for p in blocks} - {None}
        if values and values != offered[attribute]:
            narrowed.append(f"{attribute} {'/'.join(str(v).lower() for v in sorted(values, key=str))}")
    if blocks and not narrowed:
        narrowed = [f"every block of {stage}" for stage in sorted({p.part for p in blocks})]
    return ", ".join(narrowed + named)


def _compact(kinds: list[str]) -> str:
    """conv_dense_k3_s, conv_dense_k3_m, conv_dense_k3_l -> conv_dense_k3_s/m/l."""
    stems: dict[str, list[str]] = {}
    for kind in kinds:
        head, _, bucket = kind.rpartition("_")
        if kind.startswith("conv_") and bucket in ("s", "m", "l"):
            stems.setdefault(head, []).append(bucket)
        else:
            stems.setdefault(kind, [])
    return ", ".join(f"{head}_{'/'.join(b)}" if b else head for head, b in stems.items())


def check_space_coverage(space: SearchSpace, profile, *, allow_extrapolation: bool = False) -> list[str]:
    """Refuse (`NasError`, one line) a search whose space produces kinds the profile never measured,
    unless `allow_extrapolation` and its prior prices them all. Returns the extrapolated kinds."""
    from nas.errors import NasError

    predictor = profile.predictor
    priced = predictor.prior.kinds() if predictor.prior is not None else set()
    message = refusal(space, predictor.coverage, profile.name, priced)
    if message is None:
        return []
    missing = [kind for kind in space_kinds(space) if not predictor.coverage.covers(kind)]
    if not allow_extrapolation or any(kind not in priced for kind in missing):
        raise NasError(message)
    return missing
