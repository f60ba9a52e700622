"""Which attributes each block primitive uses: the torch-free half of the primitive registry.

The search space needs this to validate a space file and to sample only attributes that matter
(a depthwise-separable block has no expansion ratio). The torch implementations register
themselves under the same names in `nas.blocks`.
"""

from __future__ import annotations

BLOCK_ATTRIBUTES = ("kernel", "expansion", "groups", "se", "activation")
ACTIVATIONS = ("relu", "relu6", "hardswish")

_PRIMITIVE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "mbconv": frozenset({"kernel", "expansion", "se", "activation"}),
    "fused_mbconv": frozenset({"kernel", "expansion", "se", "activation"}),
    "dwsep": frozenset({"kernel", "se", "activation"}),
    "shuffle_bottleneck": frozenset({"kernel", "expansion", "groups", "se", "activation"}),
    "skip": frozenset(),
}


def declare_primitive(name: str, attributes: set[str] | frozenset[str]) -> None:
    """Make a new primitive name known to search spaces (called by `nas.blocks.register_primitive`)."""
    unknown = set(attributes) - set(BLOCK_ATTRIBUTES)
    if unknown:
        raise ValueError(f"primitive {name!r}: unknown attributes {sorted(unknown)}")
    _PRIMITIVE_ATTRIBUTES[name] = frozenset(attributes)


def primitive_attributes(name: str) -> frozenset[str]:
    return _PRIMITIVE_ATTRIBUTES[name]


def known_primitives() -> tuple[str, ...]:
    return tuple(sorted(_PRIMITIVE_ATTRIBUTES))
