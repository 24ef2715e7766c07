"""results/ and report/ import one way: no module imports, however indirectly, one that
imports it back. Every import counts: under TYPE_CHECKING and inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent.parent / "qmqpsource"


def imports_within(folder: str) -> dict[str, set[str]]:
    """Module -> the modules of the same folder that it imports anywhere in its text."""
    names = {p.stem for p in (PACKAGE / folder).glob("*.py")} - {"__init__"}
    prefix = f"qmqpsource.{folder}."
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name in names:
        tree = ast.parse((PACKAGE / folder / f"{name}.py").read_text())
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t.removeprefix(prefix) for t in targets
                            if t.startswith(prefix) and t.removeprefix(prefix) in names}
    return graph


def circle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for target in sorted(graph[module]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


@pytest.mark.parametrize("folder", ["results", "report"])
def test_no_module_imports_itself_back(folder: str) -> None:
    graph = imports_within(folder)
    assert graph, "no modules found"
    circles = [c for m in sorted(graph) if (c := circle_through(graph, m)) is not None]
    assert circles == []


def test_the_checker_sees_a_circle() -> None:
    assert circle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ["a", "b", "c", "a"]
    assert circle_through({"a": {"b"}, "b": set()}, "a") is None
