"""The `nas` command run as a user runs it: a subprocess whose output goes to pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliRun:
    """A search made by the `nas` command: its run directory (exported), what the search printed, and its
    arguments after `nas search` without `--out` (a copy of the run resumes with them)."""

    run_dir: Path
    stdout: str
    args: tuple[str, ...]


def nas_command(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m nas ARGS` in a subprocess, its stdout and stderr pipes (as in a log file)."""
    return subprocess.run(
        [sys.executable, "-m", "nas", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        timeout=timeout,
    )
