"""The package's shape: no import cycles (between files or between subpackages, imports inside
functions included), a survey-free core, and a short list of top-level modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import skcannon

PACKAGE = Path(skcannon.__file__).resolve().parent
#: Subpackages that must not reach the survey-specific code (directly or through others).
SURVEY_FREE = ("model", "inference", "plotting", "preprocessing")
#: Cross-cutting top-level modules allowed besides __init__, __main__ and _version.
MAX_TOP_LEVEL_MODULES = 7


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every skcannon module ``path`` imports, anywhere in the file (functions included).
    The root package ``skcannon`` (the public-API facade) is not a target."""
    here = module_name(path)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in modules and n != "skcannon" and n != here)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def subpackage(module: str) -> str:
    """'skcannon.model.cannon' -> 'model'; top-level modules stand for themselves."""
    return module.split(".")[1] if module != "skcannon" else module


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_finder_sees_cycles():
    """The checker itself: a planted cycle is found, an acyclic graph passes."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_functions_are_seen():
    graph = import_graph()
    # skcannon.cli imports its commands' libraries inside functions only
    assert "skcannon.pipeline.job" in graph["skcannon.cli.data"]


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        here = subpackage(module)
        graph.setdefault(here, set()).update(subpackage(t) for t in targets
                                             if subpackage(t) != here)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("core", SURVEY_FREE)
def test_core_does_not_reach_apogee(core):
    graph = import_graph()
    seen, todo = set(), [m for m in graph if subpackage(m) == core]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph[module])
    reached = sorted(m for m in seen if subpackage(m) == "apogee")
    assert not reached, f"skcannon.{core} reaches {reached}"


def test_top_level_holds_only_cross_cutting_modules():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py")
                     if p.stem not in ("__init__", "__main__", "_version"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_import_skcannon_in_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", "import skcannon; print(len(skcannon.__all__))"],
                          capture_output=True, text=True, check=True)
    assert int(done.stdout) == len(skcannon.__all__)


#: No function of the package is longer than this many lines (signature and docstring
#: included).
MAX_FUNCTION_LINES = 60


def long_functions(source: str, name: str) -> list[str]:
    """``"name:function (n lines)"`` for every function of ``source`` longer than
    :data:`MAX_FUNCTION_LINES` (methods and nested functions included)."""
    long = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{name}:{node.name} ({lines} lines)")
    return long


def test_the_length_checker_sees_long_functions_methods_included():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    method_body = body.replace("\n", "\n    ")
    source = f"def long():\n{body}\n\nclass A:\n    def method(self):\n    {method_body}\n"
    source += "\ndef short():\n    return 1\n"
    assert long_functions(source, "m.py") == [f"m.py:long ({MAX_FUNCTION_LINES + 1} lines)",
                                              f"m.py:method ({MAX_FUNCTION_LINES + 1} lines)"]


def test_every_function_of_the_package_is_short():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        long += long_functions(path.read_text(), str(path.relative_to(PACKAGE)))
    assert not long, long
