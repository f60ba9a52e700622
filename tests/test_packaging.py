"""A non-editable install, used from another directory, still finds the built-in spaces, profiles and data;
the wheel carries its distribution name, license, typing marker, classifiers and extras."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_install_finds_builtin_resources(tmp_path):
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    # setuptools reports packaging mistakes (a data folder missing from `packages`, a deprecated field) as
    # warnings that a quiet install hides; InformationOnly notes about editable installs are not mistakes.
    warnings = [
        line.strip()
        for line in (build.stdout + build.stderr).splitlines()
        if "Warning" in line and "InformationOnly" not in line and "bdist_wheel" not in line
    ]
    assert warnings == [], warnings
    wheel = next(wheel_dir.glob("hwnas-*.whl"))  # the index's `nas` is another project: the name is hwnas
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in packed if n.endswith(".dist-info/METADATA"))
    assert "nas/py.typed" in packed and any(n.endswith(".dist-info/licenses/LICENSE") for n in packed)
    _check_metadata(metadata)
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "nas").rglob("*.py")}
    assert sources - packed == set(), "modules missing from the wheel: add their package to pyproject.toml"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    probe = (
        "import nas, pathlib; "
        "assert pathlib.Path(nas.__file__).is_relative_to(pathlib.Path(r'%s')), nas.__file__; "
        "print(sorted(s.name for s in nas.list_spaces())); print([p.name for p in nas.list_profiles()]); "
        "d = nas.load_dataset('builtin'); print(d.x_train.shape); print('version', nas.__version__)" % target
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "['fbnet', 'mobilenet']" in done.stdout
        and "x86-cpu" in done.stdout
        and "(5000, 32, 32, 3)" in done.stdout
    )
    assert f"version {_pyproject()['project']['version']}" in done.stdout  # read from the installed metadata


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _check_metadata(metadata: str) -> None:
    """What an index page and a resolver read: the name, the license, classifiers, the extras; no URL that
    points nowhere; a default install that needs no GPU build of ONNX Runtime."""
    fields = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
    assert ["Name", "hwnas"] in fields and ["License-Expression", "MIT"] in fields
    classifiers = [value for key, value in fields if key == "Classifier"]
    assert "Typing :: Typed" in classifiers and len(classifiers) >= 5
    assert {value for key, value in fields if key == "Provides-Extra"} >= {"gpu", "openvino", "test"}
    requires = [value for key, value in fields if key == "Requires-Dist"]
    default = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("onnxruntime>=") for r in default) and any(
        r.startswith("filelock") for r in default
    )
    assert not any("gpu" in r or "openvino" in r for r in default)
    assert all("example" not in value for key, value in fields if key == "Project-URL")


# ------------------------------------------------------------------ the torch build `make setup` installs


def _torch_index_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_index", ROOT / "scripts" / "torch_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_nvidia_smi(folder: Path, output: str, status: int = 0) -> dict:
    folder.mkdir()
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\ncat <<'END'\n{output}\nEND\nexit {status}\n")
    tool.chmod(0o755)
    # a proxy setting counts as "PyTorch's index is reachable" without touching the network
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "HTTPS_PROXY": "http://proxy.invalid:1",
    }


def _run_torch_index(env: dict) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "torch_index.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_setup_picks_the_cuda_build_the_driver_supports_where_an_nvidia_gpu_is(tmp_path):
    if not sys.platform.startswith("linux"):
        return  # the choice is made on Linux only; elsewhere the default wheels are the right ones
    header = "| NVIDIA-SMI 570.86.15    Driver Version: 570.86.15    CUDA Version: 12.9     |"
    assert _run_torch_index(_fake_nvidia_smi(tmp_path / "gpu", header)) == (
        "--index-url https://download.pytorch.org/whl/cu128"
    )
    no_device = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    assert _run_torch_index(_fake_nvidia_smi(tmp_path / "no-driver", no_device, status=9)) == (
        "--index-url https://download.pytorch.org/whl/cpu"
    )


def test_torch_build_decision_table():
    script = _torch_index_script()
    assert script.torch_build(None) == "cpu"
    assert script.torch_build((13, 2)) == "cu130"
    assert script.torch_build((12, 6)) == "cu126"
    assert script.torch_build((11, 4)) == "cpu"  # a driver older than every CUDA build: the CPU build runs
    gpu = lambda: (12, 8)  # noqa: E731
    assert script.pip_arguments("linux", gpu, lambda: True).endswith("/whl/cu128")
    assert script.pip_arguments("linux", gpu, lambda: False) == ""  # offline: pip's own sources, as before
    assert script.pip_arguments("darwin", gpu, lambda: True) == ""
