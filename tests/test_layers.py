"""The package's layers: which part of `nas` may import which, checked on the source with `ast`.

`LAYERS` is the one statement of the allowed directions. A unit (a top-level module, or a subpackage with
all its modules) may import units of lower layers only: never one of its own layer, never one above.
Top-level private modules (`nas._io`, `nas._lazy`, `nas._resources`, ...) are a shared bottom and may
be imported from anywhere. Every import counts: module-level and inside functions (except under
`if TYPE_CHECKING:`), and the modules named in `lazy_exports(...)` tables. `benchmarks/` sits above all of
`nas`. Three rules, each failing with every violation listed at once (file:line):

1. no import against the direction of `LAYERS`;
2. no import of another unit's private module or private name (`nas.x._y`, or `from nas.x import _y`, from
   outside `nas/x/`): a subpackage's `__init__` is its only way in;
3. no import circle between modules (an edge per import; a package's `__init__` is the module `nas.x`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[tuple[str, ...]] = [  # lowest first
    ("nas.errors",),
    ("nas._*",),  # top-level private modules (_io, _lazy, _resources, ...): shared helpers for any layer
    ("nas.records",),  # the typed trial record
    ("nas.space", "nas.data", "nas.onnx_io", "nas.plugins", "nas.runtime"),  # runtime: no torch
    ("nas.builder",),  # networks from architectures, and the layers primitives are made of
    ("nas.blocks",),  # the built-in primitives, declared once each
    ("nas.latency",),
    ("nas.exits",),  # early exits: joint loss, calibration, segments and their expected latency
    ("nas.validate",),  # validates exported models; torch robustness used inside training
    ("nas.evaluate",),  # costs, zero-cost scores, proxy training
    ("nas.export", "nas.search"),  # export and deployment training; the search driver
    ("nas.baselines", "nas.report", "nas.prune"),  # nas.prune: cut to a latency target, fine-tune, re-export
    ("nas.cli_profile", "nas.cli_select", "nas.cli_validate", "nas.cli_prune", "nas.cli_train"),
    ("nas.cli_adapt",),  # nas adapt: the deployment trainer around nas.validate, with nas select's flags
    ("nas.cli",),
    ("nas", "nas.__main__"),  # the package's own API re-exports everything
    ("benchmarks",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


@dataclass(frozen=True)
class Import:
    importer: str  # module name of the importing file
    path: Path
    line: int
    target: str  # the module imported (a file's module, or the package it names)
    names: tuple[str, ...]  # for `from X import a, b`: a, b


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = sorted((ROOT / "nas").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def resolve(name: str) -> str:
        if module.startswith("benchmarks") and name.split(".")[0] in {m.split(".")[-1] for m in modules}:
            local = f"benchmarks.{name}"  # benchmarks import each other through sys.path
            if local in modules:
                return local
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    found.append(Import(module, path, node.lineno, target, ()))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            target = resolve(base)
            if target:
                plain = tuple(n for n in names if f"{base}.{n}" not in modules)
                if plain or not submodules:
                    found.append(Import(module, path, node.lineno, target, plain))
            found.extend(Import(module, path, node.lineno, sub, ()) for sub in submodules)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports":
            for table in (a for a in node.args if isinstance(a, ast.Dict)):
                for key in table.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        target = resolve(key.value)
                        if target:
                            found.append(Import(module, path, node.lineno, target, ()))
    return [i for i in found if i.target.split(".")[0] in ("nas", "benchmarks")]


def _shared(module: str) -> bool:
    """A top-level private module such as `nas._io`."""
    parts = module.split(".")
    return (
        len(parts) == 2 and parts[0] == "nas" and parts[1].startswith("_") and not parts[1].startswith("__")
    )


def _unit(module: str) -> str | None:
    """The LAYERS unit a module belongs to: itself, or the subpackage that holds it."""
    if module in RANK:
        return module
    if _shared(module):
        return "nas._*"
    for unit in RANK:
        if unit != "nas" and module.startswith(unit + "."):
            return unit
    return None


def _where(imp: Import) -> str:
    return f"{imp.path.relative_to(ROOT)}:{imp.line}"


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    modules = _sources()
    return [imp for module, path in modules.items() for imp in _imports(module, path, modules)]


def test_every_module_has_a_layer():
    missing = sorted(m for m in _sources() if _unit(m) is None)
    assert not missing, (
        "modules not in tests/test_layers.py LAYERS (add each where it belongs):\n" + "\n".join(missing)
    )


def test_imports_go_down_the_layers(imports):
    violations = []
    for imp in imports:
        mine, theirs = _unit(imp.importer), _unit(imp.target)
        if mine is None or theirs is None or mine == theirs or theirs == "nas._*":
            continue
        if RANK[theirs] >= RANK[mine]:
            kind = "same-layer" if RANK[theirs] == RANK[mine] else "upward"
            violations.append(f"{_where(imp)}: {kind} import of {imp.target} from {mine} (see LAYERS)")
    assert not violations, f"{len(violations)} imports against the layers:\n" + "\n".join(violations)


def test_no_private_imports_across_units(imports):
    violations = []
    for imp in imports:
        mine, theirs = _unit(imp.importer), _unit(imp.target)
        if mine == theirs or theirs == "nas._*" or theirs is None:
            continue
        inner = imp.target[len(theirs) :].split(".")
        private_module = any(part.startswith("_") and part != "__init__" for part in inner if part)
        private_names = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        if private_module:
            violations.append(f"{_where(imp)}: {mine} imports private module {imp.target}")
        elif private_names:
            violations.append(
                f"{_where(imp)}: {mine} imports private {', '.join(private_names)} of {imp.target}"
            )
    assert not violations, f"{len(violations)} private imports across units:\n" + "\n".join(violations)


def test_no_import_circles(imports):
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.target != imp.importer:
            graph.setdefault(imp.importer, {}).setdefault(imp.target, imp)
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    report = []
    for circle in circles:
        members = set(circle)
        edges = [
            f"  {_where(imp)}: {a} -> {b}"
            for a in sorted(members)
            for b, imp in sorted(graph.get(a, {}).items())
            if b in members
        ]
        report.append(f"circle among {', '.join(sorted(members))}:\n" + "\n".join(edges))
    assert not circles, f"{len(circles)} import circles:\n" + "\n".join(report)


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the module graph may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


@pytest.mark.parametrize(
    "module, absent",
    [
        ("nas.export", ("optuna", "nas.search._driver")),  # reading an export needs no search machinery
        ("nas.latency", ("torch",)),
        ("nas.space", ("torch", "onnx")),
        ("nas.data", ("torch",)),
    ],
)
def test_light_imports(module, absent):
    """Importing these packages does not load what they need only for some of their functions."""
    code = f"import sys, {module}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert result.stdout.strip() == "", f"import {module} loads {result.stdout.strip()}"
