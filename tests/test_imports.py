"""The package's import graph, read with ``ast`` (nothing is imported): it has no cycle, counting
function-level (lazy) imports too, and the models import nothing of files or the Hub."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "anovit"


def module_name(path: Path) -> str:
    """``anovit/models/cae.py`` -> ``anovit.models.cae``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The anovit modules that ``path`` imports anywhere in its body (top level or inside functions).

    ``from . import x`` counts as importing ``x`` when x is a module, else its package.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    """Module -> the anovit modules it imports."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imported_modules(path, modules) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_finds_a_planted_cycle_and_lazy_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "anovit.runs.checkpoint" in graph["anovit.hub.repo"]
    assert "anovit.evaluation.evaluate" in graph["anovit.jobs.background"]  # imported inside run_worker only


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_models_know_nothing_of_files_or_the_hub():
    graph = import_graph()
    models = [m for m in graph if m.startswith("anovit.models")]
    # ImageNet encoder weights come via network; config fields are checked by anovit.utils.validation (a leaf
    # that imports only anovit.utils.errors)
    allowed = {"anovit.utils.errors", "anovit.utils.network", "anovit.utils.validation", *models}
    assert graph["anovit.utils.validation"] <= {"anovit.utils.errors"}
    assert models and all(graph[m] <= allowed for m in models), {m: graph[m] - allowed for m in models}
