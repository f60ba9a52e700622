"""deploy_train: longer training of an exported architecture, with optional distillation, and re-export;
resumed after a kill to the same weights; several models at once, one failing without stopping the others."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from _serial_executor import SerialExecutor

from nas.cli import main
from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import ProxyTrainer, TrainingRecipe
from nas.export import (
    DEPLOYED_SUFFIX,
    STATE_FILE,
    EpochDone,
    deploy_train,
    distillation_loss,
    pareto_exports,
    train_exports,
)
from nas.export._checkpoint import load_state
from nas.export._folder import EXPORTED_AS
from nas.export._many import ProgressLines
from nas.space import Architecture

ROOT = Path(__file__).resolve().parents[1]


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


# --- resumable deployment training ----------------------------------------------------------------

KILLED_AFTER_EPOCH_1 = """
import sys, time, torch
torch.set_num_threads(1)
from nas.export import deploy_train

def hold(p):
    if p.epoch == 1:  # epoch 1 is checkpointed: say so, then wait to be killed
        print("checkpointed", flush=True)
        time.sleep(600)

deploy_train(sys.argv[1], dataset=sys.argv[2], epochs=3, out=sys.argv[3], progress=hold)
"""


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}


def test_a_killed_training_resumes_to_the_weights_of_an_uninterrupted_one(tiny_exports, tmp_path):
    (source, _), data_file = tiny_exports
    straight = deploy_train(source, dataset=data_file, epochs=3, out=tmp_path / "straight")

    out = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_AFTER_EPOCH_1, str(source), str(data_file), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 240)  # never wait forever on a stuck child
        line = child.stdout.readline() if ready else "(nothing within 240 s)"
        assert line.strip() == "checkpointed", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert load_state(out / STATE_FILE)["epoch"] == 1 and not (out / "model.onnx").exists()

    again = subprocess.run(
        [sys.executable, "-m", "nas", "train", str(source), "--dataset", str(data_file), "--epochs", "3"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()  # not a terminal: one progress line per epoch, with an ETA
    assert [line.split(": ")[1].split(",")[0] for line in lines if ": epoch " in line] == [
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert all("ETA" in line and "resumed after epoch 1" in line for line in lines if ": epoch " in line)
    assert str(out / "model.onnx") in again.stdout

    expected, resumed = load_state(straight / STATE_FILE), load_state(out / STATE_FILE)
    assert expected["epoch"] == resumed["epoch"] == 3
    assert expected["model"].keys() == resumed["model"].keys()
    assert all(torch.equal(expected["model"][k], resumed["model"][k]) for k in expected["model"])
    assert read(straight, "metrics.json")["accuracy"] == read(out, "metrics.json")["accuracy"]


def test_another_command_in_the_same_folder_is_refused_and_a_finished_one_is_not_retrained(
    tiny_exports, tmp_path
):
    (source, _), data_file = tiny_exports
    out = deploy_train(source, dataset=data_file, epochs=2, out=tmp_path / "d")
    first = read(out, "metrics.json")
    for kwargs, phrase in (({"epochs": 3}, "epochs 2, not 3"), ({"epochs": 2, "seed": 1}, "seed 0, not 1")):
        with pytest.raises(NasError, match="holds the training of another command") as err:
            deploy_train(source, dataset=data_file, out=out, **kwargs)
        assert phrase in str(err.value) and "\n" not in str(err.value)
    epochs_run = []
    deploy_train(source, dataset=data_file, epochs=2, out=out, progress=epochs_run.append)
    assert epochs_run == [] and read(out, "metrics.json")["accuracy"] == first["accuracy"]
    assert read(out, "metrics.json")["train_seconds"] == first["train_seconds"]

    (tmp_path / "other").mkdir()
    shutil.copy(out / "spec.json", tmp_path / "other" / "spec.json")  # a model folder nas train did not write
    with pytest.raises(NasError, match="without a nas train checkpoint"):
        deploy_train(source, dataset=data_file, epochs=2, out=tmp_path / "other")


def test_a_finished_export_is_not_exported_again_unless_cut_short_or_asked_otherwise(
    tiny_exports, tmp_path, monkeypatch
):
    """A re-run of a finished training returns its folder as it is (the ONNX export takes seconds); a folder
    whose export has no mark (killed before the end, or written before the mark existed) is exported
    again, and so is one asked for from another source path or in another format."""
    from nas.export import _deploy

    (source, _), data_file = tiny_exports
    out = deploy_train(source, dataset=data_file, epochs=1, out=tmp_path / "d")
    marked = read(out, "metrics.json")
    assert marked[EXPORTED_AS]
    exports = []
    real_export = _deploy._export
    monkeypatch.setattr(_deploy, "_export", lambda *a, **k: exports.append(a) or real_export(*a, **k))
    assert deploy_train(source, dataset=data_file, epochs=1, out=out) == out
    assert exports == [] and read(out, "metrics.json") == marked

    unmarked = {k: v for k, v in marked.items() if k != EXPORTED_AS}
    (out / "metrics.json").write_text(json.dumps(unmarked))
    deploy_train(source, dataset=data_file, epochs=1, out=out)
    again = read(out, "metrics.json")  # exported again (evaluation seconds aside, the same), marked again
    assert len(exports) == 1 and again[EXPORTED_AS] == marked[EXPORTED_AS]
    assert again["accuracy"] == marked["accuracy"] and again["train_seconds"] == marked["train_seconds"]

    deploy_train(source / "spec.json", dataset=data_file, epochs=1, out=out)  # the same folder, spelled so
    assert len(exports) == 1
    monkeypatch.chdir(source.parent)
    deploy_train(source.name, dataset=data_file, epochs=1, out=out)  # another spelling: `source` recorded
    assert len(exports) == 2

    def cut_short(path, data):  # a kill after spec.json, before model.onnx and metrics.json
        if Path(path).name == "model.onnx":
            raise OSError("killed")
        return real_write(path, data)

    from nas.export import _folder

    real_write = _folder.write_atomic
    monkeypatch.setattr(_folder, "write_atomic", cut_short)
    with pytest.raises(OSError):  # the absolute spelling: another export than the one marked
        deploy_train(source, dataset=data_file, epochs=1, out=out)
    monkeypatch.setattr(_folder, "write_atomic", real_write)
    deploy_train(source.name, dataset=data_file, epochs=1, out=out)  # the marked one: its mark went first
    assert len(exports) == 4

    monkeypatch.setattr(_deploy, "check_export_format", lambda fmt: None)
    monkeypatch.setattr(_deploy, "_export", lambda *a, **k: exports.append(a[-1]))
    deploy_train(source, dataset=data_file, epochs=1, out=out, export_format="tflite")
    assert exports[-1] == "tflite"


def test_a_dataset_moved_with_its_project_is_the_same_dataset(tiny_exports, tmp_path):
    """The checkpoint knows the dataset by its content, not its path: the finished training stays finished
    after the file moves, also for a checkpoint that recorded the path; other content is still refused."""
    from nas.export._checkpoint import digest, load_state, save_state

    (source, _), data_file = tiny_exports
    out = deploy_train(source, dataset=data_file, epochs=1, out=tmp_path / "d")
    first = read(out, "metrics.json")
    moved = tmp_path / "elsewhere" / "data.npz"
    moved.parent.mkdir()
    shutil.copy(data_file, moved)
    epochs_run = []
    deploy_train(source, dataset=moved, epochs=1, out=out, progress=epochs_run.append)
    assert epochs_run == [] and read(out, "metrics.json")["train_seconds"] == first["train_seconds"]

    state = load_state(out / STATE_FILE)  # as a checkpoint records the dataset with its path (name)
    summary = load_dataset(str(data_file)).describe()
    state["command"] = {**state["command"], "dataset": digest(summary), "dataset_name": summary["name"]}
    save_state(out / STATE_FILE, state)
    deploy_train(source, dataset=moved, epochs=1, out=out, progress=epochs_run.append)
    assert epochs_run == []

    with np.load(data_file) as arrays:
        other = {**arrays, "x": arrays["x"] // 2}  # other images: other statistics
    np.savez(tmp_path / "darker.npz", **other)
    with pytest.raises(NasError, match="holds the training of another command.*content changed"):
        deploy_train(source, dataset=tmp_path / "darker.npz", epochs=1, out=out)


def test_a_damaged_checkpoint_is_a_one_line_error(tiny_exports, tmp_path):
    (source, _), data_file = tiny_exports
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / STATE_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(NasError, match="damaged training checkpoint") as err:
        deploy_train(source, dataset=data_file, epochs=1, out=tmp_path / "d")
    assert "\n" not in str(err.value)


def test_progress_lines_without_a_terminal():
    stream = io.StringIO()
    progress = ProgressLines(stream)
    progress(EpochDone(Path("00_abc"), 3, 10, 2, 5.0))
    assert stream.getvalue() == "00_abc: epoch 3/10, 0:05 elapsed, ETA 0:35 (resumed after epoch 2)\n"


@pytest.fixture
def run_copy(tiny_exports, tmp_path):
    """The tiny run with its exports, copied: what these tests train lands next to the copies."""
    (source, _), data_file = tiny_exports
    run_dir = shutil.copytree(source.parent.parent, tmp_path / "run")
    for deployed in (run_dir / "export").glob(f"*{DEPLOYED_SUFFIX}"):
        shutil.rmtree(deployed)
    return run_dir, data_file


def test_pareto_trains_every_exported_model(run_copy, capsys):
    run_dir, data_file = run_copy
    exported = pareto_exports(run_dir)
    assert (
        main(["train", str(run_dir), "--pareto", "--dataset", str(data_file), "--epochs", "1", "--quiet"])
        == 0
    )
    out = capsys.readouterr().out
    for folder in exported:
        assert (folder.parent / f"{folder.name}{DEPLOYED_SUFFIX}" / "model.onnx").is_file()
        assert str(folder.parent / f"{folder.name}{DEPLOYED_SUFFIX}" / "model.onnx") in out


def test_one_failing_model_does_not_stop_the_others(run_copy, tmp_path, capsys):
    run_dir, data_file = run_copy
    good = pareto_exports(run_dir)[0]
    broken = shutil.copytree(good, tmp_path / "broken")
    (broken / "spec.json").write_text("{oops")
    code = main(["train", str(broken), str(good), "--dataset", str(data_file), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 1 and f"nas: error: {broken}: " in err and "1 of 2 models failed" in err
    assert (good.parent / f"{good.name}{DEPLOYED_SUFFIX}" / "model.onnx").is_file()


def test_models_train_in_parallel_as_tasks(run_copy, tmp_path, ray_executor):
    run_dir, data_file = run_copy
    good = pareto_exports(run_dir)[0]
    missing = tmp_path / "missing"
    outcomes = train_exports(
        [good, missing], executor=ray_executor, dataset=str(data_file), epochs=1, train_subset=32
    )
    by_source = {o.source: o for o in outcomes}
    assert by_source[missing].error and "exported model folder not found" in by_source[missing].error
    assert by_source[good].error is None and (by_source[good].out / "model.onnx").is_file()
    assert by_source[good].metrics["epochs"] == 1


def test_bad_workers_and_out_with_several_models_are_refused(run_copy, tmp_path, capsys):
    run_dir, data_file = run_copy
    assert main(["train", str(run_dir), "--pareto", "--workers", "0"]) == 2
    assert "--workers: must be an integer >= 1" in capsys.readouterr().err
    first = pareto_exports(run_dir)[0]
    assert main(["train", str(first), str(tmp_path / "x"), "--out", str(tmp_path / "o")]) == 2
    assert "one output folder for 2 models" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--pareto"]) == 2
    assert "not a nas run directory" in capsys.readouterr().err
