"""The shape the project holds itself to, checked on the source: no import circles, no
function over a screen, and a library that prints nothing (only cli/ may)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "qmqpsource"
# A function longer than this does not read on one screen.
MAX_FUNCTION_LINES = 60


def modules() -> Iterator[tuple[str, ast.Module, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path)), path


def imports_of(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every module of ours that ``tree`` imports, wherever: at the top, in a function, or
    under TYPE_CHECKING (an import for the type checker is a dependency all the same)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c not in (name, "qmqpsource"))
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                groups.append(sorted([*group, node]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circles() -> None:
    trees = {name: tree for name, tree, _ in modules()}
    graph = {name: imports_of(name, tree, set(trees)) for name, tree in trees.items()}
    assert circles(graph) == []


def test_the_circle_finder_finds_one() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_longer_than_a_screen() -> None:
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: "
        f"{node.end_lineno - node.lineno + 1} lines"
        for _, tree, path in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def writes_to_the_terminal(tree: ast.Module) -> list[int]:
    """Lines that print, or use sys.stdout or sys.stderr."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
            node.func.id == "print"
        ):
            lines.append(node.lineno)
        if (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("source", ["print('x')", "import sys\nsys.stderr.write('x')"])
def test_the_terminal_finder_finds_a_write(source: str) -> None:
    assert writes_to_the_terminal(ast.parse(source))


def test_only_the_commands_write_to_the_terminal() -> None:
    # The library logs (qmqpsource.logs); what a command prints is cli/'s business.
    writers = {
        str(path.relative_to(PACKAGE.parent)): lines
        for name, tree, path in modules()
        if not name.startswith("qmqpsource.cli") and (lines := writes_to_the_terminal(tree))
    }
    assert writers == {}
