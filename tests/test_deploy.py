"""deploy_train: longer training of an exported architecture, with optional distillation, and re-export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.export import deploy_train, distillation_loss
from nas.search._executor import Executor, TaskFailed
from nas.space import Architecture


class SerialExecutor(Executor):
    """Runs every task in this process (no Ray start-up in a unit test)."""

    workers = 1

    def put(self, value):
        return value

    def submit(self, fn, *args):
        handle = _Handle()
        try:
            handle.value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - mirrors RayExecutor: a task failure, not a crash
            handle.error = f"{type(exc).__name__}: {exc}"
        return handle

    def wait_one(self, handles):
        return handles[0]

    def result(self, handle):
        if handle.error is not None:
            raise TaskFailed(handle.error)
        return handle.value


class _Handle:
    value = None
    error = None


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory, tiny_space_file, tiny_dataset_file, x86_model_profile):
    """Two exported models of one tiny search (the second is a deployed copy when the front has one point)."""
    import nas
    from nas.export import export_run

    run_dir = tmp_path_factory.mktemp("deploy") / "run"
    before = torch.get_num_threads()
    nas.search(
        space=str(tiny_space_file),
        dataset=str(tiny_dataset_file),
        trials=4,
        population=2,
        epochs=2,
        train_subset=64,
        out=run_dir,
        executor=SerialExecutor(),
        latency="predicted",
        profile=str(x86_model_profile),
    )
    torch.set_num_threads(before)
    dirs = [m.directory for m in export_run(run_dir)]
    if len(dirs) == 1:
        dirs.append(deploy_train(dirs[0], dataset=tiny_dataset_file, epochs=3, out=run_dir / "teacher"))
    return dirs[:2], tiny_dataset_file


def read(directory, name):
    return json.loads((directory / name).read_text())


def test_deploy_trains_and_exports_a_model_that_runs(tiny_exports, tmp_path):
    (source, _), data_file = tiny_exports
    out = deploy_train(source, dataset=data_file, epochs=8)
    assert out == source.parent / f"{source.name}-deployed"
    spec, metrics, src_spec = read(out, "spec.json"), read(out, "metrics.json"), read(source, "spec.json")
    assert (
        spec["architecture"] == src_spec["architecture"]
        and spec["preprocessing"] == src_spec["preprocessing"]
    )
    assert metrics["epochs"] == 8 and metrics["teacher"] is None and metrics["train_seconds"] > 0
    assert metrics["proxy_accuracy"] == read(source, "metrics.json")["proxy_accuracy"]
    assert metrics["validation_split_matches_search"] is True
    assert metrics["onnx_vs_torch_max_abs_diff"] <= 1e-3
    assert metrics["accuracy"] > 0.8  # two classes that differ by colour: far above chance (0.5)

    # The ONNX model alone reproduces the recorded accuracy on the validation split, at batch 1 and 4.
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    pre = json.loads(meta["nas.preprocessing"])
    assert pre == spec["preprocessing"] and json.loads(meta["nas.training"])["epochs"] == 8
    dataset = load_dataset(data_file, seed=0)
    x = (
        ((dataset.x_val.astype(np.float32) / 255 - pre["mean"]) / pre["std"])
        .transpose(0, 3, 1, 2)
        .astype(np.float32)
    )
    for batch in (1, 4):
        assert session.run(None, {"input": x[:batch]})[0].shape == (batch, spec["num_classes"])
    predictions = session.run(None, {"input": x})[0].argmax(1)
    assert abs(float((predictions == dataset.y_val).mean()) - metrics["accuracy"]) < 1e-9


def test_without_teacher_it_is_the_proxy_trainer_run_for_longer(tiny_exports, tmp_path):
    (source, _), data_file = tiny_exports
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the proxy trainer: a different thread count sums in another order
    # seed 0: the search's own split, so both normalise with the exact statistics of the training split
    out = deploy_train(source, dataset=data_file, epochs=3, train_subset=40, seed=0, out=tmp_path / "d")
    arch = Architecture.from_dict(read(source, "spec.json")["architecture"])
    expected = ProxyTrainer(TrainingRecipe(epochs=3, train_subset=40)).train(
        arch, load_dataset(data_file, seed=0), 0
    )
    torch.set_num_threads(before)
    metrics = read(out, "metrics.json")
    assert metrics["accuracy"] == expected.accuracy and metrics["val_loss"] == pytest.approx(
        expected.val_loss, rel=1e-5
    )


def test_distillation_uses_the_teacher_and_changes_the_result(tiny_exports, tmp_path):
    (source, teacher), data_file = tiny_exports
    plain = deploy_train(source, dataset=data_file, epochs=2, out=tmp_path / "plain")
    kd = deploy_train(
        source,
        dataset=data_file,
        epochs=2,
        teacher=teacher,
        kd_alpha=0.9,
        kd_temperature=2.0,
        out=tmp_path / "kd",
    )
    plain_m, kd_m = read(plain, "metrics.json"), read(kd, "metrics.json")
    assert kd_m["teacher"].endswith("model.onnx") and 0 <= kd_m["teacher_accuracy"] <= 1
    assert kd_m["training"]["knowledge_distillation"]["alpha"] == 0.9
    assert kd_m["val_loss"] != plain_m["val_loss"]
    # The teacher may also be given as its model.onnx; same run, same answer.
    again = deploy_train(
        source,
        dataset=data_file,
        epochs=2,
        teacher=teacher / "model.onnx",
        kd_alpha=0.9,
        kd_temperature=2.0,
        out=tmp_path / "kd2",
    )
    assert read(again, "metrics.json")["val_loss"] == kd_m["val_loss"]


def test_distillation_loss_is_zero_for_equal_logits_and_scales_with_t_squared():
    s = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert float(distillation_loss(s, s, 4.0)) == pytest.approx(0.0, abs=1e-6)
    t = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    p = torch.softmax(t, 1)
    manual = float((p * (torch.log_softmax(t, 1) - torch.log_softmax(s, 1))).sum(1).mean())
    assert float(distillation_loss(s, t, 1.0)) == pytest.approx(manual, rel=1e-5)


def test_teacher_with_other_preprocessing_is_refused(tiny_exports, tmp_path):
    (source, teacher), data_file = tiny_exports
    import onnx

    bad = tmp_path / "bad_teacher"
    shutil.copytree(teacher, bad)
    proto = onnx.load(str(bad / "model.onnx"))
    for entry in proto.metadata_props:
        if entry.key == "nas.preprocessing":
            pre = json.loads(entry.value)
            pre["mean"] = [0.5, 0.5, 0.5]
            entry.value = json.dumps(pre)
    onnx.save(proto, str(bad / "model.onnx"))
    with pytest.raises(
        NasError, match=r"teacher .*bad_teacher.* another preprocessing than student .*mean"
    ) as err:
        deploy_train(source, dataset=data_file, epochs=1, teacher=bad, out=tmp_path / "x")
    assert "\n" not in str(err.value) and str(source) in str(err.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: shutil.rmtree(d), "exported model folder not found"),
        (lambda d: (d / "spec.json").unlink(), "not an exported model folder (missing spec.json"),
        (lambda d: (d / "spec.json").write_text("{oops"), "not valid JSON"),
        (lambda d: (d / "spec.json").write_text('{"num_classes": 2}'), "missing architecture, preprocessing"),
    ],
)
def test_bad_export_dir_is_a_one_line_error(tiny_exports, tmp_path, change, message):
    (source, _), data_file = tiny_exports
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    change(broken)
    with pytest.raises(NasError) as err:
        deploy_train(broken, dataset=data_file, epochs=1)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs: must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs: must be an integer >= 1"),
        ({"train_subset": 0}, "train_subset: must be an integer >= 1"),
        ({"kd_alpha": 1.5}, "kd_alpha: must be a number in [0, 1]"),
        ({"kd_temperature": 0}, "kd_temperature: must be a number > 0"),
        ({"teacher": "/no/such/teacher"}, "teacher not found: /no/such/teacher"),
        ({"dataset": "builtin"}, "was searched on"),  # builtin has 10 classes, the tiny run 2
    ],
)
def test_bad_settings_are_one_line_errors(tiny_exports, tmp_path, kwargs, message):
    (source, _), data_file = tiny_exports
    with pytest.raises(NasError) as err:
        deploy_train(source, **{"dataset": data_file, "out": tmp_path / "x", **kwargs})
    assert message in str(err.value) and "\n" not in str(err.value)
