"""Table-driven bad input (issue 20): command x bad input class -> exit code and a phrase of the message.

Every row calls the CLI in-process and must fail at argument or input checking: exit 2 (usage or input
error), stderr a single `nas: error: ...` line (or argparse's own `usage: ... error:` lines) containing the
phrase, no traceback, and every file under the fixture folder (which is also the working directory and the
user's profile folder) byte-for-byte as it was, with no file created or removed.

Guards make any row that would start real work (Ray workers, deployment training, a calibration that
measures networks) fail loudly instead of running it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from tests.conftest import TINY_SPACE

PROFILE_OK_HEAD = """\
name: fake
description: a fake predicted profile
latency: predicted
runtime: {engine: tensorrt}
"""


def _first(choices):
    class Trial:
        def suggest_categorical(self, name, options):
            return options[0]

    return choices.sample(Trial())


def build_fixtures(root: Path) -> None:
    """Every bad (and the few good) inputs the table refers to, as {R}/NAME."""
    from nas.space import load_space

    root.mkdir(parents=True, exist_ok=True)

    def w(name: str, text: str) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)

    def wb(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    # plain files and folders
    wb("data.npz", b"the user's data: junk bytes, not an npz")
    wb("garbage.onnx", b"\x00\x01 definitely not protobuf \xff" * 8)
    wb("empty.onnx", b"")
    wb("empty.txt", b"")
    w("notes.txt", "a user's text file\n")
    (root / "adir").mkdir()
    w("adir.onnx/keep.txt", "a folder named like a model\n")
    w("adir.yaml/keep.txt", "a folder named like a YAML file\n")
    w("adir.csv/keep.txt", "a folder named like a CSV\n")
    w("adir.html/keep.txt", "a folder named like an HTML file\n")
    wb("binary.yaml", b"\xff\xfe\x00binary\x80\x81")

    # datasets
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 16, 16, 3), dtype=np.uint8)
    y = np.repeat(np.arange(2), 20)
    np.savez(root / "tiny.npz", x=x, y=y, classes=np.array(["red", "green"]))
    np.savez(root / "nokeys.npz", a=np.zeros(3))
    np.savez(root / "badshape.npz", x=np.zeros((4, 5), dtype=np.uint8), y=np.zeros(4, dtype=int))
    np.savez(root / "onelabel.npz", x=x, y=np.zeros(40, dtype=int))
    np.savez(root / "float.npz", x=x.astype(np.float32), y=y)
    np.savez(root / "mismatch.npz", x=x, y=y[:10])
    (root / "imgroot").mkdir()  # an image folder without class folders
    w("imgroot-noimages/cat/readme.txt", "no images here\n")

    # search spaces
    w("tiny.yaml", TINY_SPACE)
    w("budget-word.yaml", "latency_budget_ms: fast\n")
    w("space-eca.yaml", TINY_SPACE.replace("se: [false, true]", "se: [false, eca]"))
    w("space-syntax.yaml", "name: bad\nstem: {channels: 8\nstages: [\n")
    w("space-unknown.yaml", TINY_SPACE + "colour: blue\n")
    w("space-width.yaml", TINY_SPACE.replace("width: [8, 16]", "width: [12, 16]"))
    w("space-empty.yaml", "")
    w("space-list.yaml", "- a\n- b\n")
    w(
        "space-nostages.yaml",
        "name: bad\ndescription: x\ninput: {resolution: 16}\n"
        "stem: {channels: 8, kernel: 3, stride: 1, activation: relu}\n",
    )
    w("space-resolution.yaml", TINY_SPACE.replace("resolution: 16", "resolution: 1"))
    w("space-depth.yaml", TINY_SPACE.replace("depth: [1, 2], width: [8, 16]", "depth: [-1], width: [8, 16]"))
    w("space-kernel.yaml", TINY_SPACE.replace("kernel: [3, 5]", "kernel: [4]"))
    w("space-activation.yaml", TINY_SPACE.replace("activation: [relu, hardswish]", "activation: [sparkle]"))
    w("space-stride.yaml", TINY_SPACE.replace("{name: a, stride: 2", "{name: a, stride: 7"))

    # hardware profiles
    w("profile-syntax.yaml", "name: x\nlatency: [predicted\n")
    w("profile-empty.yaml", "")
    w("profile-list.yaml", "- name\n- x\n")
    w("profile-missing.yaml", "name: fake\ndescription: no latency, no runtime\n")
    w("profile-kind.yaml", "name: fake\ndescription: x\nlatency: guessed\nruntime: {engine: onnxruntime}\n")
    w("profile-types.yaml", "name: [1, 2]\ndescription: 3\nlatency: measured\nruntime: onnxruntime\n")
    w("profile-unknown.yaml", PROFILE_OK_HEAD + "model: {overhead_ms: 0.1, weights: {}}\ncolour: blue\n")
    w("profile-nomodel.yaml", PROFILE_OK_HEAD)
    w("profile-badmodel.yaml", PROFILE_OK_HEAD + "model: {overhead_ms: -5, weights: nope}\n")
    w(
        "profile-threads.yaml",
        "name: fake\ndescription: x\nlatency: measured\n"
        "runtime: {engine: onnxruntime, execution_provider: CPUExecutionProvider, intra_op_threads: -3, "
        "graph_optimization: all}\n",
    )

    # measurement CSVs (profile fit / validate) and block tables (profile import)
    w("meas/missing-cols.csv", "name,ms\na.onnx,1.0\n")
    w("meas/empty.csv", "")
    w("meas/header-only.csv", "model,latency_ms\n")
    w("meas/nan.csv", "model,latency_ms\ngarbage.onnx,nan\n")
    w("meas/negative.csv", "model,latency_ms\ngarbage.onnx,-2.5\n")
    w("meas/zero.csv", "model,latency_ms\ngarbage.onnx,0\n")
    w("meas/inf.csv", "model,latency_ms\ngarbage.onnx,inf\n")
    w("meas/text.csv", "model,latency_ms\ngarbage.onnx,fast\n")
    w("meas/nofile.csv", "model,latency_ms\nmissing.onnx,1.5\n")
    w("meas/nomodel.csv", "model,latency_ms\n,1.5\n")
    wb("meas/garbage.onnx", b"not an onnx model at all")
    w("meas/garbage-model.csv", "model,latency_ms\ngarbage.onnx,1.5\ngarbage.onnx,2.5\n")
    wb("meas/binary.csv", b"\xff\xfe\x00\x80\x81 binary")
    w("table/missing-cols.csv", "block,ms\nconv,1.0\n")
    w("table/empty.csv", "")
    w("table/header-only.csv", "op,input_size,latency_ms\n")
    from nas._resources import builtin_dir

    shipped = (
        (builtin_dir("hardware_profiles") / "data" / "jetson-tx2_fbnet_blocks.csv").read_text().splitlines()
    )
    w(
        "table/small.csv", "\n".join(shipped[:30]) + "\n"
    )  # a valid block table, small enough to fit in seconds

    # run directories
    arch = _first(load_space(root / "tiny.yaml"))
    pre = {
        "classes": ["red", "green"],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "layout": "NCHW",
        "channel_order": "RGB",
        "input_shape": ["batch", 3, 16, 16],
        "input_name": "input",
    }
    search = {
        "space": str(root / "tiny.yaml"),
        "profile": "x86-cpu",
        "dataset": str(root / "tiny.npz"),
        "seed": 0,
    }
    (root / "run-empty").mkdir()
    w("run-broken-config/config.json", "{not json")
    w("run-broken-config/pareto.json", json.dumps({"pareto": [], "preprocessing": pre}))
    w("run-config-list/config.json", "[1, 2, 3]")
    w("run-config-list/pareto.json", json.dumps({"pareto": [], "preprocessing": pre}))
    w("run-pareto-list/config.json", json.dumps({"search": search}))
    w("run-pareto-list/pareto.json", "[]")
    w("run-pareto-junk/config.json", json.dumps({"search": search}))
    w("run-pareto-junk/pareto.json", "{trunc")
    w("run-pareto-entry/config.json", json.dumps({"search": search}))
    w("run-pareto-entry/pareto.json", json.dumps({"pareto": [{"trial": 0}], "preprocessing": pre}))
    w("run-no-pareto/config.json", json.dumps({"search": search}))
    w("run-no-search/config.json", json.dumps({"hello": 1}))
    w("run-no-search/pareto.json", json.dumps({"pareto": [], "preprocessing": pre}))
    w("run-other-search/config.json", json.dumps({"search": {"space": "fbnet"}}))
    w("run-not-nas/notes.txt", "someone else's folder\n")
    w("run-baselines-junk/config.json", json.dumps({"search": search, "recipe": {"epochs": 1}}))
    w("run-baselines-junk/baselines.json", "{not a list")
    w("run-no-recipe/config.json", json.dumps({"search": search}))

    # exported model folders (train)
    spec = {
        "arch_hash": arch.hash,
        "architecture": arch.to_dict(),
        "num_classes": 2,
        "preprocessing": pre,
        "onnx": "model.onnx",
    }
    w("export-ok/spec.json", json.dumps(spec))
    w("export-ok/metrics.json", json.dumps({"accuracy": 0.5}))
    wb("export-ok/model.onnx", b"not really a model")
    w("export-no-metrics/spec.json", json.dumps(spec))
    w("export-junk-spec/spec.json", "{junk")
    w("export-junk-spec/metrics.json", "{}")
    w("export-list-spec/spec.json", "[]")
    w("export-list-spec/metrics.json", "{}")
    w("export-no-arch/spec.json", json.dumps({"num_classes": 2, "preprocessing": pre}))
    w("export-no-arch/metrics.json", "{}")
    w("export-bad-arch/spec.json", json.dumps({**spec, "architecture": {"space": "tiny"}}))
    w("export-bad-arch/metrics.json", "{}")
    w("export-disagree/spec.json", json.dumps({**spec, "num_classes": 5}))
    w("export-disagree/metrics.json", "{}")
    np.savez(root / "three.npz", x=x[:30], y=np.repeat(np.arange(3), 10), classes=np.array(["a", "b", "c"]))

    # ONNX models without (or with broken) nas metadata
    from onnx import TensorProto, helper

    def identity(meta: dict | None) -> bytes:
        graph = helper.make_graph(
            [helper.make_node("Identity", ["input"], ["logits"])],
            "g",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        for key, value in (meta or {}).items():
            model.metadata_props.add(key=key, value=value)
        return model.SerializeToString()

    wb("nometa.onnx", identity(None))
    wb("badmeta.onnx", identity({"nas.preprocessing": "{not json"}))
    wb("partmeta.onnx", identity({"nas.preprocessing": json.dumps({"classes": ["a", "b"]})}))
    cascade = {"segments": ["exit_segment_0.onnx", "exit_segment_1.onnx"], "thresholds": [0.5]}
    exits_pre = {"nas.preprocessing": json.dumps(pre)}
    wb("exits-missing.onnx", identity({**exits_pre, "nas.exits": json.dumps(cascade)}))
    wb("exits-junk.onnx", identity({**exits_pre, "nas.exits": "{junk"}))
    w("space-exits-last.yaml", TINY_SPACE + "exits: {b: true}\n")
    w("space-exits-word.yaml", TINY_SPACE + "exits: {a: maybe}\n")

    # calibration bundles
    (root / "bundle-empty").mkdir()
    w("bundle-junk/bundle.json", "{junk")
    w("bundle-models/bundle.json", json.dumps({"models": "none"}))
    w("bundle-format/bundle.json", json.dumps({"format": "other", "models": []}))
    w(
        "bundle-missing-graph/bundle.json",
        json.dumps(
            {
                "format": "nas-bundle/1",
                "models": [{"path": "graphs/missing.onnx", "kind": "network", "id": "n0"}],
            }
        ),
    )
    w(
        "bundle-ok/bundle.json",
        json.dumps(
            {"format": "nas-bundle/1", "models": [{"path": "graphs/n0.onnx", "kind": "network", "id": "n0"}]}
        ),
    )
    wb("bundle-ok/graphs/n0.onnx", identity(None))

    (root / "profiles").mkdir()  # the user's profile folder ($NAS_PROFILE_DIR)


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)) + ("/" if p.is_dir() else ""): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(root.rglob("*"))
    }


def X(case, *, reason):
    """A defect found: kept in the table, expected to fail until it is fixed."""
    return pytest.param(*case, id=case[0], marks=pytest.mark.xfail(strict=True, reason=reason))


ARGPARSE = "usage:"  # argparse reports usage errors itself: `usage: ...` then `nas ...: error: ...`

# (id, argv ({R}: the fixture folder), exit code, phrase of stderr)
# Every search row names a tiny space, a tiny dataset and a new run directory: if a bad value were accepted,
# the guard at the start of Ray would stop it (and nothing would be written).
S = ["search", "--space", "{R}/tiny.yaml", "--dataset", "{R}/tiny.npz", "--out", "{R}/newrun", "--quiet"]


CASES = [
    # -------------------- search
    ('search-trials-negative', [*S, '--trials', '-1'], 2, 'trials: must be an integer >= 1, got -1'),
    ('search-trials-zero', [*S, '--trials', '0'], 2, 'trials: must be an integer >= 1, got 0'),
    ('search-trials-nan', [*S, '--trials', 'nan'], 2, "argument --trials: invalid int value: 'nan'"),
    ('search-trials-text', [*S, '--trials', 'abc'], 2, "argument --trials: invalid int value: 'abc'"),
    ('search-trials-empty', [*S, '--trials', ''], 2, "argument --trials: invalid int value: ''"),
    ('search-trials-fraction', [*S, '--trials', '1.5'], 2, "argument --trials: invalid int value: '1.5'"),
    ('search-epochs-negative', [*S, '--epochs', '-1'], 2, 'epochs: must be an integer >= 1, got -1'),
    ('search-epochs-zero', [*S, '--epochs', '0'], 2, 'epochs: must be an integer >= 1, got 0'),
    ('search-epochs-inf', [*S, '--epochs', 'inf'], 2, "argument --epochs: invalid int value: 'inf'"),
    ('search-epochs-text', [*S, '--epochs', 'abc'], 2, "argument --epochs: invalid int value: 'abc'"),
    ('search-epochs-fraction', [*S, '--epochs', '1.5'], 2, "argument --epochs: invalid int value: '1.5'"),
    (
        'search-train-subset-negative',
        [*S, '--train-subset', '-1'],
        2,
        'train_subset: must be an integer >= 1, got -1',
    ),
    (
        'search-train-subset-zero',
        [*S, '--train-subset', '0'],
        2,
        'train_subset: must be an integer >= 1, got 0',
    ),
    (
        'search-train-subset-nan',
        [*S, '--train-subset', 'nan'],
        2,
        "argument --train-subset: expected an integer or 'all', got 'nan'",
    ),
    (
        'search-train-subset-text',
        [*S, '--train-subset', 'abc'],
        2,
        "argument --train-subset: expected an integer or 'all', got 'abc'",
    ),
    (
        'search-train-subset-fraction',
        [*S, '--train-subset', '1.5'],
        2,
        "argument --train-subset: expected an integer or 'all', got '1.5'",
    ),
    (
        'search-train-subset-empty',
        [*S, '--train-subset', ''],
        2,
        "argument --train-subset: expected an integer or 'all', got ''",
    ),
    ('search-workers-negative', [*S, '--workers', '-1'], 2, 'workers: must be an integer >= 1, got -1'),
    ('search-workers-zero', [*S, '--workers', '0'], 2, 'workers: must be an integer >= 1, got 0'),
    ('search-workers-text', [*S, '--workers', 'abc'], 2, "argument --workers: invalid int value: 'abc'"),
    ('search-workers-fraction', [*S, '--workers', '1.5'], 2, "argument --workers: invalid int value: '1.5'"),
    (
        'search-population-negative',
        [*S, '--population', '-1'],
        2,
        'population: must be an integer >= 2, got -1',
    ),
    ('search-population-zero', [*S, '--population', '0'], 2, 'population: must be an integer >= 2, got 0'),
    ('search-population-one', [*S, '--population', '1'], 2, 'population: must be an integer >= 2, got 1'),
    (
        'search-population-text',
        [*S, '--population', 'abc'],
        2,
        "argument --population: invalid int value: 'abc'",
    ),
    (
        'search-population-nan',
        [*S, '--population', 'nan'],
        2,
        "argument --population: invalid int value: 'nan'",
    ),
    (
        'search-seed-negative',
        [*S, '--seed', '-1'],
        2,
        'seed: must be an integer from 0 to 2**32 - 1 (what the samplers accept), got -1',
    ),
    (
        'search-seed-negative5',
        [*S, '--seed', '-5'],
        2,
        'seed: must be an integer from 0 to 2**32 - 1 (what the samplers accept), got -5',
    ),
    ('search-seed-text', [*S, '--seed', 'abc'], 2, "argument --seed: invalid int value: 'abc'"),
    ('search-seed-fraction', [*S, '--seed', '1.5'], 2, "argument --seed: invalid int value: '1.5'"),
    ('search-seed-nan', [*S, '--seed', 'nan'], 2, "argument --seed: invalid int value: 'nan'"),
    (
        'search-latency-budget-negative',
        [*S, '--latency-budget-ms', '-1'],
        2,
        'latency_budget_ms: must be a positive finite number of milliseconds, got -1.0',
    ),
    (
        'search-latency-budget-zero',
        [*S, '--latency-budget-ms', '0'],
        2,
        'latency_budget_ms: must be a positive finite number of milliseconds, got 0.0',
    ),
    (
        'search-latency-budget-nan',
        [*S, '--latency-budget-ms', 'nan'],
        2,
        'latency_budget_ms: must be a positive finite number of milliseconds, got nan',
    ),
    (
        'search-latency-budget-minus-inf',
        [*S, '--latency-budget-ms', '-inf'],
        2,
        'argument --latency-budget-ms: expected one argument',
    ),
    (
        'search-latency-budget-text',
        [*S, '--latency-budget-ms', 'abc'],
        2,
        "argument --latency-budget-ms: invalid float value: 'abc'",
    ),
    (
        'search-latency-budget-empty',
        [*S, '--latency-budget-ms', ''],
        2,
        "argument --latency-budget-ms: invalid float value: ''",
    ),
    ('search-latency-budget-inf', [*S, '--latency-budget-ms', 'inf'], 2, 'latency_budget_ms'),
    (
        'search-latency-budget-misspelt-none',
        [*S, '--latency-budget-ms', 'nnoe'],
        2,
        "argument --latency-budget-ms: invalid float value: 'nnoe'",
    ),
    (
        'search-latency-budget-config-word',
        [*S, '--config', '{R}/budget-word.yaml'],
        2,
        "{R}/budget-word.yaml: latency_budget_ms: expected a number of milliseconds, 'auto' or 'none', got 'fast'",
    ),
    (
        'search-latency-budget-auto-unpriced-space',
        [*S, '--space', '{R}/space-eca.yaml'],
        2,
        "latency_budget_ms: the default budget is predicted by the model of profile x86-cpu, which cannot price",
    ),
    (
        'search-latency-budget-none-and-own-budget',
        [*S, '--latency-budget-ms', 'none', '--budget', 'x86-cpu=0.5'],
        2,
        "budgets: x86-cpu is the search's profile: its budget is latency_budget_ms (none); give one of",
    ),
    ('search-latency-budget-overflow', [*S, '--latency-budget-ms', '1e400'], 2, 'latency_budget_ms'),
    (
        'search-max-params-negative',
        [*S, '--max-params', '-1'],
        2,
        'max_params: must be an integer >= 1, got -1',
    ),
    ('search-max-params-zero', [*S, '--max-params', '0'], 2, 'max_params: must be an integer >= 1, got 0'),
    (
        'search-max-params-text',
        [*S, '--max-params', 'abc'],
        2,
        "argument --max-params: invalid int value: 'abc'",
    ),
    (
        'search-max-params-fraction',
        [*S, '--max-params', '1.5'],
        2,
        "argument --max-params: invalid int value: '1.5'",
    ),
    (
        'search-max-params-nan',
        [*S, '--max-params', 'nan'],
        2,
        "argument --max-params: invalid int value: 'nan'",
    ),
    (
        'search-max-energy-zero',
        [*S, '--max-energy-mj', '0'],
        2,
        'max_energy_mj: must be a positive finite number of millijoules, got 0.0',
    ),
    (
        'search-max-energy-nan',
        [*S, '--max-energy-mj', 'nan'],
        2,
        'max_energy_mj: must be a positive finite number of millijoules, got nan',
    ),
    (
        'search-max-energy-text',
        [*S, '--max-energy-mj', 'abc'],
        2,
        "argument --max-energy-mj: invalid float value: 'abc'",
    ),
    (
        'search-max-energy-no-energy-model',
        [*S, '--max-energy-mj', '5'],
        2,
        "max_energy_mj: profile 'x86-cpu' has no energy model",
    ),
    ('search-max-macs-negative', [*S, '--max-macs', '-1'], 2, 'max_macs: must be an integer >= 1, got -1'),
    ('search-max-macs-zero', [*S, '--max-macs', '0'], 2, 'max_macs: must be an integer >= 1, got 0'),
    ('search-max-macs-text', [*S, '--max-macs', 'abc'], 2, "argument --max-macs: invalid int value: 'abc'"),
    (
        'search-max-macs-overflow',
        [*S, '--max-macs', '1e400'],
        2,
        "argument --max-macs: invalid int value: '1e400'",
    ),
    ('search-prescreen-negative', [*S, '--prescreen', '-1'], 2, 'prescreen: must be an integer >= 1, got -1'),
    ('search-prescreen-zero', [*S, '--prescreen', '0'], 2, 'prescreen: must be an integer >= 1, got 0'),
    (
        'search-prescreen-above-max',
        [*S, '--prescreen', '65'],
        2,
        'prescreen: at most 64 candidates sampled per trained one (each costs a study trial, its',
    ),
    (
        'search-prescreen-huge',
        [*S, '--prescreen', '99999999999999999999'],
        2,
        'prescreen: at most 64 candidates sampled per trained one (each costs a study trial, its',
    ),
    (
        'search-prescreen-text',
        [*S, '--prescreen', 'abc'],
        2,
        "argument --prescreen: invalid int value: 'abc'",
    ),
    (
        'search-robust-weight-negative',
        [*S, '--robust-weight', '-1'],
        2,
        'robust_weight: must be a number in [0, 1], got -1.0',
    ),
    (
        'search-robust-weight-fraction',
        [*S, '--robust-weight', '1.5'],
        2,
        'robust_weight: must be a number in [0, 1], got 1.5',
    ),
    (
        'search-robust-weight-nan',
        [*S, '--robust-weight', 'nan'],
        2,
        'robust_weight: must be a number in [0, 1], got nan',
    ),
    (
        'search-robust-weight-inf',
        [*S, '--robust-weight', 'inf'],
        2,
        'robust_weight: must be a number in [0, 1], got inf',
    ),
    (
        'search-robust-weight-minus-inf',
        [*S, '--robust-weight', '-inf'],
        2,
        'argument --robust-weight: expected one argument',
    ),
    (
        'search-robust-weight-text',
        [*S, '--robust-weight', 'abc'],
        2,
        "argument --robust-weight: invalid float value: 'abc'",
    ),
    (
        'search-stop-dominated-by-negative',
        [*S, '--stop-dominated-by', '-1'],
        2,
        'stop_dominated_by: must be an integer >= 1, got -1',
    ),
    (
        'search-stop-dominated-by-zero',
        [*S, '--stop-dominated-by', '0'],
        2,
        'stop_dominated_by: must be an integer >= 1, got 0',
    ),
    (
        'search-stop-dominated-by-text',
        [*S, '--stop-dominated-by', 'abc'],
        2,
        "argument --stop-dominated-by: invalid int value: 'abc'",
    ),
    (
        'search-stop-margin-negative',
        [*S, '--stop-margin', '-1'],
        2,
        'stop_margin: must be an accuracy difference in [0, 1), got -1.0',
    ),
    (
        'search-stop-margin-one',
        [*S, '--stop-margin', '1'],
        2,
        'stop_margin: must be an accuracy difference in [0, 1), got 1.0',
    ),
    (
        'search-stop-margin-nan',
        [*S, '--stop-margin', 'nan'],
        2,
        'stop_margin: must be an accuracy difference in [0, 1), got nan',
    ),
    (
        'search-stop-margin-inf',
        [*S, '--stop-margin', 'inf'],
        2,
        'stop_margin: must be an accuracy difference in [0, 1), got inf',
    ),
    (
        'search-stop-margin-text',
        [*S, '--stop-margin', 'abc'],
        2,
        "argument --stop-margin: invalid float value: 'abc'",
    ),
    ('search-seed-huge', [*S, '--seed', '99999999999999999999'], 2, 'seed'),
    (
        'search-rungs-text',
        [*S, '--rungs', 'a,b'],
        2,
        "argument --rungs: expected comma-separated integers such as 1,3,5, got 'a,b'",
    ),
    (
        'search-rungs-zero',
        [*S, '--rungs', '0'],
        2,
        'rungs: each rung is a number of epochs below --epochs (4), got 0',
    ),
    (
        'search-rungs-negative',
        [*S, '--rungs', '-1'],
        2,
        'rungs: each rung is a number of epochs below --epochs (4), got -1',
    ),
    (
        'search-rungs-at-epochs',
        [*S, '--epochs', '4', '--rungs', '4'],
        2,
        'rungs: each rung is a number of epochs below --epochs (4), got 4',
    ),
    (
        'search-rungs-above-epochs',
        [*S, '--epochs', '2', '--rungs', '1,5'],
        2,
        'rungs: each rung is a number of epochs below --epochs (2), got 5',
    ),
    (
        'search-rungs-decreasing',
        [*S, '--epochs', '4', '--rungs', '2,1'],
        2,
        'rungs: must increase, got [2, 1]',
    ),
    ('search-rungs-repeated', [*S, '--epochs', '4', '--rungs', '1,1'], 2, 'rungs: must increase, got [1, 1]'),
    (
        'search-rungs-fraction',
        [*S, '--rungs', '1.5'],
        2,
        "argument --rungs: expected comma-separated integers such as 1,3,5, got '1.5'",
    ),
    (
        'search-sampler-unknown',
        [*S, '--sampler', 'grid'],
        2,
        "sampler: unknown sampler 'grid' (choose from nsga2, tpe, random)",
    ),
    (
        'search-sampler-empty',
        [*S, '--sampler', ''],
        2,
        "sampler: unknown sampler '' (choose from nsga2, tpe, random)",
    ),
    (
        'search-latency-unknown',
        [*S, '--latency', 'fast'],
        2,
        "argument --latency: invalid choice: 'fast' (choose from 'auto', 'measured', 'predicted', 'device', 'hybrid')",
    ),
    (
        'search-prescreen-score-unknown',
        [*S, '--prescreen-score', 'zen'],
        2,
        "argument --prescreen-score: invalid choice: 'zen' (choose from 'naswot', 'synflow',",
    ),
    ('search-unknown-flag', [*S, '--trails', '3'], 2, 'unrecognized arguments: --trails 3'),
    ('search-missing-value', [*S, '--trials'], 2, 'argument --trials: expected one argument'),
    ('search-positional', [*S, 'extra'], 2, 'unrecognized arguments: extra'),
    (
        'search-space-unknown',
        [*S, '--space', 'nope'],
        2,
        "unknown search space 'nope' (built-in: fbnet, mobilenet; or give a path to a .yaml file)",
    ),
    (
        'search-space-missing-file',
        [*S, '--space', '{R}/missing.yaml'],
        2,
        'search space file not found: {R}/missing.yaml',
    ),
    (
        'search-space-folder',
        [*S, '--space', '{R}/adir'],
        2,
        '--space {R}/adir: is a folder; give a space YAML file (or a built-in name: fbnet,',
    ),
    (
        'search-space-folder-yaml',
        [*S, '--space', '{R}/adir.yaml'],
        2,
        '--space {R}/adir.yaml: is a folder; give a space YAML file (or a built-in name: fbnet,',
    ),
    (
        'search-space-syntax',
        [*S, '--space', '{R}/space-syntax.yaml'],
        2,
        "{R}/space-syntax.yaml:3: invalid YAML: expected ',' or '}', but got ':'",
    ),
    (
        'search-space-unknown-field',
        [*S, '--space', '{R}/space-unknown.yaml'],
        2,
        '{R}/space-unknown.yaml:15: colour: unknown field (allowed: block_choices, description,',
    ),
    (
        'search-space-width-not-mult8',
        [*S, '--space', '{R}/space-width.yaml'],
        2,
        '{R}/space-width.yaml:12: stages[0].width[0]: channel counts must be multiples of 8, got 12',
    ),
    (
        'search-space-empty',
        [*S, '--space', '{R}/space-empty.yaml'],
        2,
        '{R}/space-empty.yaml:1: expected a mapping of fields (name, stem, stages, ...) at the top',
    ),
    (
        'search-space-list',
        [*S, '--space', '{R}/space-list.yaml'],
        2,
        '{R}/space-list.yaml:1: expected a mapping of fields (name, stem, stages, ...) at the top',
    ),
    (
        'search-space-no-stages',
        [*S, '--space', '{R}/space-nostages.yaml'],
        2,
        '{R}/space-nostages.yaml:1: stages: missing required field',
    ),
    (
        'search-space-resolution-1',
        [*S, '--space', '{R}/space-resolution.yaml'],
        2,
        '{R}/space-resolution.yaml:3: input.resolution: must be at least 8 pixels (at least 8, and',
    ),
    (
        'search-space-depth-negative',
        [*S, '--space', '{R}/space-depth.yaml'],
        2,
        '{R}/space-depth.yaml:12: stages[0].depth[0]: must be positive, got -1',
    ),
    (
        'search-space-kernel-even',
        [*S, '--space', '{R}/space-kernel.yaml'],
        2,
        '{R}/space-kernel.yaml:7: block_choices.kernel[0]: kernel sizes must be odd and positive,',
    ),
    (
        'search-space-activation-unknown',
        [*S, '--space', '{R}/space-activation.yaml'],
        2,
        "{R}/space-activation.yaml:10: block_choices.activation[0]: unknown value 'sparkle'",
    ),
    (
        'search-space-stride-7',
        [*S, '--space', '{R}/space-stride.yaml'],
        2,
        '{R}/space-stride.yaml:12: stages[0].stride: stride must be 1 or 2, got 7',
    ),
    (
        'search-space-exits-last-stage',
        [*S, '--space', '{R}/space-exits-last.yaml'],
        2,
        '{R}/space-exits-last.yaml:15: exits.b: unknown field (allowed: a)',
    ),
    (
        'search-space-exits-not-bool',
        [*S, '--space', '{R}/space-exits-word.yaml'],
        2,
        "{R}/space-exits-word.yaml:15: exits.a: must be true or false, got 'maybe'",
    ),
    (
        'search-exit-max-drop-negative',
        [*S, '--exit-max-drop', '-1'],
        2,
        'exit_max_drop: must be a number of accuracy points in [0, 100], got -1.0',
    ),
    (
        'search-exit-max-drop-nan',
        [*S, '--exit-max-drop', 'nan'],
        2,
        'exit_max_drop: must be a number of accuracy points in [0, 100], got nan',
    ),
    (
        'search-exit-max-drop-text',
        [*S, '--exit-max-drop', 'abc'],
        2,
        "argument --exit-max-drop: invalid float value",
    ),
    ('search-space-binary', [*S, '--space', '{R}/binary.yaml'], 2, '{R}/binary.yaml: not a UTF-8 text file'),
    (
        'search-space-npz',
        [*S, '--space', '{R}/data.npz'],
        2,
        "{R}/data.npz:1: the user's data: unknown field (allowed: block_choices, description,",
    ),
    (
        'search-space-empty-string',
        [*S, '--space', ''],
        2,
        '--space .: is a folder; give a space YAML file (or a built-in name: fbnet, mobilenet)',
    ),
    (
        'search-profile-unknown',
        [*S, '--profile', 'nope'],
        2,
        "unknown hardware profile 'nope' (available: essential-ph-1, gtx-1080ti, pixel-2,",
    ),
    (
        'search-profile-missing-file',
        [*S, '--profile', '{R}/missing.yaml'],
        2,
        'hardware profile file not found: {R}/missing.yaml',
    ),
    (
        'search-profile-folder',
        [*S, '--profile', '{R}/adir.yaml'],
        2,
        'hardware profile file not found: {R}/adir.yaml',
    ),
    (
        'search-profile-syntax',
        [*S, '--profile', '{R}/profile-syntax.yaml'],
        2,
        "{R}/profile-syntax.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        'search-profile-empty',
        [*S, '--profile', '{R}/profile-empty.yaml'],
        2,
        '{R}/profile-empty.yaml:1: expected a mapping of fields (name, description, latency, runtime,',
    ),
    (
        'search-profile-list',
        [*S, '--profile', '{R}/profile-list.yaml'],
        2,
        '{R}/profile-list.yaml:1: expected a mapping of fields (name, description, latency, runtime,',
    ),
    (
        'search-profile-missing-fields',
        [*S, '--profile', '{R}/profile-missing.yaml'],
        2,
        '{R}/profile-missing.yaml:1: latency: missing required field',
    ),
    (
        'search-profile-unknown-kind',
        [*S, '--profile', '{R}/profile-kind.yaml'],
        2,
        "{R}/profile-kind.yaml:3: latency: must be one of measured, predicted, got 'guessed'",
    ),
    (
        'search-profile-wrong-types',
        [*S, '--profile', '{R}/profile-types.yaml'],
        2,
        '{R}/profile-types.yaml:1: name: must be a non-empty string, got [1, 2]',
    ),
    (
        'search-profile-unknown-field',
        [*S, '--profile', '{R}/profile-unknown.yaml'],
        2,
        '{R}/profile-unknown.yaml:6: colour: unknown field; expected one of: name, description,',
    ),
    (
        'search-profile-no-model',
        [*S, '--profile', '{R}/profile-nomodel.yaml'],
        2,
        '{R}/profile-nomodel.yaml:1: model: missing required field: a predicted profile needs a fitted',
    ),
    (
        'search-profile-bad-model',
        [*S, '--profile', '{R}/profile-badmodel.yaml'],
        2,
        '{R}/profile-badmodel.yaml:5: model.weights: must be a mapping of kind.feature to a number, got',
    ),
    (
        'search-profile-threads-negative',
        [*S, '--profile', '{R}/profile-threads.yaml'],
        2,
        '{R}/profile-threads.yaml:4: runtime.intra_op_threads: must be a positive integer, got -3',
    ),
    (
        'search-profile-binary',
        [*S, '--profile', '{R}/binary.yaml'],
        2,
        '{R}/binary.yaml: not a UTF-8 text file',
    ),
    (
        'search-profile-remote-measured',
        [*S, '--profile', 'raspberry-pi-4', '--latency', 'measured'],
        2,
        "profile 'raspberry-pi-4' is a remote device: its latency can only be predicted (--latency",
    ),
    (
        'search-profile-uncovered-kinds',
        [*S, '--profile', 'jetson-tx2'],
        2,
        'space tiny produces node kinds the profile jetson-tx2 has never measured:',
    ),
    ('search-dataset-missing', [*S, '--dataset', '{R}/missing.npz'], 2, 'dataset not found: {R}/missing.npz'),
    (
        'search-dataset-junk-npz',
        [*S, '--dataset', '{R}/data.npz'],
        2,
        "dataset {R}/data.npz: cannot read .npz file: not a valid .npz with arrays 'x' (uint8",
    ),
    (
        'search-dataset-empty-file',
        [*S, '--dataset', '{R}/empty.txt'],
        2,
        "unsupported dataset source: {R}/empty.txt (expected 'builtin', an ImageFolder directory",
    ),
    (
        'search-dataset-text-file',
        [*S, '--dataset', '{R}/notes.txt'],
        2,
        "unsupported dataset source: {R}/notes.txt (expected 'builtin', an ImageFolder directory",
    ),
    (
        'search-dataset-npz-no-keys',
        [*S, '--dataset', '{R}/nokeys.npz'],
        2,
        "dataset {R}/nokeys.npz: missing array 'x' (need 'x' images and 'y' labels)",
    ),
    (
        'search-dataset-npz-bad-shape',
        [*S, '--dataset', '{R}/badshape.npz'],
        2,
        "dataset {R}/badshape.npz: 'x' must have shape N x H x W x 3 (or x 1, or N x H x W), got",
    ),
    (
        'search-dataset-npz-one-class',
        [*S, '--dataset', '{R}/onelabel.npz'],
        2,
        'dataset {R}/onelabel.npz: needs at least 2 classes, found 1',
    ),
    (
        'search-dataset-npz-float',
        [*S, '--dataset', '{R}/float.npz'],
        2,
        "dataset {R}/float.npz: 'x' must be uint8, got float32",
    ),
    (
        'search-dataset-npz-length-mismatch',
        [*S, '--dataset', '{R}/mismatch.npz'],
        2,
        'dataset {R}/mismatch.npz: len(x) = 40 but len(y) = 10',
    ),
    (
        'search-dataset-empty-folder',
        [*S, '--dataset', '{R}/imgroot'],
        2,
        'dataset folder {R}/imgroot needs at least 2 class folders, found 0: none',
    ),
    (
        'search-dataset-folder-no-images',
        [*S, '--dataset', '{R}/imgroot-noimages'],
        2,
        'dataset folder {R}/imgroot-noimages needs at least 2 class folders, found 1: cat',
    ),
    (
        'search-dataset-onnx',
        [*S, '--dataset', '{R}/garbage.onnx'],
        2,
        "unsupported dataset source: {R}/garbage.onnx (expected 'builtin', an ImageFolder",
    ),
    (
        'search-out-under-file',
        [*S, '--out', '{R}/notes.txt/run'],
        2,
        '--out {R}/notes.txt/run: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'search-out-is-file',
        [*S, '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    (
        'search-out-not-a-run',
        [*S, '--out', '{R}/run-not-nas'],
        2,
        '{R}/run-not-nas: exists and is not a nas run directory; choose another --out',
    ),
    (
        'search-out-other-search',
        [*S, '--out', '{R}/run-other-search'],
        2,
        "{R}/run-other-search: holds a search with space='fbnet', not '{R}/tiny.yaml'; re-run with",
    ),
    (
        'search-out-broken-config',
        [*S, '--out', '{R}/run-broken-config'],
        2,
        '{R}/run-broken-config/config.json: unreadable run configuration; choose another --out',
    ),
    (
        'search-out-config-list',
        [*S, '--out', '{R}/run-config-list'],
        2,
        '{R}/run-config-list/config.json: unreadable run configuration; choose another --out',
    ),
    # -------------------- export
    (
        'export-missing-run',
        ['export', '{R}/missing-run'],
        2,
        '{R}/missing-run: not a nas run directory (missing config.json)',
    ),
    (
        'export-run-is-file',
        ['export', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: not a nas run directory (missing config.json)',
    ),
    (
        'export-run-empty',
        ['export', '{R}/run-empty'],
        2,
        '{R}/run-empty: not a nas run directory (missing config.json)',
    ),
    (
        'export-run-not-nas',
        ['export', '{R}/run-not-nas'],
        2,
        '{R}/run-not-nas: not a nas run directory (missing config.json)',
    ),
    (
        'export-broken-config',
        ['export', '{R}/run-broken-config'],
        2,
        '{R}/run-broken-config/config.json: not valid JSON (Expecting property name enclosed in',
    ),
    (
        'export-config-list',
        ['export', '{R}/run-config-list'],
        2,
        '{R}/run-config-list/config.json: not a nas run configuration (expected a JSON object)',
    ),
    (
        'export-pareto-list',
        ['export', '{R}/run-pareto-list'],
        2,
        '{R}/run-pareto-list/pareto.json: not a nas Pareto file (expected an object with a',
    ),
    (
        'export-pareto-junk',
        ['export', '{R}/run-pareto-junk'],
        2,
        '{R}/run-pareto-junk/pareto.json: not valid JSON (Expecting property name enclosed in',
    ),
    (
        'export-pareto-entry-incomplete',
        ['export', '{R}/run-pareto-entry'],
        2,
        '{R}/run-pareto-entry/pareto.json: Pareto entry 0 lacks checkpoint, architecture,',
    ),
    (
        'export-no-pareto',
        ['export', '{R}/run-no-pareto'],
        2,
        '{R}/run-no-pareto: not a nas run directory (missing pareto.json)',
    ),
    (
        'export-no-search',
        ['export', '{R}/run-no-search'],
        2,
        '{R}/run-no-search: no completed trial to export yet',
    ),
    (
        'export-out-under-file',
        ['export', '{R}/run-pareto-list', '--out', '{R}/notes.txt/export'],
        2,
        '--out {R}/notes.txt/export: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'export-out-is-file',
        ['export', '{R}/run-pareto-list', '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    ('export-no-run-dir', ['export'], 2, 'the following arguments are required: run_dir'),
    (
        'export-two-run-dirs',
        ['export', '{R}/run-pareto-list', '{R}/run-empty'],
        2,
        'unrecognized arguments: {R}/run-empty',
    ),
    (
        'export-unknown-flag',
        ['export', '{R}/run-pareto-list', '--forse'],
        2,
        'unrecognized arguments: --forse',
    ),
    ('export-empty-run-dir', ['export', ''], 2, '.: not a nas run directory (missing config.json)'),
    # -------------------- train
    (
        'train-epochs-negative',
        ['train', '{R}/export-ok', '--epochs', '-1'],
        2,
        'epochs: must be an integer >= 1, got -1',
    ),
    (
        'train-epochs-zero',
        ['train', '{R}/export-ok', '--epochs', '0'],
        2,
        'epochs: must be an integer >= 1, got 0',
    ),
    (
        'train-epochs-text',
        ['train', '{R}/export-ok', '--epochs', 'abc'],
        2,
        "argument --epochs: invalid int value: 'abc'",
    ),
    (
        'train-epochs-fraction',
        ['train', '{R}/export-ok', '--epochs', '1.5'],
        2,
        "argument --epochs: invalid int value: '1.5'",
    ),
    (
        'train-epochs-nan',
        ['train', '{R}/export-ok', '--epochs', 'nan'],
        2,
        "argument --epochs: invalid int value: 'nan'",
    ),
    (
        'train-train-subset-negative',
        ['train', '{R}/export-ok', '--train-subset', '-1'],
        2,
        'train_subset: must be an integer >= 1, got -1',
    ),
    (
        'train-train-subset-zero',
        ['train', '{R}/export-ok', '--train-subset', '0'],
        2,
        'train_subset: must be an integer >= 1, got 0',
    ),
    (
        'train-train-subset-text',
        ['train', '{R}/export-ok', '--train-subset', 'abc'],
        2,
        "argument --train-subset: expected an integer or 'all', got 'abc'",
    ),
    (
        'train-train-subset-fraction',
        ['train', '{R}/export-ok', '--train-subset', '1.5'],
        2,
        "argument --train-subset: expected an integer or 'all', got '1.5'",
    ),
    (
        'train-seed-negative',
        ['train', '{R}/export-ok', '--seed', '-1'],
        2,
        'seed: must be an integer >= 0, got -1',
    ),
    (
        'train-seed-text',
        ['train', '{R}/export-ok', '--seed', 'abc'],
        2,
        "argument --seed: invalid int value: 'abc'",
    ),
    (
        'train-kd-alpha-negative',
        ['train', '{R}/export-ok', '--kd-alpha', '-1'],
        2,
        'kd_alpha: must be a number in [0, 1], got -1.0',
    ),
    (
        'train-kd-alpha-fraction',
        ['train', '{R}/export-ok', '--kd-alpha', '1.5'],
        2,
        'kd_alpha: must be a number in [0, 1], got 1.5',
    ),
    (
        'train-kd-alpha-nan',
        ['train', '{R}/export-ok', '--kd-alpha', 'nan'],
        2,
        'kd_alpha: must be a number in [0, 1], got nan',
    ),
    (
        'train-kd-alpha-inf',
        ['train', '{R}/export-ok', '--kd-alpha', 'inf'],
        2,
        'kd_alpha: must be a number in [0, 1], got inf',
    ),
    (
        'train-kd-alpha-text',
        ['train', '{R}/export-ok', '--kd-alpha', 'abc'],
        2,
        "argument --kd-alpha: invalid float value: 'abc'",
    ),
    (
        'train-kd-temperature-negative',
        ['train', '{R}/export-ok', '--kd-temperature', '-1'],
        2,
        'kd_temperature: must be a number > 0, got -1.0',
    ),
    (
        'train-kd-temperature-zero',
        ['train', '{R}/export-ok', '--kd-temperature', '0'],
        2,
        'kd_temperature: must be a number > 0, got 0.0',
    ),
    (
        'train-kd-temperature-nan',
        ['train', '{R}/export-ok', '--kd-temperature', 'nan'],
        2,
        'kd_temperature: must be a number > 0, got nan',
    ),
    (
        'train-kd-temperature-inf',
        ['train', '{R}/export-ok', '--kd-temperature', 'inf'],
        2,
        'kd_temperature: must be a number > 0, got inf',
    ),
    (
        'train-kd-temperature-minus-inf',
        ['train', '{R}/export-ok', '--kd-temperature', '-inf'],
        2,
        'argument --kd-temperature: expected one argument',
    ),
    (
        'train-kd-temperature-text',
        ['train', '{R}/export-ok', '--kd-temperature', 'abc'],
        2,
        "argument --kd-temperature: invalid float value: 'abc'",
    ),
    (
        'train-seed-huge',
        ['train', '{R}/export-ok', '--dataset', '{R}/tiny.npz', '--seed', '99999999999999999999'],
        2,
        'seed',
    ),
    (
        'train-missing-export',
        ['train', '{R}/missing-export'],
        2,
        'exported model folder not found: {R}/missing-export',
    ),
    (
        'train-export-is-text-file',
        ['train', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: a file; give the exported model folder (RUN_DIR/export/NN_HASH, with',
    ),
    (
        'train-export-is-garbage-onnx',
        ['train', '{R}/garbage.onnx'],
        2,
        '{R}/garbage.onnx: a file; give the exported model folder (RUN_DIR/export/NN_HASH, with',
    ),
    (
        'train-export-empty-folder',
        ['train', '{R}/adir'],
        2,
        '{R}/adir: not an exported model folder (missing spec.json; run `nas export RUN_DIR` first)',
    ),
    (
        'train-export-no-metrics',
        ['train', '{R}/export-no-metrics'],
        2,
        '{R}/export-no-metrics: not an exported model folder (missing metrics.json; run `nas',
    ),
    (
        'train-export-junk-spec',
        ['train', '{R}/export-junk-spec'],
        2,
        '{R}/export-junk-spec/spec.json: not valid JSON (Expecting property name enclosed in',
    ),
    (
        'train-export-list-spec',
        ['train', '{R}/export-list-spec'],
        2,
        '{R}/export-list-spec: spec.json and metrics.json must hold JSON objects',
    ),
    (
        'train-export-no-architecture',
        ['train', '{R}/export-no-arch'],
        2,
        '{R}/export-no-arch/spec.json: missing architecture',
    ),
    (
        'train-export-bad-architecture',
        ['train', '{R}/export-bad-arch'],
        2,
        "{R}/export-bad-arch/spec.json: invalid architecture or preprocessing ('stages')",
    ),
    (
        'train-export-classes-disagree',
        ['train', '{R}/export-disagree'],
        2,
        '{R}/export-disagree/spec.json: num_classes, classes, mean and std disagree',
    ),
    (
        'train-export-is-run-dir',
        ['train', '{R}/run-pareto-list'],
        2,
        '{R}/run-pareto-list: not an exported model folder (missing spec.json; run `nas export',
    ),
    (
        'train-out-under-file',
        ['train', '{R}/export-ok', '--out', '{R}/notes.txt/deployed'],
        2,
        '--out {R}/notes.txt/deployed: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'train-out-is-file',
        ['train', '{R}/export-ok', '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    (
        'train-out-is-source',
        ['train', '{R}/export-ok', '--out', '{R}/export-ok'],
        2,
        '--out {R}/export-ok is the source export folder; choose another folder',
    ),
    (
        'train-dataset-missing',
        ['train', '{R}/export-ok', '--dataset', '{R}/missing.npz'],
        2,
        'dataset not found: {R}/missing.npz',
    ),
    (
        'train-dataset-junk',
        ['train', '{R}/export-ok', '--dataset', '{R}/data.npz'],
        2,
        "dataset {R}/data.npz: cannot read .npz file: not a valid .npz with arrays 'x' (uint8",
    ),
    (
        'train-dataset-other-classes',
        ['train', '{R}/export-ok', '--dataset', '{R}/three.npz'],
        2,
        "dataset {R}/three.npz has classes ['a', 'b', 'c'], but {R}/export-ok was searched on",
    ),
    (
        'train-teacher-missing',
        ['train', '{R}/export-ok', '--dataset', '{R}/tiny.npz', '--teacher', '{R}/missing'],
        2,
        'teacher not found: {R}/missing (give an exported model folder or its model.onnx)',
    ),
    (
        'train-teacher-garbage-onnx',
        ['train', '{R}/export-ok', '--dataset', '{R}/tiny.npz', '--teacher', '{R}/garbage.onnx'],
        2,
        'teacher {R}/garbage.onnx: not a nas-exported ONNX model (no readable nas.preprocessing',
    ),
    (
        'train-teacher-no-metadata',
        ['train', '{R}/export-ok', '--dataset', '{R}/tiny.npz', '--teacher', '{R}/nometa.onnx'],
        2,
        'teacher {R}/nometa.onnx: not a nas-exported ONNX model (no readable nas.preprocessing',
    ),
    (
        'train-teacher-empty-folder',
        ['train', '{R}/export-ok', '--dataset', '{R}/tiny.npz', '--teacher', '{R}/adir'],
        2,
        'teacher not found: {R}/adir/model.onnx (give an exported model folder or its model.onnx)',
    ),
    ('train-no-export-dir', ['train'], 2, 'the following arguments are required: export_dir'),
    # -------------------- baselines
    (
        'baselines-widths-negative',
        ['baselines', '{R}/run-baselines-junk', '--widths', '-1'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got -1.0',
    ),
    (
        'baselines-widths-zero',
        ['baselines', '{R}/run-baselines-junk', '--widths', '0'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got 0.0',
    ),
    (
        'baselines-widths-nan',
        ['baselines', '{R}/run-baselines-junk', '--widths', 'nan'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got nan',
    ),
    (
        'baselines-widths-inf',
        ['baselines', '{R}/run-baselines-junk', '--widths', 'inf'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got inf',
    ),
    (
        'baselines-widths-text',
        ['baselines', '{R}/run-baselines-junk', '--widths', 'abc'],
        2,
        "--widths: expected comma-separated numbers such as 0.5,1, got 'abc'",
    ),
    (
        'baselines-widths-empty',
        ['baselines', '{R}/run-baselines-junk', '--widths', ''],
        2,
        "--widths: expected comma-separated numbers such as 0.5,1, got ''",
    ),
    (
        'baselines-widths-overflow',
        ['baselines', '{R}/run-baselines-junk', '--widths', '1e400'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got inf',
    ),
    (
        'baselines-widths-list',
        ['baselines', '{R}/run-baselines-junk', '--widths', '1,2'],
        2,
        '{R}/run-baselines-junk/baselines.json: not valid JSON (Expecting property name enclosed',
    ),
    (
        'baselines-widths-negative-fraction',
        ['baselines', '{R}/run-baselines-junk', '--widths', '-0.5'],
        2,
        'widths: a width multiplier must be a number in (0, 4], got -0.5',
    ),
    (
        'baselines-widths-trailing-comma',
        ['baselines', '{R}/run-no-recipe', '--widths', '0.5,'],
        2,
        "--widths: expected comma-separated numbers such as 0.5,1, got '0.5,'",
    ),
    (
        'baselines-missing-run',
        ['baselines', '{R}/missing-run'],
        2,
        'run configuration not found: {R}/missing-run/config.json',
    ),
    ('baselines-run-is-file', ['baselines', '{R}/notes.txt'], 2, 'notes.txt'),
    (
        'baselines-run-empty',
        ['baselines', '{R}/run-empty'],
        2,
        'run configuration not found: {R}/run-empty/config.json',
    ),
    (
        'baselines-broken-config',
        ['baselines', '{R}/run-broken-config'],
        2,
        '{R}/run-broken-config/config.json: not valid JSON (Expecting property name enclosed in',
    ),
    (
        'baselines-config-list',
        ['baselines', '{R}/run-config-list'],
        2,
        '{R}/run-config-list/config.json: not the configuration of a nas search with the proxy',
    ),
    (
        'baselines-no-recipe',
        ['baselines', '{R}/run-no-recipe'],
        2,
        '{R}/run-no-recipe/config.json: not the configuration of a nas search with the proxy',
    ),
    (
        'baselines-junk-baselines-json',
        ['baselines', '{R}/run-baselines-junk'],
        2,
        '{R}/run-baselines-junk/baselines.json: not valid JSON (Expecting property name enclosed',
    ),
    ('baselines-no-run-dir', ['baselines'], 2, 'the following arguments are required: run_dir'),
    # -------------------- report
    ('report-missing-run', ['report', '{R}/missing-run'], 2, '{R}/missing-run: no such run directory'),
    (
        'report-run-is-file',
        ['report', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: not a nas run directory (not a folder)',
    ),
    (
        'report-run-empty',
        ['report', '{R}/run-empty'],
        2,
        '{R}/run-empty: not a nas run directory (missing config.json)',
    ),
    (
        'report-run-not-nas',
        ['report', '{R}/run-not-nas'],
        2,
        '{R}/run-not-nas: not a nas run directory (missing config.json)',
    ),
    (
        'report-broken-config',
        ['report', '{R}/run-broken-config'],
        2,
        '{R}/run-broken-config: not a nas run directory (missing study.db)',
    ),
    (
        'report-config-list',
        ['report', '{R}/run-config-list'],
        2,
        '{R}/run-config-list: not a nas run directory (missing study.db)',
    ),
    (
        'report-pareto-list',
        ['report', '{R}/run-pareto-list'],
        2,
        '{R}/run-pareto-list: not a nas run directory (missing study.db)',
    ),
    (
        'report-pareto-junk',
        ['report', '{R}/run-pareto-junk'],
        2,
        '{R}/run-pareto-junk: not a nas run directory (missing study.db)',
    ),
    (
        'report-no-search',
        ['report', '{R}/run-no-search'],
        2,
        '{R}/run-no-search: not a nas run directory (missing study.db)',
    ),
    (
        'report-out-under-file',
        ['report', '{R}/run-pareto-list', '--out', '{R}/notes.txt/report'],
        2,
        '--out {R}/notes.txt/report: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'report-out-is-file',
        ['report', '{R}/run-pareto-list', '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    (
        'report-network-negative',
        ['report', '{R}/run-pareto-list', '--network', '-1'],
        2,
        '{R}/run-pareto-list: not a nas run directory (missing study.db)',
    ),
    (
        'report-network-text',
        ['report', '{R}/run-pareto-list', '--network', 'abc'],
        2,
        "argument --network: invalid int value: 'abc'",
    ),
    (
        'report-network-fraction',
        ['report', '{R}/run-pareto-list', '--network', '1.5'],
        2,
        "argument --network: invalid int value: '1.5'",
    ),
    (
        'report-network-nan',
        ['report', '{R}/run-pareto-list', '--network', 'nan'],
        2,
        "argument --network: invalid int value: 'nan'",
    ),
    (
        'report-profile-unknown',
        ['report', '{R}/run-pareto-list', '--profile', 'nope'],
        2,
        '{R}/run-pareto-list: not a nas run directory (missing study.db)',
    ),
    (
        'report-profile-syntax',
        ['report', '{R}/run-pareto-list', '--profile', '{R}/profile-syntax.yaml'],
        2,
        '{R}/run-pareto-list: not a nas run directory (missing study.db)',
    ),
    ('report-no-run-dir', ['report'], 2, 'the following arguments are required: run_dir'),
    # -------------------- compare
    (
        'compare-one-run',
        ['compare', '{R}/run-pareto-list', '--out', '{R}/cmp'],
        2,
        'compare: needs at least two run directories, got one ({R}/run-pareto-list); for a single',
    ),
    (
        'compare-missing-runs',
        ['compare', '{R}/missing-a', '{R}/missing-b', '--out', '{R}/cmp'],
        2,
        '{R}/missing-a: no such run directory',
    ),
    (
        'compare-run-is-file',
        ['compare', '{R}/notes.txt', '{R}/run-pareto-list', '--out', '{R}/cmp'],
        2,
        '{R}/notes.txt: not a nas run directory (not a folder)',
    ),
    (
        'compare-empty-runs',
        ['compare', '{R}/run-empty', '{R}/adir', '--out', '{R}/cmp'],
        2,
        '{R}/run-empty: not a nas run directory (missing config.json)',
    ),
    (
        'compare-broken-config',
        ['compare', '{R}/run-broken-config', '{R}/run-pareto-list', '--out', '{R}/cmp'],
        2,
        '{R}/run-broken-config: not a nas run directory (missing study.db)',
    ),
    (
        'compare-config-list',
        ['compare', '{R}/run-config-list', '{R}/run-pareto-list', '--out', '{R}/cmp'],
        2,
        '{R}/run-config-list: not a nas run directory (missing study.db)',
    ),
    (
        'compare-pareto-list',
        ['compare', '{R}/run-pareto-list', '{R}/run-pareto-junk', '--out', '{R}/cmp'],
        2,
        '{R}/run-pareto-list: not a nas run directory (missing study.db)',
    ),
    (
        'compare-out-under-file',
        ['compare', '{R}/run-pareto-list', '{R}/run-empty', '--out', '{R}/notes.txt/cmp'],
        2,
        '--out {R}/notes.txt/cmp: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'compare-out-html-under-file',
        ['compare', '{R}/run-pareto-list', '{R}/run-empty', '--out', '{R}/notes.txt/cmp.html'],
        2,
        '--out {R}/notes.txt/cmp.html: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'compare-out-is-file',
        ['compare', '{R}/run-pareto-list', '{R}/run-empty', '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    (
        'compare-out-html-is-folder',
        ['compare', '{R}/run-pareto-list', '{R}/run-empty', '--out', '{R}/adir.html'],
        2,
        '--out {R}/adir.html: is a folder, not a file; choose another --out',
    ),
    (
        'compare-default-out-missing-runs',
        ['compare', '{R}/missing-a', '{R}/missing-b'],
        2,
        '{R}/missing-a: no such run directory',
    ),
    ('compare-no-runs', ['compare'], 2, 'the following arguments are required: run_dirs'),
    # -------------------- validate
    (
        'validate-missing-model',
        ['validate', '{R}/missing.onnx'],
        2,
        'ONNX model file not found: {R}/missing.onnx',
    ),
    (
        'validate-garbage-model',
        ['validate', '{R}/garbage.onnx'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'validate-empty-model',
        ['validate', '{R}/empty.onnx'],
        2,
        "{R}/empty.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'validate-model-is-folder',
        ['validate', '{R}/adir.onnx'],
        2,
        'ONNX model file not found: {R}/adir.onnx',
    ),
    (
        'validate-model-no-metadata',
        ['validate', '{R}/nometa.onnx'],
        2,
        "{R}/nometa.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'validate-model-bad-metadata',
        ['validate', '{R}/badmeta.onnx'],
        2,
        "{R}/badmeta.onnx: metadata 'nas.preprocessing' is not valid JSON (Expecting property name",
    ),
    (
        'validate-model-partial-metadata',
        ['validate', '{R}/partmeta.onnx'],
        2,
        "{R}/partmeta.onnx: metadata 'nas.preprocessing' lacks field 'input_name'",
    ),
    (
        'validate-exits-missing-segment',
        ['validate', '{R}/exits-missing.onnx'],
        2,
        '{R}/exits-missing.onnx: segment exit_segment_0.onnx named in its nas.exits metadata is missing',
    ),
    (
        'validate-exits-junk-metadata',
        ['validate', '{R}/exits-junk.onnx'],
        2,
        '{R}/exits-junk.onnx: metadata nas.exits is not valid (segments, thresholds)',
    ),
    (
        'validate-model-text-file',
        ['validate', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: not a readable ONNX model (DecodeError)',
    ),
    (
        'validate-severities-zero',
        ['validate', '{R}/garbage.onnx', '--severities', '0'],
        2,
        'severities: severity must be an integer 1..5, got 0',
    ),
    (
        'validate-severities-negative',
        ['validate', '{R}/garbage.onnx', '--severities', '-1'],
        2,
        'severities: severity must be an integer 1..5, got -1',
    ),
    (
        'validate-severities-text',
        ['validate', '{R}/garbage.onnx', '--severities', 'abc'],
        2,
        "argument --severities: expected comma-separated integers such as 1,3,5, got 'abc'",
    ),
    (
        'validate-severities-fraction',
        ['validate', '{R}/garbage.onnx', '--severities', '1.5'],
        2,
        "argument --severities: expected comma-separated integers such as 1,3,5, got '1.5'",
    ),
    (
        'validate-severities-nan',
        ['validate', '{R}/garbage.onnx', '--severities', 'nan'],
        2,
        "argument --severities: expected comma-separated integers such as 1,3,5, got 'nan'",
    ),
    (
        'validate-severities-six',
        ['validate', '{R}/garbage.onnx', '--severities', '6'],
        2,
        'severities: severity must be an integer 1..5, got 6',
    ),
    (
        'validate-severities-empty',
        ['validate', '{R}/garbage.onnx', '--severities', ''],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'validate-seed-negative',
        ['validate', '{R}/garbage.onnx', '--seed', '-1'],
        2,
        'seed must be a non-negative integer, got -1',
    ),
    (
        'validate-seed-text',
        ['validate', '{R}/garbage.onnx', '--seed', 'abc'],
        2,
        "argument --seed: invalid int value: 'abc'",
    ),
    (
        'validate-max-images-negative',
        ['validate', '{R}/nometa.onnx', '--max-images', '-1'],
        2,
        "{R}/nometa.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'validate-max-images-zero',
        ['validate', '{R}/nometa.onnx', '--max-images', '0'],
        2,
        "{R}/nometa.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'validate-max-images-text',
        ['validate', '{R}/nometa.onnx', '--max-images', 'abc'],
        2,
        "argument --max-images: invalid int value: 'abc'",
    ),
    (
        'validate-families-unknown',
        ['validate', '{R}/garbage.onnx', '--families', 'rain'],
        2,
        "families: unknown corruption 'rain' (known: brightness, contrast, gamma, dark,",
    ),
    (
        'validate-families-partly-unknown',
        ['validate', '{R}/garbage.onnx', '--families', 'noise,rain'],
        2,
        "families: unknown corruption 'noise' (known: brightness, contrast, gamma, dark,",
    ),
    (
        'validate-split-unknown',
        ['validate', '{R}/garbage.onnx', '--split', 'test'],
        2,
        "argument --split: invalid choice: 'test' (choose from 'val', 'all')",
    ),
    (
        'validate-json-under-file',
        ['validate', '{R}/garbage.onnx', '--json', '{R}/notes.txt/s.json'],
        2,
        '--json {R}/notes.txt/s.json: {R}/notes.txt is a file, not a folder; choose another --json',
    ),
    (
        'validate-json-is-folder',
        ['validate', '{R}/garbage.onnx', '--json', '{R}/adir'],
        2,
        '--json {R}/adir: is a folder, not a file; choose another --json',
    ),
    (
        'validate-plot-under-file',
        ['validate', '{R}/garbage.onnx', '--plot', '{R}/notes.txt/s.png'],
        2,
        '--plot {R}/notes.txt/s.png: {R}/notes.txt is a file, not a folder; choose another --plot',
    ),
    (
        'validate-plot-is-folder',
        ['validate', '{R}/garbage.onnx', '--plot', '{R}/adir'],
        2,
        '--plot {R}/adir: is a folder, not a file; choose another --plot',
    ),
    ('validate-no-model', ['validate'], 2, 'the following arguments are required: model'),
    # -------------------- quantize
    (
        'quantize-missing-model',
        ['quantize', '{R}/missing.onnx'],
        2,
        'ONNX model file not found: {R}/missing.onnx',
    ),
    (
        'quantize-garbage-model',
        ['quantize', '{R}/garbage.onnx'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'quantize-empty-model',
        ['quantize', '{R}/empty.onnx'],
        2,
        "{R}/empty.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'quantize-model-is-folder',
        ['quantize', '{R}/adir.onnx'],
        2,
        'ONNX model file not found: {R}/adir.onnx',
    ),
    (
        'quantize-model-no-metadata',
        ['quantize', '{R}/nometa.onnx'],
        2,
        "{R}/nometa.onnx: no 'nas.preprocessing' metadata (export the model with 'nas export')",
    ),
    (
        'quantize-model-bad-metadata',
        ['quantize', '{R}/badmeta.onnx'],
        2,
        "{R}/badmeta.onnx: metadata 'nas.preprocessing' is not valid JSON (Expecting property name",
    ),
    (
        'quantize-samples-negative',
        ['quantize', '{R}/garbage.onnx', '--samples', '-1'],
        2,
        'samples must be a positive integer, got -1',
    ),
    (
        'quantize-samples-zero',
        ['quantize', '{R}/garbage.onnx', '--samples', '0'],
        2,
        'samples must be a positive integer, got 0',
    ),
    (
        'quantize-samples-text',
        ['quantize', '{R}/garbage.onnx', '--samples', 'abc'],
        2,
        "argument --samples: invalid int value: 'abc'",
    ),
    (
        'quantize-samples-fraction',
        ['quantize', '{R}/garbage.onnx', '--samples', '1.5'],
        2,
        "argument --samples: invalid int value: '1.5'",
    ),
    (
        'quantize-samples-nan',
        ['quantize', '{R}/garbage.onnx', '--samples', 'nan'],
        2,
        "argument --samples: invalid int value: 'nan'",
    ),
    (
        'quantize-seed-negative',
        ['quantize', '{R}/garbage.onnx', '--seed', '-1'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'quantize-seed-text',
        ['quantize', '{R}/garbage.onnx', '--seed', 'abc'],
        2,
        "argument --seed: invalid int value: 'abc'",
    ),
    (
        'quantize-severities-zero',
        ['quantize', '{R}/garbage.onnx', '--severities', '0'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'quantize-severities-6',
        ['quantize', '{R}/garbage.onnx', '--severities', '6'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'quantize-severities-text',
        ['quantize', '{R}/garbage.onnx', '--severities', 'abc'],
        2,
        "argument --severities: expected comma-separated integers such as 1,3,5, got 'abc'",
    ),
    (
        'quantize-families-unknown',
        ['quantize', '{R}/garbage.onnx', '--families', 'rain'],
        2,
        '{R}/garbage.onnx: not a readable ONNX model (DecodeError)',
    ),
    (
        'quantize-split-unknown',
        ['quantize', '{R}/garbage.onnx', '--split', 'test'],
        2,
        "argument --split: invalid choice: 'test' (choose from 'val', 'all')",
    ),
    (
        'quantize-out-under-file',
        ['quantize', '{R}/garbage.onnx', '--out', '{R}/notes.txt/m.onnx'],
        2,
        '--out {R}/notes.txt/m.onnx: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'quantize-out-is-folder',
        ['quantize', '{R}/garbage.onnx', '--out', '{R}/adir'],
        2,
        '--out {R}/adir: is a folder, not a file; choose another --out',
    ),
    (
        'quantize-json-under-file',
        ['quantize', '{R}/garbage.onnx', '--json', '{R}/notes.txt/int8.json'],
        2,
        '--json {R}/notes.txt/int8.json: {R}/notes.txt is a file, not a folder; choose another',
    ),
    (
        'quantize-json-is-folder',
        ['quantize', '{R}/garbage.onnx', '--json', '{R}/adir'],
        2,
        '--json {R}/adir: is a folder, not a file; choose another --json',
    ),
    ('quantize-no-model', ['quantize'], 2, 'the following arguments are required: model'),
    # -------------------- spaces
    ('spaces-extra-argument', ['spaces', 'mobilenet'], 2, 'unrecognized arguments: mobilenet'),
    ('spaces-unknown-flag', ['spaces', '--yaml'], 2, 'unrecognized arguments: --yaml'),
    (
        'spaces-json-with-value',
        ['spaces', '--json=yes'],
        2,
        "argument --json: ignored explicit argument 'yes'",
    ),
    # -------------------- profiles
    ('profiles-extra-argument', ['profiles', 'x86-cpu'], 2, 'unrecognized arguments: x86-cpu'),
    ('profiles-unknown-flag', ['profiles', '--csv'], 2, 'unrecognized arguments: --csv'),
    # -------------------- serch
    (
        'unknown-command',
        ['serch'],
        2,
        "argument COMMAND: invalid choice: 'serch' (choose from 'search', 'export', 'train',",
    ),
    # -------------------- profile
    ('profile-no-step', ['profile'], 2, 'the following arguments are required: STEP'),
    # -------------------- profile mesure
    (
        'profile-unknown-step',
        ['profile', 'mesure'],
        2,
        "argument STEP: invalid choice: 'mesure' (choose from 'bundle', 'measure', 'fit',",
    ),
    # -------------------- profile bundle
    (
        'profile-bundle-networks-negative',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml', '--out', '{R}/newbundle', '--networks', '-1'],
        2,
        'networks: must be at least 1, got -1',
    ),
    (
        'profile-bundle-networks-text',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml', '--out', '{R}/newbundle', '--networks', 'abc'],
        2,
        "argument --networks: invalid int value: 'abc'",
    ),
    (
        'profile-bundle-networks-fraction',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml', '--out', '{R}/newbundle', '--networks', '1.5'],
        2,
        "argument --networks: invalid int value: '1.5'",
    ),
    (
        'profile-bundle-seed-negative',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml', '--out', '{R}/newbundle', '--seed', '-1'],
        2,
        'seed',
    ),
    (
        'profile-bundle-seed-text',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml', '--out', '{R}/newbundle', '--seed', 'abc'],
        2,
        "argument --seed: invalid int value: 'abc'",
    ),
    (
        'profile-bundle-seed-huge',
        [
            'profile',
            'bundle',
            '--space',
            '{R}/tiny.yaml',
            '--out',
            '{R}/newbundle',
            '--networks',
            '1',
            '--no-blocks',
            '--seed',
            '99999999999999999999',
        ],
        2,
        'seed',
    ),
    (
        'profile-bundle-zero-graphs',
        [
            'profile',
            'bundle',
            '--space',
            '{R}/tiny.yaml',
            '--out',
            '{R}/newbundle',
            '--networks',
            '0',
            '--no-blocks',
        ],
        2,
        'networks: must be at least 1, got 0',
    ),
    (
        'profile-bundle-no-out',
        ['profile', 'bundle', '--space', '{R}/tiny.yaml'],
        2,
        'the following arguments are required: --out',
    ),
    (
        'profile-bundle-out-under-file',
        ['profile', 'bundle', '--out', '{R}/notes.txt/b'],
        2,
        '--out {R}/notes.txt/b: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'profile-bundle-out-is-file',
        ['profile', 'bundle', '--out', '{R}/notes.txt'],
        2,
        '--out {R}/notes.txt: is a file, not a folder; choose another --out',
    ),
    (
        'profile-bundle-out-holds-a-bundle',
        [
            'profile',
            'bundle',
            '--space',
            '{R}/tiny.yaml',
            '--out',
            '{R}/bundle-junk',
            '--networks',
            '1',
            '--no-blocks',
        ],
        2,
        'bundle-junk',
    ),
    (
        'profile-bundle-out-not-empty',
        [
            'profile',
            'bundle',
            '--space',
            '{R}/tiny.yaml',
            '--out',
            '{R}/run-not-nas',
            '--networks',
            '1',
            '--no-blocks',
        ],
        2,
        'run-not-nas',
    ),
    (
        'profile-bundle-space-unknown',
        ['profile', 'bundle', '--space', 'nope', '--out', '{R}/newbundle'],
        2,
        "unknown search space 'nope' (built-in: fbnet, mobilenet; or give a path to a .yaml file)",
    ),
    (
        'profile-bundle-space-syntax',
        ['profile', 'bundle', '--space', '{R}/space-syntax.yaml', '--out', '{R}/newbundle'],
        2,
        "{R}/space-syntax.yaml:3: invalid YAML: expected ',' or '}', but got ':'",
    ),
    (
        'profile-bundle-space-folder',
        ['profile', 'bundle', '--space', '{R}/adir', '--out', '{R}/newbundle'],
        2,
        '--space {R}/adir: is a folder; give a space YAML file (or a built-in name: fbnet,',
    ),
    (
        'profile-bundle-space-width',
        ['profile', 'bundle', '--space', '{R}/space-width.yaml', '--out', '{R}/newbundle'],
        2,
        '{R}/space-width.yaml:12: stages[0].width[0]: channel counts must be multiples of 8, got 12',
    ),
    # -------------------- profile measure
    (
        'profile-measure-missing-bundle',
        ['profile', 'measure', '{R}/missing-bundle'],
        2,
        '{R}/missing-bundle: not a calibration bundle (no bundle.json)',
    ),
    (
        'profile-measure-bundle-is-file',
        ['profile', 'measure', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: not a calibration bundle (no bundle.json)',
    ),
    (
        'profile-measure-empty-folder',
        ['profile', 'measure', '{R}/bundle-empty'],
        2,
        '{R}/bundle-empty: not a calibration bundle (no bundle.json)',
    ),
    (
        'profile-measure-junk-manifest',
        ['profile', 'measure', '{R}/bundle-junk'],
        2,
        '{R}/bundle-junk/bundle.json: not valid JSON (Expecting property name enclosed in double',
    ),
    (
        'profile-measure-models-not-list',
        ['profile', 'measure', '{R}/bundle-models'],
        2,
        '{R}/bundle-models/bundle.json: models: must be a list of {path, kind, id} entries',
    ),
    (
        'profile-measure-other-format',
        ['profile', 'measure', '{R}/bundle-format'],
        2,
        "{R}/bundle-format/bundle.json: format 'other' is not 'nas-bundle/1'",
    ),
    (
        'profile-measure-threads-negative',
        ['profile', 'measure', '{R}/bundle-format', '--threads', '-1'],
        2,
        'measurement setting intra_op_threads: must be a positive integer, got -1',
    ),
    (
        'profile-measure-threads-zero',
        ['profile', 'measure', '{R}/bundle-format', '--threads', '0'],
        2,
        'measurement setting intra_op_threads: must be a positive integer, got 0',
    ),
    (
        'profile-measure-threads-text',
        ['profile', 'measure', '{R}/bundle-format', '--threads', 'abc'],
        2,
        "argument --threads: invalid int value: 'abc'",
    ),
    (
        'profile-measure-threads-fraction',
        ['profile', 'measure', '{R}/bundle-format', '--threads', '1.5'],
        2,
        "argument --threads: invalid int value: '1.5'",
    ),
    (
        'profile-measure-provider-unknown',
        ['profile', 'measure', '{R}/bundle-ok', '--provider', 'WarpDrive'],
        2,
        "unknown execution provider 'WarpDrive'",
    ),
    ('profile-measure-graph-missing', ['profile', 'measure', '{R}/bundle-missing-graph'], 2, 'file missing'),
    (
        'profile-measure-bundle-is-out-of-another',
        ['profile', 'measure', '{R}/run-not-nas'],
        2,
        '{R}/run-not-nas: not a calibration bundle (no bundle.json)',
    ),
    (
        'profile-measure-optimization-unknown',
        ['profile', 'measure', '{R}/bundle-format', '--optimization', 'max'],
        2,
        'measurement setting graph_optimization: must be one of disable, basic, extended, all, got',
    ),
    ('profile-measure-no-bundle', ['profile', 'measure'], 2, 'the following arguments are required: bundle'),
    # -------------------- profile fit
    (
        'profile-fit-missing-csv',
        ['profile', 'fit', '--measurements', '{R}/missing.csv', '--name', 'dev'],
        2,
        'measurements file not found: {R}/missing.csv',
    ),
    (
        'profile-fit-csv-is-folder',
        ['profile', 'fit', '--measurements', '{R}/adir.csv', '--name', 'dev'],
        2,
        "{R}/adir.csv: unreadable CSV ([Errno 21] Is a directory: '{R}/adir.csv')",
    ),
    (
        'profile-fit-missing-columns',
        ['profile', 'fit', '--measurements', '{R}/meas/missing-cols.csv', '--name', 'dev'],
        2,
        '{R}/meas/missing-cols.csv:1: missing column(s) model, latency_ms (need model, latency_ms)',
    ),
    (
        'profile-fit-empty-csv',
        ['profile', 'fit', '--measurements', '{R}/meas/empty.csv', '--name', 'dev'],
        2,
        '{R}/meas/empty.csv:1: missing column(s) model, latency_ms (need model, latency_ms)',
    ),
    (
        'profile-fit-header-only',
        ['profile', 'fit', '--measurements', '{R}/meas/header-only.csv', '--name', 'dev'],
        2,
        '{R}/meas/header-only.csv: no measurements',
    ),
    (
        'profile-fit-latency-nan',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', 'dev'],
        2,
        '{R}/meas/nan.csv:2: latency_ms: must be a positive finite number of milliseconds, got nan',
    ),
    (
        'profile-fit-latency-negative',
        ['profile', 'fit', '--measurements', '{R}/meas/negative.csv', '--name', 'dev'],
        2,
        '{R}/meas/negative.csv:2: latency_ms: must be a positive finite number of milliseconds,',
    ),
    (
        'profile-fit-latency-zero',
        ['profile', 'fit', '--measurements', '{R}/meas/zero.csv', '--name', 'dev'],
        2,
        '{R}/meas/zero.csv:2: latency_ms: must be a positive finite number of milliseconds, got 0',
    ),
    (
        'profile-fit-latency-inf',
        ['profile', 'fit', '--measurements', '{R}/meas/inf.csv', '--name', 'dev'],
        2,
        '{R}/meas/inf.csv:2: latency_ms: must be a positive finite number of milliseconds, got inf',
    ),
    (
        'profile-fit-latency-text',
        ['profile', 'fit', '--measurements', '{R}/meas/text.csv', '--name', 'dev'],
        2,
        "{R}/meas/text.csv:2: latency_ms: not a number: 'fast'",
    ),
    (
        'profile-fit-model-file-missing',
        ['profile', 'fit', '--measurements', '{R}/meas/nofile.csv', '--name', 'dev'],
        2,
        '{R}/meas/nofile.csv:2: model: ONNX file not found: {R}/meas/missing.onnx',
    ),
    (
        'profile-fit-model-empty',
        ['profile', 'fit', '--measurements', '{R}/meas/nomodel.csv', '--name', 'dev'],
        2,
        '{R}/meas/nomodel.csv:2: model: ONNX file not found: {R}/meas',
    ),
    (
        'profile-fit-model-garbage',
        ['profile', 'fit', '--measurements', '{R}/meas/garbage-model.csv', '--name', 'dev'],
        2,
        '{R}/meas/garbage-model.csv:2: {R}/meas/garbage.onnx: not a loadable ONNX model: Error',
    ),
    (
        'profile-fit-binary-csv',
        ['profile', 'fit', '--measurements', '{R}/meas/binary.csv', '--name', 'dev'],
        2,
        "{R}/meas/binary.csv: unreadable CSV ('utf-8' codec can't decode byte 0xff in position 0:",
    ),
    (
        'profile-fit-name-bad',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', '../evil'],
        2,
        "--name: '../evil' is not a profile name (letters, digits, '.', '_' and '-')",
    ),
    (
        'profile-fit-name-empty',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', ''],
        2,
        "--name: '' is not a profile name (letters, digits, '.', '_' and '-')",
    ),
    (
        'profile-fit-name-space',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', 'my dev'],
        2,
        "--name: 'my dev' is not a profile name (letters, digits, '.', '_' and '-')",
    ),
    (
        'profile-fit-name-builtin',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', 'x86-cpu'],
        2,
        "--name: 'x86-cpu' is a built-in profile; choose another name (or --out a file)",
    ),
    (
        'profile-fit-out-exists',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', 'dev', '--out', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: exists; pass --force to replace it, or --out another file',
    ),
    (
        'profile-fit-out-under-file',
        [
            'profile',
            'fit',
            '--measurements',
            '{R}/meas/nan.csv',
            '--name',
            'dev',
            '--out',
            '{R}/notes.txt/dev.yaml',
        ],
        2,
        '--out {R}/notes.txt/dev.yaml: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'profile-fit-out-is-folder',
        [
            'profile',
            'fit',
            '--measurements',
            '{R}/meas/nan.csv',
            '--name',
            'dev',
            '--out',
            '{R}/adir',
            '--force',
        ],
        2,
        '--out {R}/adir: is a folder, not a file; choose another --out',
    ),
    (
        'profile-fit-latency-unknown',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv', '--name', 'dev', '--latency', 'guessed'],
        2,
        "argument --latency: invalid choice: 'guessed' (choose from 'predicted', 'measured')",
    ),
    (
        'profile-fit-no-measurements',
        ['profile', 'fit', '--name', 'dev'],
        2,
        'one of the arguments --measurements --from-run is required',
    ),
    (
        'profile-fit-from-run-and-measurements',
        ['profile', 'fit', '--measurements', '{R}/a.csv', '--from-run', '{R}/run-not-nas', '--name', 'd'],
        2,
        'argument --from-run: not allowed with argument --measurements',
    ),
    (
        'profile-fit-from-run-not-a-run',
        ['profile', 'fit', '--from-run', '{R}/run-not-nas', '--name', 'dev'],
        2,
        '--from-run {R}/run-not-nas: not a nas run directory (no config.json and study.db)',
    ),
    (
        'profile-fit-no-name',
        ['profile', 'fit', '--measurements', '{R}/meas/nan.csv'],
        2,
        'the following arguments are required: --name',
    ),
    # -------------------- profile import
    (
        'profile-import-missing-table',
        ['profile', 'import', '--table', '{R}/missing.csv', '--name', 'dev'],
        2,
        'latency table not found: {R}/missing.csv',
    ),
    (
        'profile-import-table-is-folder',
        ['profile', 'import', '--table', '{R}/adir.csv', '--name', 'dev'],
        2,
        "{R}/adir.csv: cannot read latency table: [Errno 21] Is a directory: '{R}/adir.csv'",
    ),
    (
        'profile-import-missing-columns',
        ['profile', 'import', '--table', '{R}/table/missing-cols.csv', '--name', 'dev'],
        2,
        '{R}/table/missing-cols.csv:1: missing required column(s): kernel, expansion, groups,',
    ),
    (
        'profile-import-empty-table',
        ['profile', 'import', '--table', '{R}/table/empty.csv', '--name', 'dev'],
        2,
        '{R}/table/empty.csv:1: missing required column(s): block, kernel, expansion, groups,',
    ),
    (
        'profile-import-header-only',
        ['profile', 'import', '--table', '{R}/table/header-only.csv', '--name', 'dev'],
        2,
        '{R}/table/header-only.csv:1: missing required column(s): block, kernel, expansion,',
    ),
    (
        'profile-import-binary-table',
        ['profile', 'import', '--table', '{R}/meas/binary.csv', '--name', 'dev'],
        2,
        "{R}/meas/binary.csv: cannot read latency table: 'utf-8' codec can't decode byte 0xff in",
    ),
    (
        'profile-import-onnx-as-table',
        ['profile', 'import', '--table', '{R}/garbage.onnx', '--name', 'dev'],
        2,
        "{R}/garbage.onnx: cannot read latency table: 'utf-8' codec can't decode byte 0xff in",
    ),
    (
        'profile-import-name-bad',
        ['profile', 'import', '--table', '{R}/table/empty.csv', '--name', 'a/b'],
        2,
        "--name: 'a/b' is not a profile name (letters, digits, '.', '_' and '-')",
    ),
    (
        'profile-import-name-builtin',
        ['profile', 'import', '--table', '{R}/table/empty.csv', '--name', 'pixel-3'],
        2,
        "--name: 'pixel-3' is a built-in profile; choose another name (or --out a file)",
    ),
    (
        'profile-import-out-exists',
        ['profile', 'import', '--table', '{R}/table/empty.csv', '--name', 'dev', '--out', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: exists; pass --force to replace it, or --out another file',
    ),
    (
        'profile-import-out-under-file',
        [
            'profile',
            'import',
            '--table',
            '{R}/table/small.csv',
            '--name',
            'dev',
            '--out',
            '{R}/notes.txt/dev.yaml',
        ],
        2,
        '--out',
    ),
    (
        'profile-import-out-is-folder',
        [
            'profile',
            'import',
            '--table',
            '{R}/table/small.csv',
            '--name',
            'dev',
            '--out',
            '{R}/adir',
            '--force',
        ],
        2,
        '--out',
    ),
    (
        'profile-import-device-on-block-table',
        ['profile', 'import', '--table', '{R}/table/small.csv', '--name', 'dev', '--device', 'toaster'],
        2,
        '{R}/table/small.csv: device is only for a unique-blocks table; this is a block table',
    ),
    (
        'profile-import-no-table',
        ['profile', 'import', '--name', 'dev'],
        2,
        'the following arguments are required: --table',
    ),
    # -------------------- profile calibrate
    (
        'profile-calibrate-networks-negative',
        ['profile', 'calibrate', '--out', '{R}/newcal.yaml', '--networks', '-1'],
        2,
        'networks: calibration needs at least 5 networks, got -1',
    ),
    (
        'profile-calibrate-networks-zero',
        ['profile', 'calibrate', '--out', '{R}/newcal.yaml', '--networks', '0'],
        2,
        'networks: calibration needs at least 5 networks, got 0',
    ),
    (
        'profile-calibrate-networks-two',
        ['profile', 'calibrate', '--out', '{R}/newcal.yaml', '--networks', '2'],
        2,
        'networks: calibration needs at least 5 networks, got 2',
    ),
    (
        'profile-calibrate-networks-text',
        ['profile', 'calibrate', '--out', '{R}/newcal.yaml', '--networks', 'abc'],
        2,
        "argument --networks: invalid int value: 'abc'",
    ),
    (
        'profile-calibrate-networks-fraction',
        ['profile', 'calibrate', '--out', '{R}/newcal.yaml', '--networks', '1.5'],
        2,
        "argument --networks: invalid int value: '1.5'",
    ),
    (
        'profile-calibrate-remote-profile',
        ['profile', 'calibrate', '--profile', 'pixel-3'],
        2,
        "profile 'pixel-3' is a remote device's: calibrate it by measuring on the device (nas",
    ),
    (
        'profile-calibrate-profile-unknown',
        ['profile', 'calibrate', '--profile', 'nope'],
        2,
        "unknown hardware profile 'nope' (available: essential-ph-1, gtx-1080ti, pixel-2,",
    ),
    (
        'profile-calibrate-profile-missing-file',
        ['profile', 'calibrate', '--profile', '{R}/missing.yaml'],
        2,
        'hardware profile file not found: {R}/missing.yaml',
    ),
    (
        'profile-calibrate-profile-syntax',
        ['profile', 'calibrate', '--profile', '{R}/profile-syntax.yaml'],
        2,
        "{R}/profile-syntax.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        'profile-calibrate-profile-missing-fields',
        ['profile', 'calibrate', '--profile', '{R}/profile-missing.yaml'],
        2,
        '{R}/profile-missing.yaml:1: latency: missing required field',
    ),
    (
        'profile-calibrate-out-under-file',
        ['profile', 'calibrate', '--out', '{R}/notes.txt/cal.yaml'],
        2,
        '--out {R}/notes.txt/cal.yaml: {R}/notes.txt is a file, not a folder; choose another --out',
    ),
    (
        'profile-calibrate-out-is-folder',
        ['profile', 'calibrate', '--out', '{R}/adir'],
        2,
        '--out {R}/adir: is a folder, not a file; choose another --out',
    ),
    (
        'profile-calibrate-space-unknown',
        ['profile', 'calibrate', '--space', 'nope', '--out', '{R}/newcal.yaml'],
        2,
        "unknown search space 'nope' (built-in: fbnet, mobilenet; or give a path to a .yaml file)",
    ),
    (
        'profile-calibrate-space-syntax',
        ['profile', 'calibrate', '--space', '{R}/space-syntax.yaml', '--out', '{R}/newcal.yaml'],
        2,
        "{R}/space-syntax.yaml:3: invalid YAML: expected ',' or '}', but got ':'",
    ),
    # -------------------- profile predict
    (
        'profile-predict-profile-unknown',
        ['profile', 'predict', '--profile', 'nope', '{R}/garbage.onnx'],
        2,
        "unknown hardware profile 'nope' (available: essential-ph-1, gtx-1080ti, pixel-2,",
    ),
    (
        'profile-predict-profile-syntax',
        ['profile', 'predict', '--profile', '{R}/profile-syntax.yaml', '{R}/garbage.onnx'],
        2,
        "{R}/profile-syntax.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        'profile-predict-profile-empty',
        ['profile', 'predict', '--profile', '{R}/profile-empty.yaml', '{R}/garbage.onnx'],
        2,
        '{R}/profile-empty.yaml:1: expected a mapping of fields (name, description, latency, runtime,',
    ),
    (
        'profile-predict-profile-no-model',
        ['profile', 'predict', '--profile', '{R}/profile-nomodel.yaml', '{R}/garbage.onnx'],
        2,
        '{R}/profile-nomodel.yaml:1: model: missing required field: a predicted profile needs a fitted',
    ),
    (
        'profile-predict-missing-model',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/missing.onnx'],
        2,
        'ONNX model not found: {R}/missing.onnx',
    ),
    (
        'profile-predict-garbage-model',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/garbage.onnx'],
        2,
        '{R}/garbage.onnx: not a loadable ONNX model: Error parsing message with type',
    ),
    (
        'profile-predict-empty-model',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/empty.onnx'],
        2,
        '{R}/empty.onnx: not an ONNX model (no graph nodes or inputs)',
    ),
    (
        'profile-predict-model-is-folder',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/adir.onnx'],
        2,
        'ONNX model not found: {R}/adir.onnx',
    ),
    (
        'profile-predict-text-model',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/notes.txt'],
        2,
        '{R}/notes.txt: not a loadable ONNX model: Error parsing message with type',
    ),
    (
        'profile-predict-second-model-missing',
        ['profile', 'predict', '--profile', 'pixel-3', '{R}/nometa.onnx', '{R}/missing.onnx'],
        2,
        'ONNX model not found: {R}/missing.onnx',
    ),
    (
        'profile-predict-no-models',
        ['profile', 'predict', '--profile', 'pixel-3'],
        2,
        'the following arguments are required: models',
    ),
    (
        'profile-predict-no-profile',
        ['profile', 'predict', '{R}/garbage.onnx'],
        2,
        'the following arguments are required: --profile',
    ),
    # -------------------- profile validate
    (
        'profile-validate-profile-unknown',
        ['profile', 'validate', '--profile', 'nope'],
        2,
        "unknown hardware profile 'nope' (available: essential-ph-1, gtx-1080ti, pixel-2,",
    ),
    (
        'profile-validate-profile-missing-file',
        ['profile', 'validate', '--profile', '{R}/missing.yaml'],
        2,
        'hardware profile file not found: {R}/missing.yaml',
    ),
    (
        'profile-validate-profile-folder',
        ['profile', 'validate', '--profile', '{R}/adir.yaml'],
        2,
        'hardware profile file not found: {R}/adir.yaml',
    ),
    (
        'profile-validate-profile-syntax',
        ['profile', 'validate', '--profile', '{R}/profile-syntax.yaml'],
        2,
        "{R}/profile-syntax.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        'profile-validate-profile-list',
        ['profile', 'validate', '--profile', '{R}/profile-list.yaml'],
        2,
        '{R}/profile-list.yaml:1: expected a mapping of fields (name, description, latency, runtime,',
    ),
    (
        'profile-validate-profile-wrong-types',
        ['profile', 'validate', '--profile', '{R}/profile-types.yaml'],
        2,
        '{R}/profile-types.yaml:1: name: must be a non-empty string, got [1, 2]',
    ),
    (
        'profile-validate-profile-bad-model',
        ['profile', 'validate', '--profile', '{R}/profile-badmodel.yaml'],
        2,
        '{R}/profile-badmodel.yaml:5: model.weights: must be a mapping of kind.feature to a number, got',
    ),
    (
        'profile-validate-no-validation',
        ['profile', 'validate', '--profile', '{R}/profile-nomodel.yaml'],
        2,
        '{R}/profile-nomodel.yaml:1: model: missing required field: a predicted profile needs a fitted',
    ),
    (
        'profile-validate-missing-csv',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/missing.csv'],
        2,
        'measurements file not found: {R}/missing.csv',
    ),
    (
        'profile-validate-csv-is-folder',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/adir.csv'],
        2,
        "{R}/adir.csv: unreadable CSV ([Errno 21] Is a directory: '{R}/adir.csv')",
    ),
    (
        'profile-validate-missing-columns',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/missing-cols.csv'],
        2,
        '{R}/meas/missing-cols.csv:1: missing column(s) model, latency_ms (need model, latency_ms)',
    ),
    (
        'profile-validate-empty-csv',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/empty.csv'],
        2,
        '{R}/meas/empty.csv:1: missing column(s) model, latency_ms (need model, latency_ms)',
    ),
    (
        'profile-validate-latency-nan',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/nan.csv'],
        2,
        '{R}/meas/nan.csv:2: latency_ms: must be a positive finite number of milliseconds, got nan',
    ),
    (
        'profile-validate-latency-negative',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/negative.csv'],
        2,
        '{R}/meas/negative.csv:2: latency_ms: must be a positive finite number of milliseconds,',
    ),
    (
        'profile-validate-model-missing',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/nofile.csv'],
        2,
        '{R}/meas/nofile.csv:2: model: ONNX file not found: {R}/meas/missing.onnx',
    ),
    (
        'profile-validate-model-garbage',
        ['profile', 'validate', '--profile', 'pixel-3', '--measurements', '{R}/meas/garbage-model.csv'],
        2,
        '{R}/meas/garbage-model.csv:2: {R}/meas/garbage.onnx: not a loadable ONNX model: Error',
    ),
    (
        'profile-validate-no-profile',
        ['profile', 'validate'],
        2,
        'the following arguments are required: --profile',
    ),
    # --budget PROFILE=MS (issue 17 point 4): a fleet of devices in one search
    (
        'search-budget-no-ms',
        [*S, '--budget', 'jetson-tx2'],
        2,
        "budgets: expected PROFILE=MS (e.g. jetson-tx2=8), got 'jetson-tx2'",
    ),
    (
        'search-budget-ms-text',
        [*S, '--budget', 'jetson-tx2=fast'],
        2,
        "budgets: 'jetson-tx2=fast': MS must be a number of milliseconds, got 'fast'",
    ),
    (
        'search-budget-zero',
        [*S, '--budget', 'jetson-tx2=0'],
        2,
        'budgets: jetson-tx2: must be a positive finite number of milliseconds, got 0.0',
    ),
    (
        'search-budget-negative',
        [*S, '--budget', 'jetson-tx2=-8'],
        2,
        'budgets: jetson-tx2: must be a positive finite number of milliseconds, got -8.0',
    ),
    (
        'search-budget-nan',
        [*S, '--budget', 'jetson-tx2=nan'],
        2,
        'budgets: jetson-tx2: must be a positive finite number of milliseconds, got nan',
    ),
    (
        'search-budget-duplicate',
        [*S, '--budget', 'jetson-tx2=8', '--budget', 'jetson-tx2=9'],
        2,
        "budgets: profile 'jetson-tx2' is given more than one budget",
    ),
    (
        'search-budget-no-profile',
        [*S, '--budget', '=8'],
        2,
        "budgets: a profile name or path is required, got ''",
    ),
    ('search-budget-unknown-profile', [*S, '--budget', 'no-such-board=8'], 2, 'budgets: no-such-board: '),
    (
        'search-budget-uncovered-space',
        [*S, '--budget', 'jetson-tx2=8'],
        2,
        'the profile jetson-tx2 has never measured',
    ),
    (
        'search-budget-and-latency-budget',
        [*S, '--budget', 'x86-cpu=3', '--latency-budget-ms', '2'],
        2,
        'budgets: x86-cpu is the search\'s profile: its budget is latency_budget_ms (2 ms)',
    ),
    # -------------------- prune
    ('prune-no-latency', ['prune', '{R}/export-ok'], 2, 'the following arguments are required: --latency-ms'),
    (
        'prune-latency-zero',
        ['prune', '{R}/export-ok', '--latency-ms', '0'],
        2,
        '--latency-ms: must be a number > 0',
    ),
    (
        'prune-latency-nan',
        ['prune', '{R}/export-ok', '--latency-ms', 'nan'],
        2,
        '--latency-ms: must be a number > 0',
    ),
    (
        'prune-latency-text',
        ['prune', '{R}/export-ok', '--latency-ms', 'abc'],
        2,
        "argument --latency-ms: invalid float value: 'abc'",
    ),
    (
        'prune-epochs-zero',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--epochs', '0'],
        2,
        '--epochs: must be an integer >= 1, got 0',
    ),
    (
        'prune-calibration-zero',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--calibration-images', '0'],
        2,
        '--calibration-images: must be an integer >= 1, got 0',
    ),
    (
        'prune-missing-folder',
        ['prune', '{R}/nope', '--latency-ms', '1'],
        2,
        'EXPORT_DIR {R}/nope: exported model folder not found',
    ),
    (
        'prune-no-metrics',
        ['prune', '{R}/export-no-metrics', '--latency-ms', '1'],
        2,
        'not an exported model folder (missing metrics.json)',
    ),
    ('prune-junk-spec', ['prune', '{R}/export-junk-spec', '--latency-ms', '1'], 2, 'spec.json'),
    (
        'prune-bad-arch',
        ['prune', '{R}/export-bad-arch', '--latency-ms', '1'],
        2,
        'spec.json: invalid architecture or preprocessing',
    ),
    (
        'prune-unknown-profile',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--profile', 'nope'],
        2,
        'nope',
    ),
    (
        'prune-measured-remote',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--profile', 'jetson-tx2', '--latency', 'measured'],
        2,
        'is a remote device, its latency is predicted',
    ),
    (
        'prune-out-is-file',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--out', '{R}/empty.txt'],
        2,
        'is a file, not a folder',
    ),
    (
        'prune-out-inside-source',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--out', '{R}/export-ok/pruned'],
        2,
        'inside the source folder',
    ),
    (
        'prune-out-holds-other-files',
        [
            'prune',
            '{R}/export-ok',
            '--latency-ms',
            '1',
            '--dataset',
            '{R}/tiny.npz',
            '--out',
            '{R}/export-junk-spec',
        ],
        2,
        'holds other files (not a nas prune output)',
    ),
    ('prune-dataset-classes', ['prune', '{R}/export-ok', '--latency-ms', '1'], 2, "are not the model's"),
    (
        'prune-no-weights',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--dataset', '{R}/tiny.npz'],
        2,
        'EXPORT_DIR {R}/export-ok: no torch weights',
    ),
    (
        'prune-kd-alpha-over-one',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--distill', '--kd-alpha', '2'],
        2,
        'kd_alpha: must be a number in [0, 1], got 2.0',
    ),
    (
        'prune-kd-temperature-zero',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--distill', '--kd-temperature', '0'],
        2,
        'kd_temperature: must be a number > 0, got 0.0',
    ),
    (
        'prune-kd-alpha-without-distill',
        ['prune', '{R}/export-ok', '--latency-ms', '1', '--kd-alpha', '0.3'],
        2,
        '--kd-alpha: only with --distill',
    ),
    (
        'search-profile-twice',
        [*S, '--profile', 'x86-cpu', '--profile', 'jetson-tx2'],
        2,
        'argument --profile: given more than once',
    ),
]


def _rows():
    for case in CASES:
        yield case if isinstance(case, type(pytest.param(1))) else pytest.param(*case, id=case[0])


class RealWork(Exception):
    """Raised by the guards: this row got past input checking into real work."""


def install_guards(setattr) -> None:
    """Stop what would start real work: Ray workers (search, baselines), deployment training, calibration."""
    import importlib

    def stop(*args, **kwargs):
        raise RealWork("this bad input got past input checking into real work")

    for module, name in (
        ("nas.search._api", "RayExecutor"),
        ("nas.search._executor", "RayExecutor"),
        ("nas.export._deploy", "_train"),
        ("nas.latency._machine", "calibrate_profile"),
    ):
        package = importlib.import_module(module.rpartition(".")[0])
        # resolve a lazy re-export first, so that a row cannot cache the guard in its place
        getattr(package, name, None)
        setattr(importlib.import_module(module), name, stop)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad-input") / "template"
    build_fixtures(path)
    return path


@pytest.fixture
def root(template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the fixtures per row (a row that wrongly writes cannot affect the next), which is also
    the working directory (default outputs such as results/ land in it) and the user's profile folder."""
    path = tmp_path / "user"
    shutil.copytree(template, path)
    install_guards(monkeypatch.setattr)
    monkeypatch.setenv("NAS_PROFILE_DIR", str(path / "profiles"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(path)
    return path


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize("case_id,argv,code,phrase", list(_rows()))
def test_bad_input(case_id, argv, code, phrase, root, capsys):
    argv = [a.replace("{R}", str(root)) for a in argv]
    before = snapshot(root)
    got = run_cli(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert got == code, f"exit {got}, stderr: {err}"
    if phrase == ARGPARSE or err.startswith("usage:"):
        assert err.startswith("usage: ") and "error: " in err, err
    else:
        assert err.startswith("nas: error: ") and err.count("\n") == 1, err
    assert phrase.replace("{R}", str(root)) in err, err
    assert snapshot(root) == before


def test_the_table_is_large_and_ids_are_unique():
    ids = [c.id if hasattr(c, "id") else c[0] for c in CASES]
    assert len(ids) >= 260 and len(set(ids)) == len(ids)


if (
    __name__ == "__main__"
):  # probe: print what each row does now (python tests/test_bad_input_table.py [ID...])
    import contextlib
    import io
    import shutil as _shutil
    import sys
    import tempfile

    template = Path(tempfile.mkdtemp()) / "template"
    build_fixtures(template)
    install_guards(setattr)
    wanted = set(sys.argv[1:])
    for case in CASES:
        values = case.values if hasattr(case, "values") else case
        cid, argv, code, phrase = values
        if wanted and cid not in wanted:
            continue
        base = Path(tempfile.mkdtemp()) / "user"
        _shutil.copytree(template, base)
        os.chdir(base)
        os.environ["NAS_PROFILE_DIR"] = str(base / "profiles")
        before = snapshot(base)
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            try:
                got = run_cli([a.replace("{R}", str(base)) for a in argv])
            except BaseException as exc:  # noqa: BLE001
                got = f"EXC {type(exc).__name__}: {exc}"
        err = buf.getvalue().replace(str(base), "{R}")
        changed = "" if snapshot(base) == before else "  FILES CHANGED"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        print(f"{cid:45} {got} lines={err.count(chr(10))}{changed} | {last}", flush=True)
        _shutil.rmtree(base.parent)
