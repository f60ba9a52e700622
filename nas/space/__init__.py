"""Search spaces: the YAML format, validation, and the `Architecture` value a trial samples."""

from __future__ import annotations

from pathlib import Path

from nas._resources import builtin_dir
from nas.errors import NasError
from nas.space._architecture import Architecture, BlockSpec, StageSpec
from nas.space._primitives import (
    ATTENTIONS,
    BLOCK_ATTRIBUTES,
    PrimitiveDeclaration,
    declare_primitive,
    declared_latency_ops,
    declared_traced_ops,
    forget_primitive,
    get_primitive,
    known_primitives,
    primitive_attributes,
)
from nas.space._schema import SearchSpace, StageChoices, parse_space

__all__ = [
    "Architecture",
    "BlockSpec",
    "StageSpec",
    "SearchSpace",
    "StageChoices",
    "ATTENTIONS",
    "BLOCK_ATTRIBUTES",
    "PrimitiveDeclaration",
    "declare_primitive",
    "declared_latency_ops",
    "declared_traced_ops",
    "forget_primitive",
    "get_primitive",
    "known_primitives",
    "primitive_attributes",
    "list_spaces",
    "load_space",
]


def list_spaces() -> list[SearchSpace]:
    """The built-in spaces, sorted by name."""
    return [parse_space(p) for p in sorted(builtin_dir("search_spaces").glob("*.yaml"))]


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A built-in space by name (`mobilenet`, `fbnet`) or any space file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise NasError(
                f"--space {path}: is a folder; give a space YAML file (or a built-in name: "
                f"{', '.join(p.stem for p in sorted(builtin_dir('search_spaces').glob('*.yaml')))})"
            )
        if not path.is_file():
            raise NasError(f"search space file not found: {path}")
        return parse_space(path)
    builtin = builtin_dir("search_spaces") / f"{name_or_path}.yaml"
    if builtin.is_file():
        return parse_space(builtin)
    names = ", ".join(p.stem for p in sorted(builtin_dir("search_spaces").glob("*.yaml")))
    raise NasError(
        f"unknown search space {str(name_or_path)!r} (built-in: {names}; or give a path to a .yaml file)"
    )
