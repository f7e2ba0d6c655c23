"""The package's modules import each other in one direction: no cycle, not even one only a
type checker follows (an import under ``if TYPE_CHECKING:`` counts)."""

import ast
from pathlib import Path

import socketlab

PACKAGE = Path(socketlab.__file__).parent


def imports() -> dict[str, set[str]]:
    """module -> the package's modules it imports, read from the source (every import)."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "socketlab":
                    found |= {alias.name for alias in node.names}
                elif node.module.startswith("socketlab."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("socketlab.")}
        graph[path.stem] = {name for name in found if (PACKAGE / f"{name}.py").exists()} - {path.stem}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of GRAPH, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    graph = imports()
    assert {"server", "handlers", "cli", "addresses"} <= set(graph)
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_loop_and_the_address_helpers_sit_below_the_cli():
    graph = imports()
    assert graph["addresses"] == set()
    assert "handlers" not in graph["server"] and "cli" not in graph["server"] | graph["handlers"]


def test_negative_control_a_cycle_is_found():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
