"""That mypy checks us against trio's own inline types: ``python -m tests.trio_own_types``.

trio has shipped inline types (py.typed) since 0.23. trio-typing's stubs, the
``trio-stubs`` package, would shadow them, and mypy would then reject correct calls;
trio-typing's maintainers closed that work when trio took the types in. So none may
be installed where mypy runs (nox's typecheck session runs this first).
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable
from pathlib import Path

import trio


def problems(search_path: Iterable[str] | None = None) -> list[str]:
    """What stands between mypy and trio's own types; empty when nothing does."""
    paths = [Path(p) for p in (sys.path if search_path is None else search_path)]
    found = [str(p / "trio-stubs") for p in paths if (p / "trio-stubs").is_dir()]
    found += [
        f"{name} {dist.version}"
        for dist in importlib.metadata.distributions(path=[str(p) for p in paths])
        if (name := dist.metadata["Name"] or "").lower().replace("_", "-") == "trio-typing"
    ]
    said = []
    if found:
        said.append(f"trio-typing's stubs would shadow trio's own types: {', '.join(found)}")
    if not (Path(trio.__file__).parent / "py.typed").exists():
        said.append(f"trio {trio.__version__} has no inline types (py.typed): trio>=0.23 wanted")
    return said


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        return 1
    print(f"mypy checks against trio {trio.__version__}'s own types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
