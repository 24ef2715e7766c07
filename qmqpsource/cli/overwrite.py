"""An output file that is one of the command's inputs: refused before any work is done.

``qmqp-report --html run1.json run1.json run2.json`` replaced a result with the page;
``qmqp-source -F msg.eml --json msg.eml`` replaced the message with the result. A file
is known by its identity (device and inode), through symlinks and hard links, whatever
its path says: ``./a.json``, ``a.json`` and a link to it are the same file. Only plain
files are compared; ``-`` is stdin as an input and stdout as an output (``--json - >>
run1.json``). A device or a FIFO is not replaced by writing to it, and a terminal is
both stdin and stdout.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

__all__ = ["one_file_twice", "overwritten"]


def _identity(path: str, stdio: int) -> tuple[int, int] | None:
    """The plain file at ``path`` (``-``: the descriptor ``stdio``), if there is one."""
    try:
        info = os.fstat(stdio) if path == "-" else os.stat(path)
    except (OSError, ValueError):  # nothing there (yet), or a path with a NUL
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_dev, info.st_ino


def _said(path: str, stream: str) -> str:
    return f"- ({stream})" if path == "-" else path


def overwritten(outputs: Sequence[tuple[str, str]], inputs: Sequence[tuple[str, str]]
                ) -> str | None:
    """One line if an output, ``(option, path)``, is the same file as an input,
    ``(what, path)`` (``what``: how to name it, as ``-F`` or ``the input``); else None."""
    known: dict[tuple[int, int], str] = {}
    for what, path in inputs:
        identity = _identity(path, 0)
        if identity is not None:
            known.setdefault(identity, f"{what} {_said(path, 'stdin')}")
    for option, path in outputs:
        identity = _identity(path, 1)
        if identity is not None and identity in known:
            return f"{option} {_said(path, 'stdout')} would overwrite {known[identity]}"
    return None


def one_file_twice(outputs: Sequence[tuple[str, str]]) -> str | None:
    """One line if two outputs, ``(option, path)``, are one file (by identity where it
    exists, else by the path links resolve to): the second would replace the first."""
    seen: dict[object, str] = {}
    for option, path in outputs:
        if path == "-":
            continue  # stdout twice is refused where it is known (--json - --html -)
        key = _identity(path, 1) or os.path.realpath(path)
        if key in seen:
            return f"{option} {path} is the file {seen[key]} writes too"
        seen[key] = option
    return None
