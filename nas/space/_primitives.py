"""The primitive registry: one declaration per block primitive, readable without torch.

A declaration carries everything the package needs to know about a primitive: its name in space files,
the block attributes it uses (a depthwise-separable block has no expansion ratio, so none is sampled),
the short code of `Architecture.summary`, the identity-shortcut rule, how the latency model counts
operators it emits that the built-in table lacks, and the function that builds its torch body:

    @declare_primitive("conv_elu", attributes={"kernel"}, short="CE",
                       latency={"Elu": "activation_relu"}, trace={"elu": "Elu"})
    def conv_elu(c_in, c_out, stride, spec):
        return torch.nn.Sequential(...)

The built-in primitives are declared the same way in `nas.blocks`, which this registry imports on first
use; that module imports torch only when a block is built, so spaces validate and sample without torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nas.errors import NasError

BLOCK_ATTRIBUTES = ("kernel", "expansion", "groups", "se", "activation")
ACTIVATIONS = ("relu", "relu6", "hardswish")
# The attention a block's `se` attribute may name beside false (none) and true (squeeze-excitation):
# efficient channel attention and coordinate attention (`nas.builder.optional_se`).
ATTENTIONS = ("eca", "coord")
BUILTIN_MODULE = "nas.blocks"  # where the built-in primitives are declared


@dataclass(frozen=True)
class PrimitiveDeclaration:
    """Everything about one primitive.

    `build(c_in, c_out, stride, spec) -> torch.nn.Module` makes the block's body; with `residual`, the
    identity shortcut is added when stride is 1 and c_in == c_out. `latency` maps an ONNX operator the
    body exports to a latency-model kind (`nas.latency` KINDS), for operators the featurizer does not
    know; `trace` maps the torch function (its `__name__`, e.g. "elu") to that ONNX operator, so the
    export-free featurizer records it instead of falling back to an export.
    """

    name: str
    attributes: frozenset[str]
    short: str
    build: Callable[..., Any] | None = field(default=None, compare=False)
    residual: bool = True
    latency: Mapping[str, str] = field(default_factory=dict)
    trace: Mapping[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, PrimitiveDeclaration] = {}
_builtins = {"loaded": False}


def declare_primitive(
    name: str,
    attributes: set[str] | frozenset[str] | tuple[str, ...] = (),
    *,
    short: str | None = None,
    build: Callable[..., Any] | None = None,
    residual: bool = True,
    latency: Mapping[str, str] | None = None,
    trace: Mapping[str, str] | None = None,
):
    """Declare a primitive. With `build`, returns its declaration; without, returns a decorator for the
    build function (or a class taking the same arguments). Declaring a name again replaces it."""
    _ensure_builtins()  # first, so that a user's declaration of a built-in name replaces the built-in
    unknown = set(attributes) - set(BLOCK_ATTRIBUTES)
    if unknown:
        raise NasError(
            f"primitive {name!r}: unknown attributes {sorted(unknown)} (known: {', '.join(BLOCK_ATTRIBUTES)})"
        )
    if not name or not name.replace("_", "").isalnum():
        raise NasError(f"primitive {name!r}: a name is letters, digits and underscores")

    def register(function: Callable[..., Any] | None) -> Any:
        _REGISTRY[name] = PrimitiveDeclaration(
            name=name,
            attributes=frozenset(attributes),
            short=short or name,
            build=function,
            residual=residual,
            latency=MappingProxyType(dict(latency or {})),
            trace=MappingProxyType(dict(trace or {})),
        )
        return function

    if build is not None:
        register(build)
        return _REGISTRY[name]
    return register


def _ensure_builtins() -> None:
    if not _builtins["loaded"]:
        _builtins["loaded"] = True
        importlib.import_module(BUILTIN_MODULE)


def get_primitive(name: str) -> PrimitiveDeclaration:
    """The declaration of `name` (KeyError when unknown)."""
    _ensure_builtins()
    return _REGISTRY[name]


def primitive_attributes(name: str) -> frozenset[str]:
    return get_primitive(name).attributes


def known_primitives() -> tuple[str, ...]:
    _ensure_builtins()
    return tuple(sorted(_REGISTRY))


def forget_primitive(name: str) -> None:
    """Remove a declaration (tests that declare a temporary primitive clean up with it)."""
    _REGISTRY.pop(name, None)


def declared_latency_ops() -> dict[str, str]:
    """ONNX operator -> latency kind over every declared primitive."""
    _ensure_builtins()
    return {op: kind for d in _REGISTRY.values() for op, kind in d.latency.items()}


def declared_traced_ops() -> dict[str, str]:
    """torch function name -> ONNX operator over every declared primitive."""
    _ensure_builtins()
    return {fn: op for d in _REGISTRY.values() for fn, op in d.trace.items()}
