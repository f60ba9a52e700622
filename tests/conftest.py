"""Shared fixtures: a tiny search space and dataset (so real searches take seconds) and one Ray for the session."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests._cli_run import CliRun, nas_command

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Profiles the tests fit or calibrate go to a folder of their own, never the user's (subprocesses inherit it).
os.environ["NAS_PROFILE_DIR"] = tempfile.mkdtemp(prefix="nas-test-profiles-")
# The built-in dataset's decoded copy: one folder per test run, shared by its xdist processes, not the user's;
# removed when the run ends (by the controller, after every xdist process: `pytest_sessionfinish`).
os.environ["NAS_CACHE_DIR"] = os.path.join(
    tempfile.gettempdir(), f"nas-test-cache-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"
)


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        import shutil

        shutil.rmtree(os.environ["NAS_CACHE_DIR"], ignore_errors=True)


TINY_SPACE = """\
name: tiny
description: a tiny space for tests
input: {resolution: 16}
stem: {channels: 8, kernel: 3, stride: 1, activation: relu}
block_choices:
  primitive: [mbconv, dwsep, fused_mbconv]
  kernel: [3, 5]
  expansion: [1, 2]
  se: [false, true]
  activation: [relu, hardswish]
stages:
  - {name: a, stride: 2, depth: [1, 2], width: [8, 16]}
  - {name: b, stride: 2, depth: [1, 2], width: [16, 24, 32]}
head: {width: [null, 32], activation: relu, dropout: 0.0}
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "dynamo_export: (a module's pytestmark) its deployment exports use the torch.export-based exporter",
    )


@pytest.fixture(autouse=True, scope="session")
def torchscript_deployment_exports():
    """Deployment exports in the test processes use the TorchScript exporter (`export_onnx(fast=True)`): tens of
    milliseconds instead of seconds each, and most tests export only to check what surrounds the model (its
    folder, training, resume). The torch.export-based exporter itself runs where a test is marked
    `dynamo_export` (the exporter's tests) and in every `nas` command run as a subprocess or on Ray workers."""
    from nas import onnx_io

    dynamo = onnx_io._export_dynamo
    patch = pytest.MonkeyPatch()
    patch.setattr(onnx_io, "_export_dynamo", onnx_io._export_torchscript)
    yield dynamo
    patch.undo()


@pytest.fixture(autouse=True, scope="module")
def dynamo_exports_where_marked(request, torchscript_deployment_exports):
    """The package's own exporter for a module marked `pytestmark = pytest.mark.dynamo_export`, its module
    fixtures included."""
    if request.node.get_closest_marker("dynamo_export") is None:
        yield
        return
    from nas import onnx_io

    patch = pytest.MonkeyPatch()
    patch.setattr(onnx_io, "_export_dynamo", torchscript_deployment_exports)
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny tensors everywhere: extra intra-op threads only add contention on a 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """Trainers set the thread count for their process; each test starts from the suite's setting."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def make_easy_images(n_per_class: int = 40, size: int = 16, classes: int = 2, seed: int = 0):
    """Classes differ by brightness and colour, so a short training run can learn them."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        base = np.zeros(3)
        base[c % 3] = 200
        noise = rng.normal(0, 25, size=(n_per_class, size, size, 3))
        xs.append(np.clip(base + 30 + noise, 0, 255).astype(np.uint8))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="session")
def tiny_dataset_file(tmp_path_factory) -> Path:
    x, y = make_easy_images()
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x, y=y, classes=np.array(["red", "green"]))
    return path


def tiny_search(out: Path, space_file: Path, dataset_file: Path, executor, **settings) -> Path:
    """The smallest real search: 2 trials of 1 epoch on 32 images of the tiny space and dataset."""
    from nas.search import search

    search(
        executor=executor,
        space=str(space_file),
        dataset=str(dataset_file),
        **{"trials": 2, "population": 2, "epochs": 1, "train_subset": 32, **settings},
        out=str(out),
    )
    return out


@pytest.fixture(scope="session")
def ray_executor():
    from nas.search import RayExecutor

    executor = RayExecutor(workers=2)
    yield executor
    executor.close()


@pytest.fixture(scope="session")
def x86_model_profile(tmp_path_factory) -> Path:
    """The shipped x86-cpu profile without its machine signature: its model predicts on any machine as it
    is (tests of the predicted-latency path, which must not calibrate for the machine they run on)."""
    import yaml

    from nas._resources import builtin_dir

    raw = yaml.safe_load((builtin_dir("hardware_profiles") / "x86-cpu.yaml").read_text())
    for key in ("machine", "measurements"):
        raw.pop(key, None)
    path = tmp_path_factory.mktemp("profiles") / "x86-model.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory, tiny_space_file, tiny_dataset_file) -> CliRun:
    """One real search through the command line (6 trials, every sampled candidate trained), then `nas export`:
    shared by the tests of the command's output, the report and validation, and made once for all the test
    processes of a session (xdist). Read it; copy it to change it."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the folder above every worker's own: one run for all of them
        root = root.parent
    made = root / "cli-run.json"
    with FileLock(str(root / "cli-run.lock")):
        if not made.exists():
            run_dir = root / "cli" / "tiny-run"  # the report names a run by its folder
            args = ("--space", str(tiny_space_file), "--dataset", str(tiny_dataset_file), "--trials", "6")
            args += ("--population", "3", "--epochs", "2", "--train-subset", "64", "--workers", "2")
            args += ("--sampler", "nsga2", "--prescreen", "1")
            searched = nas_command("search", *args, "--out", run_dir)
            assert searched.returncode == 0, searched.stderr[-3000:]
            exported = nas_command("export", run_dir)
            assert exported.returncode == 0, exported.stderr[-3000:]
            made.write_text(json.dumps({"run_dir": str(run_dir), "stdout": searched.stdout, "args": args}))
    record = json.loads(made.read_text())
    return CliRun(Path(record["run_dir"]), record["stdout"], tuple(record["args"]))
