"""No import cycle among the modules of the request flow (codecs, the canonical model, providers,
routing), counting the imports made only for type checking: a cycle there means two modules that
cannot be understood, tested or moved one without the other (it once ran between the OpenAI codec and
its memo, and between the scenario router and the candidate list)."""

from __future__ import annotations

import ast
from pathlib import Path

import ccrouter

SRC = Path(ccrouter.__file__).resolve().parent
CHECKED = ("ccrouter.codecs", "ccrouter.messages", "ccrouter.providers", "ccrouter.routing")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The ccrouter modules ``path`` imports anywhere in it (``if TYPE_CHECKING:`` blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            while name not in modules and "." in name:
                name = name.rpartition(".")[0]
            if name in modules:
                found.add(name)
    return found


def _checked(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in CHECKED)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {target for target in _imports(path, modules) if target != name and _checked(target)}
        for name, path in modules.items()
        if _checked(name)
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_request_flow_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the scan sees the package
    found = cycles(graph)
    assert found == [], "import cycles (TYPE_CHECKING imports count): " + "; ".join(
        " <-> ".join(component) for component in found
    )
