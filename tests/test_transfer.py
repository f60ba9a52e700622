"""nas train --init: weights trained on one task start the training of another (matched by module path and
shape), frozen stages keep their weights and BatchNorm statistics, a resumed run restores its own
checkpoint, and bad transfers are one line with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_easy_images

from nas._io import checkpoint_bytes, read_json
from nas.builder import build_model
from nas.cli import main
from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import preprocessing_spec
from nas.export import STATE_FILE, deploy_train
from nas.export._checkpoint import load_state, save_state
from nas.export._transfer import plan_transfer, read_init
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


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """An architecture exported for a 2-class task, weights of it from elsewhere (a nas train folder's
    checkpoint, BatchNorm statistics not at their initial values), and a 3-class task."""
    root = tmp_path_factory.mktemp("transfer")
    x, y = make_easy_images(n_per_class=30)
    np.savez(root / "a.npz", x=x, y=y, classes=np.array(["red", "green"]))
    x, y = make_easy_images(n_per_class=30, classes=3, seed=1)
    np.savez(root / "b.npz", x=x, y=y, classes=np.array(["r", "g", "b"]))
    data = load_dataset(root / "a.npz")
    spec = {
        "architecture": ARCH.to_dict(),
        "num_classes": 2,
        "preprocessing": preprocessing_spec(data.mean, data.std, ARCH.resolution, data.classes),
    }
    export, source = root / "export", root / "source"
    for folder in (export, source):  # what nas train reads of a model folder
        folder.mkdir()
        (folder / "spec.json").write_text(json.dumps(spec))
        (folder / "metrics.json").write_text("{}")
    weights = build_model(ARCH, 2, seed=1).state_dict()
    for name in weights:
        if name.endswith("running_mean"):
            weights[name] = torch.randn_like(weights[name])
    save_state(source / STATE_FILE, {"model": weights})
    return root, export, source


def _weights(folder):
    return load_state(folder / STATE_FILE)["model"]


def test_init_takes_matching_tensors_and_freezes_the_first_stages(tasks, tmp_path):
    root, export, source = tasks
    out = deploy_train(
        export, dataset=root / "b.npz", epochs=1, init=source, freeze_stages=1, out=tmp_path / "t"
    )
    metrics, spec = read_json(out / "metrics.json", "m"), read_json(out / "spec.json", "s")
    transfer = metrics["transfer"]
    before, after = _weights(source), _weights(out)
    assert transfer["tensors_skipped"] == 2  # the classifier of the 2-class task
    assert transfer["skipped_because"] == {"classifier of other classes": 2}
    assert transfer["tensors_matched"] == len(after) - 2
    assert transfer["frozen_modules"] == ["stem", "stages.0"]
    assert spec["num_classes"] == 3 and spec["preprocessing"]["classes"] == ["r", "g", "b"]
    for name in after:
        if name.startswith(("stem.", "stages.0.")):  # weights and BatchNorm statistics as trained there
            assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["stages.1.0.body.0.0.weight"], before["stages.1.0.body.0.0.weight"])
    assert after["classifier.weight"].shape == (3, 16)


def test_an_init_run_resumes_its_own_checkpoint(tasks, tmp_path):
    root, export, source = tasks
    settings = dict(dataset=root / "b.npz", epochs=2, init=source, head_only=True)

    def stop_after_first(epoch):
        if epoch.epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        deploy_train(export, out=tmp_path / "cut", progress=stop_after_first, **settings)
    resumed = []
    deploy_train(export, out=tmp_path / "cut", progress=resumed.append, **settings)
    deploy_train(export, out=tmp_path / "whole", **settings)
    assert [e.first_epoch for e in resumed] == [1]
    cut, whole, before = _weights(tmp_path / "cut"), _weights(tmp_path / "whole"), _weights(source)
    assert all(torch.equal(cut[name], whole[name]) for name in whole)
    assert torch.equal(whole["stages.1.0.body.0.0.weight"], before["stages.1.0.body.0.0.weight"])  # frozen
    assert not torch.equal(whole["head.0.weight"], before["head.0.weight"])  # the head trained
    with pytest.raises(NasError, match="another --init, --freeze-stages or --head-only"):
        deploy_train(export, out=tmp_path / "whole", **{**settings, "head_only": False, "freeze_stages": 1})


def test_a_trial_checkpoint_file_is_an_init(tasks, tmp_path):
    _, export, source = tasks
    checkpoint = tmp_path / "trial.safetensors"
    checkpoint.write_bytes(checkpoint_bytes(_weights(source)))
    init = read_init(checkpoint)
    assert init.digest == read_init(source).digest  # the same weights as the folder's checkpoint
    transfer = plan_transfer(init, build_model(ARCH, 2), ("red", "green"), 2, 0, False, export)
    assert transfer.describe()["skipped_because"] == {"classes unknown": 2}  # a bare file names no classes


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--freeze-stages", "1"], "--freeze-stages and --head-only need --init"),
        (["--init", "{source}", "--freeze-stages", "3"], "--freeze-stages: the network has 2 stages, got 3"),
        (["--init", "{source}", "--freeze-stages", "1", "--head-only"], "give one"),
        (["--init", "{root}/missing"], "--init: not found"),
        (["--init", "{root}/unrelated.safetensors"], "no layer matches the architecture"),
    ],
)
def test_bad_transfers_are_one_line_and_write_nothing(tasks, tmp_path, capsys, flags, message):
    root, export, source = tasks
    (root / "unrelated.safetensors").write_bytes(checkpoint_bytes({"other.weight": torch.zeros(2, 2)}))
    flags = [f.format(root=root, source=source) for f in flags]
    out = tmp_path / "out"
    code = main(
        ["train", str(export), "--dataset", str(root / "b.npz"), "--epochs", "1", "--out", str(out), *flags]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
