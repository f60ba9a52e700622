"""Plugins: user modules imported once per process, by name, by path or through the `nas.plugins` entry
points, with one-line errors; and a user primitive used by a search whose trials run on real Ray workers."""

from __future__ import annotations

import os
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

import nas.plugins as plugins
from nas.errors import NasError
from nas.plugins import ENTRY_POINT_GROUP, load_plugins, loaded_plugins
from nas.space import forget_primitive, known_primitives


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Each test starts with no plugin loaded, and leaves the process's plugin list as it found it."""
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.setattr(plugins, "_installed", [])
    monkeypatch.setattr(plugins, "_installed_done", {"done": False})
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("h5plugin_"):
            del sys.modules[name]


def write_plugin(folder, name: str, body: str):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


COUNTING = """\
import pathlib
counter = pathlib.Path(__file__).with_suffix(".count")
counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
"""


def test_a_file_is_imported_once_per_process(tmp_path):
    path = write_plugin(tmp_path, "h5plugin_once", COUNTING)
    assert load_plugins([str(path)], installed=False) == ["h5plugin_once"]
    assert load_plugins([str(path), str(path)], installed=False) == ["h5plugin_once", "h5plugin_once"]
    assert (tmp_path / "h5plugin_once.count").read_text() == "1"
    assert loaded_plugins() == [str(path.resolve())]


def test_a_module_name_is_imported(tmp_path, monkeypatch):
    write_plugin(tmp_path, "h5plugin_by_name", COUNTING)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugins(["h5plugin_by_name"], installed=False) == ["h5plugin_by_name"]
    assert "h5plugin_by_name" in sys.modules and loaded_plugins() == ["h5plugin_by_name"]


@pytest.mark.parametrize(
    "spec, body, message",
    [
        ("h5plugin_missing_module", None, "plugin h5plugin_missing_module: no module named"),
        ("missing/h5plugin_none.py", None, "h5plugin_none.py: file not found"),
        ("h5plugin_broken.py", "import os\nvalue = undefined_name\n", r"h5plugin_broken.py:2: NameError"),
        ("h5plugin_deps.py", "import h5plugin_not_installed\n", "ModuleNotFoundError: No module named"),
        (
            "h5plugin_bad_primitive.py",
            "from nas.space import declare_primitive\n"
            "declare_primitive('h5_bad', {'dilation'}, build=lambda *a: None)\n",
            "h5plugin_bad_primitive.py: primitive 'h5_bad': unknown attributes",
        ),
    ],
)
def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it(tmp_path, monkeypatch, spec, body, message):
    monkeypatch.chdir(tmp_path)
    if body is not None:
        (tmp_path / spec).write_text(body)
    with pytest.raises(NasError, match=message) as error:
        load_plugins([spec], installed=False)
    assert "\n" not in str(error.value)
    assert loaded_plugins() == []


def test_a_file_named_like_an_imported_module_is_refused(tmp_path):
    path = write_plugin(tmp_path, "json", "X = 1\n")
    with pytest.raises(NasError, match="a different module named 'json' is already imported"):
        load_plugins([str(path)], installed=False)


def test_installed_entry_points_are_loaded_once(tmp_path, monkeypatch):
    write_plugin(
        tmp_path, "h5plugin_installed", COUNTING + "def register():\n    counter.write_text('called')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [
        EntryPoint("mine", "h5plugin_installed", ENTRY_POINT_GROUP),
        EntryPoint("with_hook", "h5plugin_installed:register", ENTRY_POINT_GROUP),
    ]
    asked = []

    def entry_points(group):
        asked.append(group)
        return found

    monkeypatch.setattr(plugins, "entry_points", entry_points)
    assert load_plugins([]) == []
    assert load_plugins([]) == []
    assert asked == [ENTRY_POINT_GROUP]
    assert plugins.installed_plugins() == ["mine", "with_hook"]
    assert (tmp_path / "h5plugin_installed.count").read_text() == "called"  # the hook ran after the import


def test_a_broken_entry_point_names_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [EntryPoint("broken", "h5plugin_gone", ENTRY_POINT_GROUP)]
    )
    with pytest.raises(NasError, match=r"plugin broken \(h5plugin_gone\): import failed"):
        load_plugins([])


PRIMITIVE_PLUGIN = """\
import os
import pathlib

from torch import nn

from nas.space import declare_primitive

# Which processes imported this plugin: the search's driver and each Ray worker that ran a task.
with open(pathlib.Path(__file__).with_suffix(".pids"), "a") as f:
    f.write(f"{os.getpid()}\\n")


@declare_primitive("h5_conv_elu", {"kernel"}, short="CE", latency={"Elu": "activation_relu"}, trace={"elu": "Elu"})
def conv_elu(c_in, c_out, stride, spec):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, spec.kernel, stride, spec.kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ELU(),
    )
"""

SPACE = """\
name: plugged
input: {resolution: 16}
stem: {channels: 8, kernel: 3, stride: 1, activation: relu}
block_choices: {primitive: [h5_conv_elu], kernel: [3, 5]}
stages:
  - {name: a, stride: 2, depth: 1, width: [8, 16]}
head: {width: null, activation: relu, dropout: 0.0}
"""


def test_a_user_primitive_runs_on_ray_workers(tmp_path, tiny_dataset_file, ray_executor):
    from nas.search import search

    plugin = write_plugin(tmp_path, "h5plugin_ray_primitive", PRIMITIVE_PLUGIN)
    space = tmp_path / "plugged.yaml"
    space.write_text(SPACE)
    try:
        result = search(
            space=str(space),
            dataset=str(tiny_dataset_file),
            trials=2,
            population=2,
            epochs=1,
            train_subset=32,
            out=str(tmp_path / "run"),
            plugins=[str(plugin)],
            executor=ray_executor,
        )
        assert result.complete == 2
        pids = {int(line) for line in plugin.with_suffix(".pids").read_text().split()}
        assert os.getpid() in pids and pids - {os.getpid()}, "no Ray worker imported the plugin"
    finally:
        forget_primitive("h5_conv_elu")
    assert "h5_conv_elu" not in known_primitives()


def test_a_sampler_a_plugin_registers_is_accepted_by_the_command_line(tmp_path):
    import argparse

    from nas.search import SAMPLERS, add_config_arguments, config_from_arguments

    plugin = tmp_path / "qmc_sampler_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from nas.search import SAMPLERS

            @SAMPLERS.register("plugin-qmc")
            def qmc(population, seed):
                import optuna

                return optuna.samplers.QMCSampler(seed=seed)
            """
        )
    )
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    try:
        args = parser.parse_args(["--sampler", "plugin-qmc", "--plugin", str(plugin)])
        config = config_from_arguments(args)
        assert config.sampler == "plugin-qmc" and "plugin-qmc" in SAMPLERS.names()
        with pytest.raises(NasError, match="unknown sampler 'plugin-qmx'"):
            config_from_arguments(parser.parse_args(["--sampler", "plugin-qmx", "--plugin", str(plugin)]))
    finally:
        SAMPLERS.forget("plugin-qmc")
