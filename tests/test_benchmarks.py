"""The benchmark harness: every benchmark declares its needs and cost in one shape, the runner orders and
skips them by it, and the result writer stamps the header and keeps machine paths out of results.
Nothing here runs a benchmark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks import _harness, _runner  # noqa: E402
from benchmarks._harness import COSTS, Benchmark, absolute_paths, repo_path, write_result  # noqa: E402

MODULES = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))
BENCHMARKS = [p for p in MODULES if p.stem not in _runner.SUPPORT_MODULES]


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_every_benchmark_declares_needs_and_cost_in_one_shape(path):
    declared = _runner.declaration(path)
    known = {p.stem for p in BENCHMARKS}
    assert declared.cost in COSTS
    assert declared.seconds > 0
    assert set(declared.needs) <= known - {path.stem}
    assert all(not Path(p).is_absolute() for p in declared.data)
    if declared.cost == "cheap":
        assert declared.seconds <= 150, "a cheap benchmark takes under about two minutes"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_benchmarks_use_the_package_and_the_public_api_only(path):
    source = path.read_text()
    assert "sys.path.insert" not in source, "import siblings as benchmarks.<name>, not through sys.path"
    assert not re.search(r"^\s*ROOT\s*=", source, re.M), "ROOT lives in benchmarks._harness"
    private = re.findall(r"^\s*(?:from|import) (nas(?:\.\w+)*\._\w+)", source, re.M)
    assert not private, f"private nas modules (use the subpackage's __init__): {private}"
    siblings = "|".join(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
    assert not re.findall(rf"^\s*(?:from|import) (?:{siblings})\b", source, re.M), "import benchmarks.<name>"
    if path in BENCHMARKS:
        assert "write_result(" in source, (
            "every benchmark writes its result with benchmarks._harness.write_result"
        )


def test_the_runner_discovers_every_benchmark_and_orders_by_needs():
    declared = _runner.discover()
    assert sorted(declared) == sorted(p.stem for p in BENCHMARKS)
    order = _runner.in_order(sorted(declared), declared)
    assert sorted(order) == sorted(declared)
    for name in order:
        for need in declared[name].needs:
            assert order.index(need) < order.index(name), f"{name} runs before {need}, which it needs"


def test_in_order_puts_needs_first_keeps_the_given_order_and_refuses_circles():
    cheap = dict(cost="cheap", seconds=1.0)
    declared = {
        "a": Benchmark(needs=("c",), **cheap),
        "b": Benchmark(**cheap),
        "c": Benchmark(needs=("b",), **cheap),
    }
    assert _runner.in_order(["a", "b", "c"], declared) == ["b", "c", "a"]
    assert _runner.in_order(["a"], declared) == ["a"]  # a need not chosen is not added
    circle = {"a": Benchmark(needs=("b",), **cheap), "b": Benchmark(needs=("a",), **cheap)}
    with pytest.raises(ValueError, match="circle"):
        _runner.in_order(["a", "b"], circle)


def test_a_declaration_is_checked():
    with pytest.raises(ValueError, match="cost"):
        Benchmark(cost="slow", seconds=1)
    with pytest.raises(ValueError, match="extra"):
        Benchmark(cost="full", seconds=1, extra="gpu")
    with pytest.raises(ValueError, match="relative"):
        Benchmark(cost="full", seconds=1, data=("/data",))


def test_list_prints_every_benchmark_and_the_full_set_duration(capsys):
    assert _runner.main(["--list"]) == 0
    out = capsys.readouterr().out
    for path in BENCHMARKS:
        assert re.search(rf"^{path.stem}\s+(cheap|full)\s", out, re.M)
    total = sum(b.seconds for b in _runner.discover().values())
    assert f"takes about {_runner.duration(total)}" in out


def test_an_unknown_benchmark_is_one_line_and_exit_2(capsys):
    assert _runner.main(["no_such_benchmark"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown benchmark no_such_benchmark" in err


def test_the_runner_skips_with_one_line_what_lacks_its_data(monkeypatch, capsys):
    declared = {
        "first": Benchmark(cost="cheap", seconds=1),
        "second": Benchmark(cost="cheap", seconds=1, needs=("first",), data=("results/no-such-folder",)),
        "slow": Benchmark(cost="full", seconds=100),
    }
    ran = []
    monkeypatch.setattr(_runner, "discover", lambda: declared)
    monkeypatch.setattr(_runner, "run", lambda name, results: ran.append(name) or 0)
    assert _runner.main([]) == 0  # the cheap set
    out = capsys.readouterr().out
    assert ran == ["first"]
    assert "skip second: missing results/no-such-folder" in out
    assert "takes about 102 s" in out
    monkeypatch.setattr(_runner, "run", lambda name, results: ran.append(name) or 1)
    assert _runner.main(["slow"]) == 1  # a failing benchmark fails the run


def test_write_result_stamps_the_header(tmp_path, monkeypatch):
    monkeypatch.setenv(_harness.RESULTS_ENV, str(tmp_path))
    monkeypatch.setattr(sys, "argv", [str(ROOT / "benchmarks" / "example.py"), "--runs", "2"])
    out = write_result("example", {"value": 1.5}, started=time.perf_counter() - 2.0)
    assert out == tmp_path / "example.json"
    result = json.loads(out.read_text())
    assert list(result)[:6] == ["benchmark", "command", "date", "commit", "machine", "benchmark_seconds"]
    assert result["benchmark"] == "example" and result["value"] == 1.5
    assert result["command"] == "python benchmarks/example.py --runs 2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["date"])
    assert result["commit"]
    assert {"cpu", "python", "platform"} <= set(result["machine"])
    assert result["benchmark_seconds"] >= 2.0


def test_write_result_keeps_machine_paths_out(tmp_path, monkeypatch):
    monkeypatch.setenv(_harness.RESULTS_ENV, str(tmp_path))
    body = {
        "run": str(ROOT / "results" / "benchmark-runs" / "x"),
        str(ROOT.parent / "shared" / "data"): 1,
        "scratch": "/tmp/run-1/calibration.npz",
    }
    result = json.loads(write_result("example", body, started=time.perf_counter()).read_text())
    assert result["run"] == "results/benchmark-runs/x"
    assert "../shared/data" in result
    assert result["scratch"] == "<temporary>/calibration.npz"
    with pytest.raises(ValueError, match="absolute paths"):
        write_result("example", {"note": "read from /home/someone/data"}, started=time.perf_counter())
    with pytest.raises(ValueError, match="repeats header fields: date"):
        write_result("example", {"date": "today"}, started=time.perf_counter())


def test_repo_path_and_the_absolute_path_check():
    assert repo_path(ROOT / "results" / "benchmarks") == "results/benchmarks"
    assert repo_path(ROOT) == "."
    assert repo_path(ROOT.parent / "shared" / "data") == "../shared/data"
    found = absolute_paths({"a": ["/work/x", "C:\\data"], "/tmp/y": 1, "b": "see /home/u/z", "ok": "a/b/c"})
    assert sorted(found) == sorted(["/work/x", "C:\\data", "/tmp/y", "see /home/u/z"])
    assert absolute_paths({"unit": "ms/step", "ratio": "1/3/5", "path": "../shared/data", "n": 1.0}) == []


@pytest.mark.parametrize("how", [["benchmarks/proxy_recipe.py"], ["-m", "benchmarks.proxy_recipe"]])
def test_a_benchmark_runs_as_a_file_and_as_a_module(how):
    done = subprocess.run(
        [sys.executable, *how, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--variants" in done.stdout
