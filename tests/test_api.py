"""The public API: every name resolves, `nas.search` stays the function, and importing nas needs no torch."""

from __future__ import annotations

import subprocess
import sys

import nas


def test_every_public_name_resolves():
    for name in nas.__all__:
        assert getattr(nas, name) is not None, name


def test_search_is_the_function_even_after_the_subpackage_loads():
    import nas.search._api  # noqa: F401
    import nas.search._results  # noqa: F401

    assert callable(nas.search) and not isinstance(nas.search, type(sys))


def test_importing_nas_and_its_cli_does_not_import_torch_or_optuna():
    probe = (
        "import sys; sys.modules['torch'] = sys.modules['optuna'] = None\n"  # importing them now fails
        "import nas, nas.cli, nas.latency\n"
        "assert nas.NasError and nas.cli.main\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_plugin_that_cannot_be_imported_stops_the_search_before_anything_is_written(tmp_path):
    import pytest

    with pytest.raises(nas.NasError, match="plugin no_such_plugin_module"):
        nas.search(plugins=["no_such_plugin_module"], out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_search_takes_a_config_or_its_fields_as_keywords():
    import inspect

    assert list(inspect.signature(nas.search).parameters)[0] == "config"
    assert nas.SearchConfig(trials=3).trials == 3
