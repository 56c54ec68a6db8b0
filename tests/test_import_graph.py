"""bench's modules import each other without cycles (imports at module top, so a cycle would break start-up or hide
behind function-local imports). The graph is read with ``ast`` from every ``import``/``from ... import`` in
bench/**/*.py -- at module top or inside functions -- and ``importlib.import_module("bench...")`` calls."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

BENCH = Path(__file__).resolve().parents[1] / "bench"


def module_files(root: Path = BENCH) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _owner(name: str, modules: dict) -> str | None:
    """The bench module that importing ``name`` executes last (``bench.x.y.Z`` -> ``bench.x.y``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported(tree: ast.AST, modules: dict) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:  # "from pkg import submodule" imports the submodule, "from mod import x" the module
                full = f"{node.module}.{a.name}"
                names.add(full if full in modules else node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return {m for m in (_owner(n, modules) for n in names) if m and m.startswith("bench")}


def import_graph(root: Path = BENCH) -> nx.DiGraph:
    modules = module_files(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imported(ast.parse(path.read_text(encoding="utf-8")), modules):
            if target != name:
                graph.add_edge(name, target)
    return graph


def test_bench_has_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycle(s): " + "; ".join(" -> ".join(c + c[:1]) for c in sorted(cycles, key=len)[:5])


def test_the_graph_sees_a_cycle(tmp_path):
    """The check itself: two modules importing each other (one inside a function) are a cycle."""
    pkg = tmp_path / "bench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from bench.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from bench import a\n")
    (pkg / "c.py").write_text("import importlib\nimportlib.import_module('bench.a')\n")
    graph = import_graph(pkg)
    assert sorted(map(sorted, nx.simple_cycles(graph))) == [["bench.a", "bench.b"]]
    assert graph.has_edge("bench.c", "bench.a")


def test_cli_is_the_only_package_with_argparse():
    """Arguments are parsed only in bench/cli, besides the two stand-alone tools ``python -m bench.calibrate`` and
    ``python -m bench.perf``."""
    users = sorted(name for name, path in module_files().items()
                   if "argparse" in imported_names(path) and not name.startswith("bench.cli"))
    assert users == ["bench.calibrate", "bench.perf"]


def imported_names(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_report_functions_never_print():
    """bench/report returns text and frames; only bench/cli prints."""
    report = {name: path for name, path in module_files().items() if name.startswith("bench.report")}
    printing = sorted(f"{name}:{node.lineno}" for name, path in report.items()
                      for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                      if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print")
    assert not printing, f"print() in bench/report: {printing}"
