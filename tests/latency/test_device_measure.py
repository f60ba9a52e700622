"""What a device node runs: measuring an ONNX graph without torch, fvcore or optuna installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from nas.latency import device_resource

# Makes `import torch` (fvcore, optuna) fail as it does on a board where they are not installed.
BLOCKER = """\
import sys

class _NotOnTheDevice:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "fvcore", "optuna"):
            raise ImportError(f"{name} is not installed on the device")
        return None

sys.meta_path.insert(0, _NotOnTheDevice())
"""


def tiny_onnx_model() -> bytes:
    """A 1x3x8x8 input through one 3x3 convolution and a ReLU, built with onnx alone."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.01] * 108)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def blocked_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import torch, fvcore or optuna (a sitecustomize on its path)."""
    site = tmp_path / "device_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), root]), "OMP_NUM_THREADS": "1"}


def test_the_measuring_entry_point_needs_no_torch_fvcore_or_optuna(tmp_path):
    model = tmp_path / "tiny.onnx"
    model.write_bytes(tiny_onnx_model())
    script = f"""
import json, sys
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch imported: the blocker is not active")
from nas.latency import MeasurementSettings, measure_on_device
settings = MeasurementSettings(warmup_runs=3, rounds=3, round_ms=2.0)
out = measure_on_device(open({str(model)!r}, "rb").read(), settings)
loaded = sorted(m for m in ("torch", "fvcore", "optuna") if m in sys.modules)
print(json.dumps({{"out": out, "loaded": loaded}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=blocked_env(tmp_path)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    out = report["out"]
    assert report["loaded"] == []
    assert out["median_ms"] > 0 and out["spread"] >= 0 and out["attempts"] >= 1
    assert isinstance(out["stable"], bool) and out["host"] and out["node_id"] is None


def test_the_device_resource_is_named_after_the_profile():
    assert device_resource("raspberry-pi-4") == "nas-device:raspberry-pi-4"


def test_tiny_model_is_valid_onnx():
    onnx.checker.check_model(onnx.load_from_string(tiny_onnx_model()))
