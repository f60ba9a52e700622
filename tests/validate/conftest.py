"""One tiny real search + export for the whole validate test session (via the `nas` command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="session")
def exported_dir(tmp_path_factory, tiny_space_file, tiny_dataset_file) -> Path:
    """The most accurate exported model folder of a 3-trial search on the tiny space and dataset."""
    run_dir = tmp_path_factory.mktemp("validate") / "run"

    def nas(*args):
        done = subprocess.run(
            [sys.executable, "-m", "nas", *map(str, args)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    nas(
        "search",
        "--space",
        tiny_space_file,
        "--dataset",
        tiny_dataset_file,
        "--trials",
        "3",
        "--population",
        "3",
        "--epochs",
        "2",
        "--train-subset",
        "64",
        "--workers",
        "2",
        "--out",
        run_dir,
        "--quiet",
    )
    nas("export", run_dir)
    folders = sorted((run_dir / "export").iterdir())
    assert folders
    return max(folders, key=lambda d: json.loads((d / "metrics.json").read_text())["proxy_accuracy"])


@pytest.fixture(scope="session")
def exported_model(exported_dir) -> Path:
    return exported_dir / "model.onnx"
