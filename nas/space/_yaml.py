"""YAML loading that can point at the line of a field, so a bad space file gets `file:line: field: problem`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError


class YamlDocument:
    """A parsed YAML file plus its node tree, used only to find line numbers for error messages."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text()
        except OSError as exc:
            raise NasError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise NasError(f"{path}: not a UTF-8 text file") from None
        try:
            self.data = yaml.safe_load(text)
            self._root = yaml.compose(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc)
            raise NasError(f"{where}: invalid YAML: {problem}") from None
        if not isinstance(self.data, dict):
            raise NasError(
                f"{path}:1: expected a mapping of fields (name, stem, stages, ...) at the top level"
            )

    def line_of(self, field: tuple[Any, ...]) -> int | None:
        """1-based line of the deepest node on `field` that exists."""
        node, line = self._root, None
        for key in field:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == key), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                node = None
        if node is not None:
            line = node.start_mark.line + 1
        return line

    def error(self, field: tuple[Any, ...], problem: str) -> NasError:
        line = self.line_of(field)
        where = f"{self.path}:{line}" if line else str(self.path)
        return NasError(f"{where}: {format_field(field)}: {problem}")


def format_field(field: tuple[Any, ...]) -> str:
    text = ""
    for key in field:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text
