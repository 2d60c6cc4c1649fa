"""The import graph of the code (read with `ast`, nothing is imported): no module cycles, and
the layering of the developer guide — backend → orchestrator → agents → {vertex_interface, store};
nothing imports upward. Every import counts: module level, inside functions (lazy) and under
`TYPE_CHECKING`, since each is a dependency a reader has to follow.

bench/, tests/ and testkit/ are checked separately: the product never imports them, and the
test-support package testkit/ (which both bench/ and tests/ use) imports neither of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Higher imports lower, never the other way; equal ranks do not import each other.
LAYERS = {"backend": 3, "orchestrator": 2, "agents": 1, "vertex_interface": 0, "store": 0}
SUPPORT = ("testkit", "bench", "tests")
PACKAGES = (*LAYERS, *SUPPORT)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(ROOT).parts):
                out[_module_name(path)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(project module imported, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod when there is one.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            # The longest known module the name starts with (`a.b.c` of `a.b.c.attr`).
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    known = set(modules)
    return {m: dict(_imports(m, p, known)) for m, p in modules.items()}


GRAPH = _graph()


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_graph_is_read_from_the_real_tree():
    # The parser sees what the code imports (guards against a test that checks nothing).
    assert GRAPH["backend.app"].keys() >= {"backend.services", "backend.turns", "orchestrator.turn"}
    assert "orchestrator.turn" in GRAPH["orchestrator.orchestrator"]
    assert len([m for m in GRAPH if _package(m) in LAYERS]) > 100


def test_cycle_detection_finds_a_cycle():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def _scope_cycles(scope: str) -> list[list[str]]:
    packages = set(LAYERS) if scope == "product" else set(SUPPORT)
    graph = {
        m: {d: line for d, line in deps.items() if _package(d) in packages}
        for m, deps in GRAPH.items()
        if _package(m) in packages
    }
    return _cycles(graph)


@pytest.mark.parametrize("scope", ["product", "support"])
def test_no_module_imports_itself_back(scope):
    assert _scope_cycles(scope) == []


def test_nothing_imports_upward():
    upward = [
        f"{module} (line {line}) imports {dep}"
        for module, deps in GRAPH.items()
        if _package(module) in LAYERS
        for dep, line in deps.items()
        if _package(dep) != _package(module)
        and (_package(dep) not in LAYERS or LAYERS[_package(dep)] >= LAYERS[_package(module)])
    ]
    assert upward == []


def test_support_packages_import_in_one_direction():
    # tests → {bench, testkit}, bench → testkit, testkit → product only; the product → none.
    allowed = {
        "tests": {"tests", "bench", "testkit"},
        "bench": {"bench", "testkit"},
        "testkit": {"testkit"},
    }
    wrong = [
        f"{module} (line {line}) imports {dep}"
        for module, deps in GRAPH.items()
        for dep, line in deps.items()
        if _package(dep) in SUPPORT and _package(dep) not in allowed.get(_package(module), set())
    ]
    assert wrong == []


def _reachable(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in GRAPH.get(todo.pop(), {}):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_app_factory_is_imported_by_the_wsgi_entry_only():
    # Services live in backend/services.py: the routes, the sidebar, the Socket.IO handlers and
    # the CLI reach them without the factory (and the CLI without Flask-SocketIO's handlers).
    importers = {m for m, deps in GRAPH.items() if "backend.app" in deps and _package(m) in LAYERS}
    assert importers == {"backend.wsgi"}
    assert not _reachable("backend.cli") & {"backend.app", "backend.socket_events"}
