"""`nas export --format tflite`: model.tflite (NHWC input, checked against PyTorch) beside model.onnx, its input
contract in spec.json and its difference in metrics.json. Without the litert extra: one line, exit 2, nothing
written. The plumbing runs here with a fake converter (a `litert_torch` whose "LiteRT model" is the module
itself); the real conversion runs only where `litert_torch` is installed (README, "LiteRT")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_easy_images

from nas._io import checkpoint_bytes
from nas.builder import build_model
from nas.cli import main
from nas.data import load_dataset
from nas.evaluate import preprocessing_spec
from nas.export import TFLITE_NAME, export_run
from nas.space import Architecture, BlockSpec, StageSpec

_BLOCK = BlockSpec("mbconv", kernel=3, expansion=2, se=True, activation="relu")
ARCH = Architecture(
    "tiny",
    16,
    8,
    3,
    1,
    "relu",
    (StageSpec("a", 2, 8, (_BLOCK,)), StageSpec("b", 2, 16, (_BLOCK,))),
    16,
    "relu",
    0.0,
)
HAVE_LITERT = importlib.util.find_spec("litert_torch") is not None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as `nas search` leaves it, with one Pareto model whose BatchNorm statistics are far
    from their initial values (a module converted in training mode would disagree)."""
    run = tmp_path_factory.mktemp("litert") / "run"
    (run / "checkpoints").mkdir(parents=True)
    x, y = make_easy_images(n_per_class=10)
    np.savez(run / "data.npz", x=x, y=y, classes=np.array(["red", "green"]))
    data = load_dataset(run / "data.npz")
    weights, seeded = build_model(ARCH, 2, seed=1).state_dict(), torch.Generator().manual_seed(0)
    for name in weights:
        if name.endswith(("running_mean", "running_var")):
            weights[name] = torch.rand(weights[name].shape, generator=seeded) + 0.5
    (run / "checkpoints" / "trial_0.safetensors").write_bytes(checkpoint_bytes(weights))
    (run / "config.json").write_text(json.dumps({"search": {"out": str(run)}}))
    record = {
        "trial": 0,
        "checkpoint": "checkpoints/trial_0.safetensors",
        "architecture": ARCH.to_dict(),
        "accuracy": 0.5,
        "latency_ms": 0.1,
        "latency_spread": 0.01,
        "params": 1000,
        "macs": 10000,
    }
    pareto = {
        "pareto": [record],
        "profile": "x86-cpu",
        "dataset": "data.npz",
        "preprocessing": preprocessing_spec(data.mean, data.std, ARCH.resolution, data.classes),
    }
    (run / "pareto.json").write_text(json.dumps(pareto))
    return run


class FakeConverter(types.ModuleType):
    """`litert_torch` and `ai_edge_litert.interpreter` in one: convert() keeps the module (in eval mode or
    not) and returns its key as the "model bytes"; the interpreter runs that module, plus `offset`."""

    def __init__(self, offset: float = 0.0):
        super().__init__("litert_torch")
        self.__version__, self.offset, self.modules, self.training = "0.0-fake", offset, {}, []

    def convert(self, module, args):
        self.training.append(any(m.training for m in module.modules()))
        data = f"fake-tflite-{len(self.modules)}".encode()
        self.modules[data] = (module, tuple(args[0].shape))
        return types.SimpleNamespace(model_content=lambda: data)

    def Interpreter(self, model_content):  # noqa: N802 - ai_edge_litert's class name
        module, shape = self.modules[model_content]

        def run(args_0):
            assert args_0.shape == shape, f"fed {args_0.shape}, converted with {shape}"
            with torch.no_grad():
                return {"output_0": module(torch.from_numpy(args_0)).numpy() + self.offset}

        return types.SimpleNamespace(get_signature_runner=lambda name: run)


def install(monkeypatch, fake: FakeConverter | None) -> None:
    """Make `import litert_torch` and `ai_edge_litert.interpreter` give `fake` (None: fail, as uninstalled)."""
    runtime = types.SimpleNamespace(interpreter=fake) if fake else None
    monkeypatch.setitem(sys.modules, "litert_torch", fake)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", runtime)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", fake)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_without_the_extra_tflite_is_one_line_exit_2_and_writes_nothing(
    run_dir, tmp_path, monkeypatch, capsys
):
    install(monkeypatch, None)
    before = snapshot(run_dir)
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), "--format", "tflite"]) == 2
    assert "needs the litert extra: pip install 'hwnas[litert]'" in one_line_error(capsys)
    assert not out.exists() and snapshot(run_dir) == before


def test_an_unknown_format_is_one_line_exit_2(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), "--format", "coreml"]) == 2
    assert "unknown export format 'coreml'" in one_line_error(capsys)
    assert not out.exists()


def test_tflite_beside_onnx_with_its_nhwc_contract_and_check(run_dir, tmp_path, monkeypatch, capsys):
    fake = FakeConverter()
    install(monkeypatch, fake)
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), "--format", "tflite"]) == 0
    (folder,) = out.iterdir()
    assert fake.training == [False]  # converted in eval mode: BatchNorm with its running statistics
    assert (folder / TFLITE_NAME).read_bytes() == b"fake-tflite-0" and (folder / "model.onnx").is_file()
    spec = json.loads((folder / "spec.json").read_text())
    onnx_pre, tflite = spec["preprocessing"], spec["tflite"]
    r = ARCH.resolution
    assert tflite["file"] == TFLITE_NAME and tflite["converter"] == "litert-torch 0.0-fake"
    assert (
        tflite["preprocessing"]["input_shape"] == [1, r, r, 3] and tflite["preprocessing"]["layout"] == "NHWC"
    )
    for key in ("mean", "std", "classes", "scale", "channel_order"):
        assert tflite["preprocessing"][key] == onnx_pre[key]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["tflite_vs_torch_max_abs_diff"] < 1e-5 and metrics["onnx_vs_torch_max_abs_diff"] < 1e-3
    assert f"{folder / TFLITE_NAME}  (LiteRT vs PyTorch max |diff|" in capsys.readouterr().out

    assert main(["export", str(run_dir), "--out", str(out)]) == 0  # ONNX only: the stale tflite goes
    assert not (folder / TFLITE_NAME).exists() and "tflite" not in json.loads(
        (folder / "spec.json").read_text()
    )


def test_a_tflite_model_that_disagrees_is_exit_1_and_writes_nothing(run_dir, tmp_path, monkeypatch, capsys):
    install(monkeypatch, FakeConverter(offset=0.01))
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), "--format", "tflite"]) == 1
    assert "LiteRT model disagrees with PyTorch: max |diff| = 1.00e-02" in one_line_error(capsys)
    assert not any(p.is_file() for p in out.rglob("*"))


def test_the_converter_is_an_extra_the_default_install_does_not_pull():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("litert-torch") for r in project["optional-dependencies"]["litert"])
    assert not any("litert" in r for r in project["dependencies"] + project["optional-dependencies"]["test"])


@pytest.mark.skipif(not HAVE_LITERT, reason="litert_torch is not importable (pip install 'hwnas[litert]')")
def test_real_litert_conversion_matches_torch_and_onnx(run_dir, tmp_path):
    """The real converter (~1 min): the written model.tflite, run on NHWC input by LiteRT, gives the logits
    ONNX Runtime gives on the same images in NCHW; `import nas` does not import the converter."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    (model,) = export_run(run_dir, tmp_path / "export", export_format="tflite")
    print(
        f"converted in {json.loads(model.metrics.read_text())['tflite_conversion_s']} s, "
        f"max |diff| vs PyTorch {model.tflite_max_abs_diff:.1e}"
    )
    assert model.tflite_max_abs_diff <= 1e-3
    images = np.random.default_rng(1).normal(size=(2, 3, ARCH.resolution, ARCH.resolution)).astype(np.float32)
    onnx_logits = ort.InferenceSession(str(model.onnx)).run(None, {"input": images})[0]
    runner = Interpreter(model_content=model.tflite.read_bytes()).get_signature_runner("serving_default")
    tflite_logits = np.concatenate(
        [runner(args_0=image[None].transpose(0, 2, 3, 1))["output_0"] for image in images]
    )
    assert np.max(np.abs(tflite_logits - onnx_logits)) <= 1e-3
    code = "import sys, nas, nas.export, nas.cli; print('litert_torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )


def test_nas_train_writes_tflite_beside_the_trained_onnx_and_drops_it_when_run_without(
    run_dir, tmp_path, monkeypatch, capsys
):
    fake = FakeConverter()
    install(monkeypatch, fake)
    (exported,) = export_run(run_dir, tmp_path / "export")
    out = tmp_path / "trained"
    command = ["train", str(exported.directory), "--dataset", str(run_dir / "data.npz"), "--epochs", "1"]
    assert main([*command, "--out", str(out), "--quiet", "--format", "tflite"]) == 0
    assert (out / TFLITE_NAME).read_bytes().startswith(b"fake-tflite-") and fake.training == [False]
    assert json.loads((out / "spec.json").read_text())["tflite"]["preprocessing"]["layout"] == "NHWC"
    assert json.loads((out / "metrics.json").read_text())["tflite_vs_torch_max_abs_diff"] < 1e-5
    # the format is no part of the training: the same command without it only exports again, ONNX alone
    assert main([*command, "--out", str(out), "--quiet"]) == 0
    assert not (out / TFLITE_NAME).exists() and "tflite" not in json.loads((out / "spec.json").read_text())


def test_nas_train_and_baselines_refuse_tflite_without_the_extra_before_training(
    run_dir, tmp_path, monkeypatch, capsys
):
    install(monkeypatch, None)
    (exported,) = export_run(run_dir, tmp_path / "export")
    before = snapshot(run_dir)
    out = tmp_path / "trained"
    command = ["train", str(exported.directory), "--dataset", str(run_dir / "data.npz"), "--out", str(out)]
    assert main([*command, "--format", "tflite"]) == 2
    assert "needs the litert extra" in one_line_error(capsys) and not out.exists()
    assert main(["baselines", str(run_dir), "--format", "tflite"]) == 2
    assert "--format tflite: it formats the model folders of --export" in one_line_error(capsys)
    assert main(["baselines", str(run_dir), "--export", "--format", "tflite"]) == 2
    assert "needs the litert extra" in one_line_error(capsys)
    assert snapshot(run_dir) == before
