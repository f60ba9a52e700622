"""nas.runtime runs an exported cascade with ONNX Runtime and numpy alone: checked in a process where
importing torch fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.errors import NasError
from nas.runtime import NEVER, ExitCascade, route
from tests.exits.cascade_fixture import make_cascade_folder

NO_TORCH = """
import json, sys
import numpy as np
sys.modules["torch"] = None  # any import of torch now raises ImportError
from nas.runtime import ExitCascade
folder, images = sys.argv[1], sys.argv[2]
out = ExitCascade(folder).run(np.load(images))
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None and m.split(".")[0] == "torch"]
print(json.dumps({"prediction": out.prediction.tolist(), "exit_taken": out.exit_taken.tolist()}))
"""


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    return make_cascade_folder(tmp_path_factory.mktemp("runtime"))


def test_the_cascade_runs_where_torch_cannot_be_imported(cascade, tmp_path):
    folder, _, _, x, _ = cascade
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(folder), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    here = ExitCascade(folder).run(x)
    assert got == {"prediction": here.prediction.tolist(), "exit_taken": here.exit_taken.tolist()}


def test_route_leaves_at_the_first_confident_exit():
    p = [np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]]), np.array([[0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])]
    prediction, exit_taken = route(p, [0.8])
    assert exit_taken.tolist() == [0, 1, 1] and prediction.tolist() == [0, 1, 1]
    assert route(p, [NEVER])[1].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="2 exits need 1 thresholds"):
        route(p, [0.5, 0.5])


def test_a_model_without_exits_or_with_a_missing_segment_is_one_clear_error(cascade, tmp_path):
    folder = Path(shutil.copytree(cascade[0], tmp_path / "copy"))
    (folder / "exit_segment_1.onnx").unlink()
    with pytest.raises(
        NasError, match="segment exit_segment_1.onnx named in its nas.exits metadata is missing"
    ):
        ExitCascade(folder)
    plain = tmp_path / "plain.onnx"
    plain.write_bytes((folder / "exit_segment_2.onnx").read_bytes())
    with pytest.raises(NasError, match="has no early exits"):
        ExitCascade(plain)
