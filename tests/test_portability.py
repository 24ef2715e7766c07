"""No event loop of our own: trio picks the platform's poller, so we run wherever trio does.

Linux has epoll; FreeBSD, OpenBSD and macOS have kqueue instead. These tests make sure
that nothing of ours polls the operating system itself, and that every module and every
command's --help works on an interpreter whose select module has no epoll at all.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import qmqpsource

PACKAGE = Path(qmqpsource.__file__).parent
MODULES = sorted(
    info.name for info in pkgutil.walk_packages([str(PACKAGE)], "qmqpsource.")
    if not info.name.endswith("__main__")
)
# Run in a child: trio is imported first (it picks its poller, as on any platform), then
# every poller the select module has is taken away before any module of ours is imported.
WITHOUT_POLLERS = """
import select, sys
import trio
for name in dir(select):
    if name.lower().startswith(("epoll", "kqueue", "kevent", "kq_", "poll", "devpoll")):
        delattr(select, name)
assert not hasattr(select, "epoll")
"""


def test_no_module_of_ours_uses_the_select_module() -> None:
    users = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] in {"select", "selectors"} for name in names):
                users.append(f"{path.name}:{node.lineno}")
    assert users == []


def test_every_module_imports_without_epoll() -> None:
    code = WITHOUT_POLLERS + "".join(f"import {module}\n" for module in MODULES)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert len(MODULES) > 20  # the whole package, not an empty list


@pytest.mark.parametrize(
    "command", ["qmqpsource.cli.source", "qmqpsource.cli.sink", "qmqpsource.cli.report"]
)
def test_every_command_helps_without_epoll(command: str) -> None:
    code = WITHOUT_POLLERS + (
        f"sys.argv = ['prog', '--help']\nfrom {command} import main\nmain()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
