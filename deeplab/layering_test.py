"""The package's layering: no import cycles between its modules (imports inside functions
count: they only defer a cycle), and library code never imports the command-line glue."""

from __future__ import annotations

import ast
import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))
# entry points and their flag definitions: absl flags, sys.exit, environment set-up
GLUE = ("deeplab.entry", "deeplab.cli", "deeplab.flags", "deeplab.train.flags",
        "deeplab.zoo.flags", "deeplab.zoo.__main__")
LIBRARY = ("deeplab.api", "deeplab.inference", "deeplab.model", "deeplab.export",
           "deeplab.evaluate", "deeplab.checkpoints", "deeplab.data", "deeplab.vis",
           "deeplab.zoo.cache", "deeplab.zoo.registry", "deeplab.zoo.verify")


def _modules() -> dict[str, str]:
    """module name -> path, for every non-test module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py") and not name.endswith("_test.py") and name != "conftest.py":
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                found[rel.removesuffix(".__init__")] = path
    return found


def _imports(path: str, modules) -> set[str]:
    """The package's modules that `path` imports anywhere in its code."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        hit = next((n for n in names if n in modules), None)
        if hit and hit.startswith("deeplab"):
            out.add(hit)
    return out


def _graph():
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def _cycle_from(graph, start):
    """One import path start -> ... -> start, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_import_cycles():
    graph = _graph()
    cycles = [c for c in (_cycle_from(graph, m) for m in sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_library_code_never_imports_the_command_line_glue():
    graph = _graph()
    offenders = sorted(f"{m} imports {d}" for m, deps in graph.items()
                       if m.startswith(LIBRARY) and not m.startswith(GLUE)
                       for d in deps if d.startswith(GLUE))
    assert not offenders, offenders


def test_the_checks_see_a_cycle_and_glue_when_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle_from(graph, "a") == ["a", "b", "c", "a"] and _cycle_from(graph, "d") is None
    assert "deeplab.entry" in _imports(os.path.join(PACKAGE, "cli", "eval.py"), _modules())
