"""Committed benchmark results hold repository-relative paths only, never a path of the machine that ran them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import absolute_paths  # noqa: E402

RESULTS = sorted((ROOT / "results" / "benchmarks").glob("*.json"))


def test_there_are_results_to_check():
    assert RESULTS


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_no_absolute_path_in_a_committed_result(path):
    found = absolute_paths(json.loads(path.read_text()))
    assert not found, (
        f"{path.name}: absolute paths (record them with benchmarks._harness.repo_path): {found[:3]}"
    )
