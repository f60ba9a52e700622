"""Where trainings run, tested on the CPU: the device chosen, the GPU share each training asks Ray for, the
precision it trains in, and the user errors. CUDA itself is monkeypatched; `benchmarks/gpu_smoke.py` checks
a real GPU against the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe, autocast_dtype, describe_device, resolve_device
from nas.search import Executor, RayExecutor, SearchConfig, search
from nas.search._tasks import (
    DEFAULT_GPU_SHARE,
    prepare_candidate,
    score_candidate,
    task_resources,
    train_candidate,
    training_placement,
    with_plugins,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cuda(monkeypatch):
    """Pretend this process sees a CUDA GPU (`cuda(False)`: none); nothing is run on it."""

    def set_available(available: bool = True, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return set_available


def test_auto_trains_on_cuda_where_there_is_a_gpu_and_on_the_cpu_elsewhere(cuda):
    cuda(False)
    assert resolve_device("auto") == "cpu"
    cuda(True)
    assert resolve_device("auto") == "cuda"
    # A Ray cluster's GPUs decide, whatever the driver's machine has.
    assert resolve_device("auto", gpus=0) == "cpu"
    cuda(False)
    assert resolve_device("auto", gpus=2) == "cuda"
    assert resolve_device("cpu", gpus=2) == "cpu"


def test_cuda_without_a_gpu_and_an_unknown_device_are_one_line_errors(cuda):
    cuda(False)
    with pytest.raises(NasError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(NasError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_bf16_autocast_only_on_a_cuda_gpu_that_supports_it(cuda):
    cuda(True, bf16=True)
    assert autocast_dtype("cuda") is torch.bfloat16
    assert autocast_dtype("cpu") is None  # never on the CPU: its results stay full precision
    cuda(True, bf16=False)
    assert autocast_dtype("cuda") is None
    assert describe_device("cpu") == "cpu"


def test_each_training_asks_for_its_gpu_share_and_nothing_else_does():
    arch_args = ("arch", 10, 0)
    train = task_resources(with_plugins, ((), train_candidate, "trainer", "arch", "data", 0), 0.25)
    assert train == {"num_cpus": 1, "num_gpus": 0.25}
    assert task_resources(train_candidate, ("trainer",), 1.0) == {"num_cpus": 1, "num_gpus": 1.0}
    assert task_resources(with_plugins, ((), prepare_candidate, *arch_args), 0.25) == {"num_cpus": 1}
    assert task_resources(with_plugins, ((), score_candidate, *arch_args), 0.25) == {"num_cpus": 1}
    assert task_resources(with_plugins, ((), train_candidate), 0.0) == {"num_cpus": 1}


def test_placement_defaults_to_a_quarter_gpu_on_cuda_and_none_on_the_cpu(cuda):
    cuda(False)
    assert training_placement("auto", None, gpus=0) == ("cpu", 0.0)
    assert training_placement("auto", None, gpus=1) == ("cuda", DEFAULT_GPU_SHARE)
    assert training_placement("auto", 0.5, gpus=4) == ("cuda", 0.5)
    assert training_placement("cuda", 0, gpus=1) == ("cuda", 0.0)  # no Ray accounting: the user's choice
    with pytest.raises(NasError, match="--gpus-per-trial 0.5: there is no GPU"):
        training_placement("auto", 0.5, gpus=0)


class _Recorder:
    """Stands in for the `ray` module: records the resources of each remote function it makes."""

    def __init__(self):
        self.asked = []

    def remote(self, **options):
        self.asked.append(options)

        def wrap(fn):
            class Remote:
                @staticmethod
                def remote(*args):
                    return (fn, args)

            return Remote

        return wrap


def test_the_ray_executor_submits_trainings_with_the_gpu_share():
    executor = object.__new__(RayExecutor)  # no Ray: only the submission path
    executor._ray, executor.max_retries, executor._remote = _Recorder(), 2, {}
    executor.gpus_per_trial = 0.25
    executor.submit(with_plugins, (), train_candidate, "trainer", "arch", "data", 0)
    executor.submit(with_plugins, (), prepare_candidate, "arch", 10, 0)
    executor.submit(with_plugins, (), train_candidate, "trainer", "arch2", "data", 0)  # the same remote again
    asked = executor._ray.asked
    assert [a.get("num_gpus") for a in asked] == [0.25, None]
    assert all(a["num_cpus"] == 1 and a["max_retries"] == 2 for a in asked)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"gpus_per_trial": -1}, "gpus_per_trial: a share of one GPU"),
        ({"gpus_per_trial": 1.5}, "gpus_per_trial: a share of one GPU"),
        ({"gpus_per_trial": 0.5, "device": "cpu"}, "--device cpu trains on the CPU"),
        ({"device": "tpu"}, "device: unknown device 'tpu'"),
    ],
)
def test_bad_device_settings_are_refused(settings, message):
    with pytest.raises(NasError, match=message):
        SearchConfig(**settings)
    assert SearchConfig(gpus_per_trial=2).gpus_per_trial == 2  # whole GPUs are fine


class _NoGpuExecutor(Executor):
    workers = 1
    gpus = 0.0

    def __init__(self):
        self.closed = False

    def put(self, value):
        return value

    def submit(self, fn, *args):
        raise AssertionError("nothing runs when the device is refused")

    def wait_one(self, handles):
        raise AssertionError

    def result(self, handle):
        raise AssertionError

    def close(self):
        self.closed = True


def test_cuda_on_a_cluster_without_gpus_is_refused_before_anything_is_written(
    tmp_path, tiny_space_file, tiny_dataset_file
):
    run_dir = tmp_path / "run"
    with pytest.raises(NasError, match="device cuda: no CUDA GPU"):
        search(
            space=str(tiny_space_file),
            dataset=str(tiny_dataset_file),
            device="cuda",
            out=str(run_dir),
            executor=_NoGpuExecutor(),
        )
    assert not run_dir.exists()


def test_the_cli_says_one_line_for_a_bad_gpu_share():
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-m", "nas", "search", "--device", "cpu", "--gpus-per-trial", "0.5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--device cpu trains on the CPU" in done.stderr


def test_training_on_the_cpu_gives_the_same_result_whether_the_device_is_named_or_not():
    from tests.evaluate.test_training import easy_dataset, tiny_arch

    dataset, arch = easy_dataset(), tiny_arch()
    recipe = TrainingRecipe(epochs=1, train_subset=32, batch_size=16)
    default = ProxyTrainer(recipe).train(arch, dataset, seed=0)
    named = ProxyTrainer(recipe, device="cpu").train(arch, dataset, seed=0)
    assert (default.accuracy, default.val_loss, default.state_dict) == (
        named.accuracy,
        named.val_loss,
        named.state_dict,
    )
    assert named.device == "cpu"


def test_the_benchmark_runner_skips_the_gpu_smoke_test_with_one_line_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the benchmark would run")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "gpu_smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "skip gpu_smoke: missing a CUDA GPU" in done.stdout
    assert "== gpu_smoke" not in done.stdout
