"""Adding a primitive is one declaration in one module, and adding a device is one file: each works end to
end (the checklists of docs/extending.md)."""

from __future__ import annotations

import shutil
import sys
import textwrap

import numpy as np
import optuna
import pytest
import yaml

import nas.plugins as plugins
from nas.builder import build_block, build_model
from nas.errors import NasError
from nas.latency import graph_features, list_profiles, load_profile
from nas.onnx_io import export_onnx
from nas.plugins import load_plugins
from nas.space import BlockSpec, declare_primitive, forget_primitive, get_primitive, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The whole of a user's primitive: one declaration in one module.
PRIMITIVE_MODULE = """\
from torch import nn

from nas.space import declare_primitive


@declare_primitive(
    "conv_elu",
    {"kernel", "se"},
    short="CE",
    latency={"Elu": "activation_relu"},  # ONNX operator -> latency kind, for operators the model lacks
    trace={"elu": "Elu"},  # torch call -> that ONNX operator, so no export is needed to featurize
)
def conv_elu(c_in, c_out, stride, spec):
    from nas.builder import conv_bn, optional_se

    return nn.Sequential(conv_bn(c_in, c_out, spec.kernel, stride), *optional_se(c_out, spec), nn.ELU())
"""

SPACE = """\
name: with_conv_elu
input: {resolution: 16}
stem: {channels: 8, kernel: 3, stride: 1, activation: relu}
block_choices:
  primitive: [conv_elu, mbconv]
  kernel: [3, 5]
  expansion: [2]
  se: [false, true]
  activation: [relu]
stages:
  - {name: a, stride: 1, depth: [1, 2], width: 8}
  - {name: b, stride: 2, depth: [1, 2], width: [16, 24], primitive: [conv_elu]}
head: {width: null, activation: relu, dropout: 0.0}
"""


@pytest.fixture
def conv_elu(tmp_path, monkeypatch):
    monkeypatch.setattr(plugins, "_loaded", {})
    path = tmp_path / "h5ext_primitives.py"
    path.write_text(PRIMITIVE_MODULE)
    load_plugins([str(path)], installed=False)
    yield get_primitive("conv_elu")
    forget_primitive("conv_elu")
    sys.modules.pop("h5ext_primitives", None)


def test_a_declared_primitive_works_end_to_end(conv_elu, tmp_path):
    from nas.latency._trace import traced_features

    assert conv_elu.attributes == {"kernel", "se"} and conv_elu.short == "CE"
    space_file = tmp_path / "space.yaml"
    space_file.write_text(SPACE)
    space = load_space(space_file)  # validation: the name and its attributes are known
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    profile = load_profile("raspberry-pi-4")
    for _ in range(4):
        trial = study.ask()
        arch = space.sample(trial)
        blocks = [b for s in arch.stages for b in s.blocks if b.primitive == "conv_elu"]
        assert blocks and all(b.expansion is None and b.activation is None for b in blocks)
        assert "CE" in arch.summary()
        model = build_model(arch, num_classes=3, seed=0).eval()
        assert model(__import__("torch").zeros(1, 3, 16, 16)).shape == (1, 3)
        shape = (1, 3, 16, 16)
        traced = traced_features(model, shape)  # the tracer maps the declared call, no export
        exported = graph_features(export_onnx(model, 16, fast=True, input_shape=shape))
        assert traced is not None and [n.op_type for n in traced.nodes] == [n.op_type for n in exported.nodes]
        assert "Elu" in [n.op_type for n in exported.nodes]
        for t, e in zip(traced.nodes, exported.nodes):
            assert t.kind == e.kind
            np.testing.assert_array_equal(t.features, e.features)
        assert profile.predict(exported).latency_ms > 0


def test_an_operator_no_declaration_maps_is_refused_by_name(conv_elu):
    from torch import nn

    declare_primitive("h5ext_softplus", set(), build=lambda c_in, c_out, stride, spec: nn.Softplus())
    try:
        block = build_block(BlockSpec("h5ext_softplus"), 8, 8, 1)
        with pytest.raises(NasError, match="Softplus.*not supported by the latency model"):
            graph_features(export_onnx(block, 8, fast=True, input_shape=(1, 8, 8, 8)))
    finally:
        forget_primitive("h5ext_softplus")


def test_a_latency_mapping_to_an_unknown_kind_is_refused():
    from torch import nn

    graph = export_onnx(nn.ReLU(), 8, fast=True, input_shape=(1, 8, 8, 8))
    declare_primitive("h5ext_bad_kind", set(), build=lambda *a: None, latency={"Elu": "activation_elu"})
    try:
        with pytest.raises(NasError, match="'Elu' to 'activation_elu', not a latency kind"):
            graph_features(graph)
    finally:
        forget_primitive("h5ext_bad_kind")


def device_file(name: str) -> str:
    """A predicted-latency device: a shipped profile's model under another name."""
    raw = yaml.safe_load(load_profile("raspberry-pi-4").path.read_text())
    raw.pop("measurements", None)
    raw.update(name=name, description=f"{name}: a board for tests")
    return yaml.safe_dump(raw, sort_keys=False)


def test_a_device_is_one_file_in_the_user_profile_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_PROFILE_DIR", str(tmp_path))
    (tmp_path / "my-board.yaml").write_text(device_file("my-board"))
    profile = load_profile("my-board")
    assert profile.name == "my-board" and profile.latency == "predicted"
    assert "my-board" in [p.name for p in list_profiles()]


def test_a_builtin_device_is_one_file_in_hardware_profiles(tmp_path, monkeypatch):
    import nas._resources
    from nas._resources import builtin_dir
    from nas.latency import builtin_profile_names
    from nas.latency._table_profiles import builtin_table_specs

    package = tmp_path / "package"
    shutil.copytree(builtin_dir("hardware_profiles"), package / "hardware_profiles")
    shutil.copytree(builtin_dir("search_spaces"), package / "search_spaces")
    monkeypatch.setattr(nas._resources, "_PACKAGE_DIR", package)
    monkeypatch.setenv("NAS_PROFILE_DIR", str(tmp_path / "user"))
    text = device_file("new-board")
    (package / "hardware_profiles" / "new-board.yaml").write_text(text)
    assert "new-board" in builtin_profile_names()
    assert load_profile("new-board").description == "new-board: a board for tests"
    # a table-fitted device records the table it was fitted on, so it can be regenerated from itself
    raw = yaml.safe_load(text)
    raw["measurements"] = {
        "path": "data/raspberry-pi-4_fbnet_blocks.csv",
        "format": "block_table",
        "latency_column": "latency_ms",
        "provenance": "the Raspberry Pi table again",
        "license": "MIT",
    }
    (package / "hardware_profiles" / "new-board.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = builtin_table_specs(package / "hardware_profiles")["new-board"]
    assert spec["table"] == "raspberry-pi-4_fbnet_blocks.csv" and spec["device"] is None
    assert spec["license"] == "MIT" and spec["description"] == raw["description"]
    assert textwrap.dedent(spec["provenance"]) == raw["provenance"]
