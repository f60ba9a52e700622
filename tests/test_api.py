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


def test_importing_nas_and_its_cli_does_not_import_torch():
    probe = (
        "import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises ImportError
        "import nas, nas.cli, nas.latency\n"
        "assert nas.NasError and nas.cli.main\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
