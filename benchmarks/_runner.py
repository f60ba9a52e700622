"""The benchmark runner: lists the benchmarks, orders them by what they need, runs or skips each.

Declarations are read from each module's source (its `BENCHMARK = Benchmark(...)` constant), so listing
and ordering import neither torch nor the benchmarks themselves; each benchmark runs in its own process.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import EXTRAS, RESULTS_ENV, ROOT, Benchmark, repo_path

HERE = Path(__file__).resolve().parent
# Not benchmarks: a module the benchmarks import, and the generator of the shipped corpus profiles.
SUPPORT_MODULES = ("nb201", "corpus_profiles")


def declaration(path: Path) -> Benchmark:
    """The `BENCHMARK = Benchmark(...)` constant of a benchmark's source, read without importing it."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["BENCHMARK"]
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "Benchmark"
            and not node.value.args
        ):
            return Benchmark(**{k.arg: ast.literal_eval(k.value) for k in node.value.keywords})
    raise ValueError(f"{repo_path(path)}: no module-level BENCHMARK = Benchmark(...) with literal keywords")


def discover() -> dict[str, Benchmark]:
    """Every benchmark of the package, by name."""
    paths = sorted(HERE.glob("*.py"))
    return {
        p.stem: declaration(p) for p in paths if not p.stem.startswith("_") and p.stem not in SUPPORT_MODULES
    }


def in_order(names: list[str], declared: dict[str, Benchmark]) -> list[str]:
    """`names` with every benchmark after those it needs (among `names`); ties keep the given order."""
    chosen, ordered, visiting = set(names), [], set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ValueError(f"benchmarks need each other in a circle: {name}")
        visiting.add(name)
        for need in declared[name].needs:
            if need in chosen:
                visit(need)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def missing(benchmark: Benchmark) -> list[str]:
    """What a benchmark needs that is not here: data paths and the modules of its optional extra."""
    gone = [p for p in benchmark.data if not (ROOT / p).exists()]
    if benchmark.extra:
        absent = [m for m in EXTRAS[benchmark.extra] if importlib.util.find_spec(m) is None]
        gone += [f"{', '.join(absent)} (pip install -e '.[{benchmark.extra}]')"] if absent else []
    if benchmark.accelerator == "cuda" and not cuda_available():
        gone.append("a CUDA GPU")
    return gone


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU, asked in a child process: the runner itself does not import torch."""
    probe = [sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"]
    return subprocess.run(probe, cwd=ROOT, capture_output=True).returncode == 0


def duration(seconds: float) -> str:
    """Seconds as a short human duration."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def listing(declared: dict[str, Benchmark]) -> str:
    """One line per benchmark: name, cost, recorded duration, what it needs."""
    lines = [f"{'benchmark':<22} {'cost':<6} {'takes':>7}  needs"]
    for name in in_order(list(declared), declared):
        b = declared[name]
        needs = [*b.needs, *(p for p in b.data if p.startswith("..")), *([f"[{b.extra}]"] if b.extra else [])]
        needs += [b.accelerator] if b.accelerator else []
        lines.append(f"{name:<22} {b.cost:<6} {duration(b.seconds):>7}  {', '.join(needs) or '-'}")
    return "\n".join(lines)


def full_set_line(declared: dict[str, Benchmark]) -> str:
    """How long the whole set takes, by the durations recorded in the results."""
    total = sum(b.seconds for b in declared.values())
    return (
        f"the full set (python -m benchmarks --all) takes about {duration(total)} by the recorded durations"
    )


def run(name: str, results: Path | None) -> int:
    """Run one benchmark in its own process; its exit status."""
    env = dict(os.environ, **({RESULTS_ENV: str(results.resolve())} if results else {}))
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Run the benchmarks.")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: the cheap ones)")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--results", type=Path, help="write results here instead of results/benchmarks/")
    args = parser.parse_args(argv)

    declared = discover()
    unknown = [n for n in args.names if n not in declared]
    if unknown:
        print(f"error: unknown benchmark {', '.join(unknown)} (python -m benchmarks --list)", file=sys.stderr)
        return 2
    if args.list:
        print(listing(declared))
        print(full_set_line(declared))
        return 0

    names = args.names or [n for n, b in declared.items() if args.all or b.cost == "cheap"]
    ran, failed, start = [], [], time.perf_counter()
    for name in in_order(names, declared):
        gone = missing(declared[name])
        if gone:
            print(f"skip {name}: missing {'; '.join(gone)}", flush=True)
            continue
        print(f"== {name} ({declared[name].cost}, recorded {duration(declared[name].seconds)})", flush=True)
        ran.append(name)
        if run(name, args.results) != 0:
            failed.append(name)
    took = duration(time.perf_counter() - start)
    print(f"ran {len(ran)} of {len(names)} benchmark(s) in {took}; failed: {', '.join(failed) or 'none'}")
    if not args.all:
        print(full_set_line(declared))
    return 1 if failed else 0
