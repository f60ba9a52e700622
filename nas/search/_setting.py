"""How a setting is declared once: `setting`, a `SearchConfig` field whose metadata `_arguments` derives
its flag from and `_run_dir` its part in a run's identity; `canonical_path`, how a path setting compares.
"""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path
from typing import Any, Sequence


def setting(
    default: Any,
    help: str,
    *,
    identity: bool = False,
    path: bool = False,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    flag: str | None = None,
    none_word: str | None = None,
):
    """A SearchConfig field and everything the command line and the run directory need to know about it.

    help: the flag's help (`%(default)s` shows the default); identity: part of what a run is (a resume must
    repeat it; the others, such as trials and workers, may change); path: may name a file or folder,
    compared resolved; choices, metavar, flag: the flag's choices, value name and spelling (default:
    --the-field-name); none_word: the word that spells None for an optional integer (such as 'all')."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings are immutable: use a tuple")
    meta = {
        "help": help,
        "identity": identity,
        "path": path,
        "choices": choices,
        "metavar": metavar,
        "flag": flag,
        "none_word": none_word,
    }
    return field(default=default, metadata=meta)


def canonical_path(name: str, value: Any) -> Any:
    """A path setting resolved (absolute, no `..`, links followed), decided as load_space, load_profile and
    load_dataset decide what is a path; a built-in name unchanged."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    is_path = (
        value != "builtin"
        if name == "dataset"
        else "/" in value or "\\" in value or path.suffix in (".yaml", ".yml") or path.exists()
    )
    return str(path.resolve()) if is_path else value
