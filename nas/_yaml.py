"""The one YAML reader of the package's data files (search spaces, hardware profiles).

Every problem is one line in one format: `file:line: field: problem` for a bad field (the line of
the deepest part of the field that exists), `file:line: invalid YAML: problem` for a syntax error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError

# libyaml's parser when PyYAML was built with it (its wheels are): the same documents, about 10x faster
# than the pure-Python one (a 25 KB profile: 0.11 s against 0.013 s to load).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, with libyaml's parser where PyYAML has it. Invalid YAML is parsed again by the
    pure-Python parser, whose `yaml.YAMLError` says what it found ("expected ',' or '}', but got ':'")."""
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        if _LOADER is yaml.SafeLoader:
            raise
    return yaml.load(text, Loader=yaml.SafeLoader)


class YamlDocument:
    """A parsed YAML mapping plus its node tree (composed when an error needs the line of a field)."""

    def __init__(self, path: Path, text: str, expected: str = "fields"):
        self.path = Path(path)
        self._text, self._nodes = text, None
        try:
            self.data = parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark is not None else str(self.path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise NasError(f"{where}: invalid YAML: {problem}") from None
        if not isinstance(self.data, dict):
            got = "an empty file" if self.data is None else type(self.data).__name__
            raise NasError(f"{self.path}:1: expected a mapping of {expected} at the top level, got {got}")

    @classmethod
    def read(cls, path: Path, expected: str = "fields") -> "YamlDocument":
        """Read and parse `path`; a file that cannot be read as UTF-8 text is one line too."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NasError(f"{path}: file not found") from None
        except IsADirectoryError:
            raise NasError(f"{path}: is a folder, not a YAML file") from None
        except OSError as exc:
            raise NasError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise NasError(f"{path}: not a UTF-8 text file") from None
        return cls(path, text, expected)

    def line_of(self, field: tuple[Any, ...]) -> int | None:
        """1-based line of the deepest node on `field` that exists."""
        if self._nodes is None:
            self._nodes = yaml.compose(self._text, Loader=_LOADER)
        node, line = self._nodes, None
        for key in field:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(key)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                node = None
        if node is not None:
            line = node.start_mark.line + 1
        return line

    def error(self, field: tuple[Any, ...] | str, problem: str) -> NasError:
        """`file:line: field: problem`; a field given as text is split at its dots."""
        if isinstance(field, str):
            field = tuple(field.split("."))
        line = self.line_of(field)
        where = f"{self.path}:{line}" if line else str(self.path)
        return NasError(f"{where}: {format_field(field)}: {problem}")


def format_field(field: tuple[Any, ...]) -> str:
    """`stages[2].kernel`: keys joined by dots, list positions in brackets."""
    text = ""
    for key in field:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text
