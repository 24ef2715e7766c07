"""Resource checks before a run: refuse what cannot work, in one line, before it starts.

A run that dies half-way (a MemoryError while building a 1 TB message, EMFILE at the
ten-thousandth session) reports nothing useful and may take the machine with it; one
refused up front says what to change. The checks are plain arithmetic on the options
and on the limits the system reports; the few functions that read those limits are
kept apart (``available_memory``, ``ensure_descriptors``) so that the rest is pure.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

from qmqpsource.errors import LimitError
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.message import default_address, system_hostname

__all__ = [
    "BUILD_COPIES",
    "RECIPIENT_OVERHEAD",
    "RESERVED_DESCRIPTORS",
    "LimitError",
    "available_memory",
    "build_memory",
    "check_memory",
    "check_resources",
    "descriptors_needed",
    "ensure_descriptors",
    "format_bytes",
    "plan_descriptors",
    "proc_value",
    "request_size",
]

# Descriptors besides the sessions' sockets: stdio, trio's epoll and wake-up pair, the
# resolver's threads, a JSON file, with room to spare.
RESERVED_DESCRIPTORS = 32
# The request is built once, but building it keeps a few whole copies alive at once
# (the message, its netstring, the body, the outer netstring): measured peak 3.25x.
BUILD_COPIES = 4
# Python objects per recipient while the list is built (str, encoded bytes, netstring,
# list slots): measured about 200 bytes for short addresses.
RECIPIENT_OVERHEAD = 256


def format_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'; for messages, not for exact accounting."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _netstring_size(length: int) -> int:
    return len(str(length)) + length + 2


def request_size(length: int, recipients: int, recipient: int, sender: int) -> int:
    """An upper bound on the request's bytes, from -l, -r and the addresses' lengths.

    ``-r N`` (N > 1) sends ``0ADDR`` ... ``(N-1)ADDR``; every item is a netstring.
    """
    digits = len(str(recipients - 1)) if recipients > 1 else 0
    body = _netstring_size(length) + _netstring_size(sender)
    body += recipients * _netstring_size(digits + recipient)
    return _netstring_size(body)


def build_memory(length: int, recipients: int, recipient: int, sender: int) -> int:
    """Bytes of memory that building the request needs at its peak (an estimate)."""
    return BUILD_COPIES * request_size(length, recipients, recipient, sender) + (
        recipients * RECIPIENT_OVERHEAD
    )


def check_memory(needed: int, available: int | None, what: str) -> None:
    """Refuse when ``needed`` bytes exceed what is ``available`` (None: unknown, allow)."""
    if available is not None and needed > available:
        raise LimitError(
            f"{what} needs about {format_bytes(needed)} of memory to build the request; "
            f"{format_bytes(available)} available"
        )


def descriptors_needed(sessions: int) -> int:
    """Every session holds one socket at a time; the process needs a few more."""
    return sessions + RESERVED_DESCRIPTORS


def plan_descriptors(sessions: int, soft: int, hard: int) -> int | None:
    """The soft RLIMIT_NOFILE to set for ``sessions``; None: leave it as it is.

    Raises the soft limit to the hard one (or to what is needed when the hard one is
    unlimited); refuses when even the hard limit is too low.
    """
    needed = descriptors_needed(sessions)
    infinity = resource.RLIM_INFINITY
    if soft == infinity or soft >= needed:
        return None
    if hard == infinity:
        return needed
    if hard >= needed:
        return hard
    raise LimitError(
        f"sessions {sessions} needs {needed} file descriptors; the limit is {hard} "
        "(see ulimit -Hn)"
    )


def proc_value(text: str, key: str) -> int | None:
    """A ``Key:   123 kB`` line of /proc/meminfo or /proc/self/status, in bytes."""
    for line in text.splitlines():
        name, colon, rest = line.partition(":")
        if colon and name == key:
            fields = rest.split()
            if not fields or not fields[0].isdigit():
                return None
            scale = 1024 if len(fields) > 1 and fields[1] == "kB" else 1
            return int(fields[0]) * scale
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeError):
        return None


def _cgroup_room(root: Path) -> int | None:
    """Memory left under the cgroup limit (v2, else v1); None when unlimited or unknown."""
    for limit_name, usage_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        limit_text, usage_text = _read(root / limit_name), _read(root / usage_name)
        if limit_text is None or usage_text is None:
            continue
        limit, usage = limit_text.strip(), usage_text.strip()
        # v1 says "no limit" with a huge page-rounded number, v2 with "max".
        if not (limit.isdigit() and usage.isdigit()) or int(limit) >= 2**62:
            return None
        return max(int(limit) - int(usage), 0)
    return None


def available_memory(
    proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """What a new allocation may use: the least of MemAvailable, the room under the
    cgroup's limit and under RLIMIT_AS; None when none of them is known."""
    candidates: list[int] = []
    meminfo = _read(proc / "meminfo")
    free = proc_value(meminfo, "MemAvailable") if meminfo is not None else None
    if free is None:
        try:
            free = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            free = None
    if free is not None and free > 0:
        candidates.append(free)
    room = _cgroup_room(cgroup)
    if room is not None:
        candidates.append(room)
    address_space, _ = resource.getrlimit(resource.RLIMIT_AS)
    if address_space != resource.RLIM_INFINITY:
        status = _read(proc / "self" / "status")
        used = proc_value(status, "VmSize") if status is not None else None
        candidates.append(max(address_space - (used or 0), 0))
    return min(candidates) if candidates else None


def ensure_descriptors(
    sessions: int,
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> None:
    """Make room for ``sessions`` sockets: raise the soft RLIMIT_NOFILE, or refuse."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    new_soft = plan_descriptors(sessions, soft, hard)
    if new_soft is None:
        return
    try:
        setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    except (ValueError, OSError) as exc:
        raise LimitError(
            f"sessions {sessions} needs {descriptors_needed(sessions)} file descriptors; the limit "
            f"is {soft} and raising it failed: {exc}"
        ) from None


def _encoded_length(text: str) -> int:
    # surrogateescape: bytes from argv that are not UTF-8 still have a length.
    return len(text.encode("utf-8", "surrogateescape"))


def check_resources(
    config: SourceConfig,
    memory: Callable[[], int | None] = available_memory,
    *,
    message_size: int | None = None,
) -> None:
    """Every pre-run check for a configured run; raises LimitError with one line.

    ``message_size``: -F's file size, which then takes the place of -l.
    """
    default = default_address(config.myhostname or system_hostname())
    recipient = config.recipient if config.recipient is not None else default
    sender = config.sender if config.sender is not None else default
    length = config.length if message_size is None else message_size
    needed = build_memory(
        length, config.recipients, _encoded_length(recipient), _encoded_length(sender)
    )
    what = f"length {config.length}" if message_size is None else (
        f"message_file {config.message_file} ({format_bytes(message_size)})")
    if config.recipients > 1:
        what += f" with recipients {config.recipients}"
    check_memory(needed, memory(), what)
    # More sessions than messages would never all be used (the runner starts no more).
    ensure_descriptors(min(config.sessions, config.messages))
