"""The validate tests' model: the most accurate export of the session's tiny search (`cli_run`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def exported_dir(cli_run) -> Path:
    """The most accurate exported model folder of the shared tiny search."""
    folders = sorted((cli_run.run_dir / "export").iterdir())
    assert folders
    return max(folders, key=lambda d: json.loads((d / "metrics.json").read_text())["proxy_accuracy"])


@pytest.fixture(scope="session")
def exported_model(exported_dir) -> Path:
    return exported_dir / "model.onnx"
