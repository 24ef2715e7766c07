"""Helpers for the qmqp-sink tests: an in-process sink, a raw client, fd counting.

No tests here; the modules of tests/sink/ import these.
"""

from __future__ import annotations

import io
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

from qmqpsource import SINK_PROG
from qmqpsource.cli.logs import printing
from qmqpsource.protocol import Reply, ReplyParser, encode_request
from qmqpsource.sink import Sink, SinkConfig

POSTFIX_SOURCE = "/usr/sbin/qmqp-source"


def postfix_source_missing() -> str | None:
    """Why Postfix's qmqp-source cannot run here, or None. Only that tool is needed."""
    if not os.access(POSTFIX_SOURCE, os.X_OK):
        return (
            f"{POSTFIX_SOURCE} is missing: install Debian's postfix "
            "(DEBIAN_FRONTEND=noninteractive apt-get install -y postfix)"
        )
    return None


def ipv6_available() -> bool:
    """Whether [::1] can be bound (often not in containers)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@asynccontextmanager
async def reaped(proc: trio.Process) -> AsyncIterator[trio.Process]:
    """The block's child, killed and waited for if it still runs at the end: a failed
    assertion leaves no sink behind."""
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.move_on_after(5):
                await proc.wait()


async def stopped(proc: trio.Process, how: int = signal.SIGTERM, limit: float = 20.0) -> int:
    """Send ``how`` and wait (at most ``limit`` seconds) for the exit status."""
    proc.send_signal(how)
    with trio.fail_after(limit):
        return await proc.wait()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextmanager
def no_fd_leak() -> Iterator[None]:
    """Fail when the block leaves descriptors open (sockets, pipes, files)."""
    before = open_fds()
    yield
    leaked = open_fds() - before
    # A descriptor that was reused for something else cannot be told apart; new ones can.
    assert not leaked, f"descriptors left open: {sorted(leaked)}"


def request(
    message: bytes = b"Subject: test\n\nhello\n",
    sender: bytes = b"alice@example.test",
    recipients: tuple[bytes, ...] = (b"bob@example.test",),
) -> bytes:
    return encode_request(message, sender, list(recipients))


@dataclass
class RunningSink:
    sink: Sink
    target: str
    log: io.StringIO
    out: io.StringIO

    @property
    def log_lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


@asynccontextmanager
async def running_sink(**options: Any) -> AsyncIterator[RunningSink]:
    """An in-process sink on a free loopback port (or options["endpoint"]); SinkConfig's
    options, and qmqp-sink's ``verbose`` (-v) and ``counter`` (-c) for what it prints."""
    options.setdefault("endpoint", "127.0.0.1:0")
    verbose, counter = options.pop("verbose", 0), options.pop("counter", False)
    log, out = io.StringIO(), io.StringIO()
    with printing(SINK_PROG, verbose=verbose, counter=counter, err=lambda: log,
                  out=lambda: out):
        sink = Sink(SinkConfig(**options))
        async with trio.open_nursery() as nursery:
            labels: list[str] = await nursery.start(sink.serve)
            try:
                yield RunningSink(sink, labels[0], log, out)
            finally:
                nursery.cancel_scope.cancel()


def address_of(target: str) -> tuple[socket.AddressFamily, Any]:
    if target.startswith("unix:"):
        return socket.AF_UNIX, target[5:]
    host, _, port = target.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


async def connect(target: str) -> trio.socket.SocketType:
    family, address = address_of(target)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        with trio.fail_after(5):
            await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def read_all(sock: trio.socket.SocketType, within: float = 5.0) -> bytes:
    """Everything the server sends until it closes; a reset ends it too."""
    data = b""
    with trio.fail_after(within):
        while True:
            try:
                chunk = await sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


async def exchange(target: str, data: bytes, within: float = 5.0) -> bytes:
    """Connect, send, read until the server closes: the raw bytes it answered."""
    sock = await connect(target)
    with sock:
        with trio.fail_after(within):
            await send_all(sock, data)
        return await read_all(sock, within)


async def send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]


def parse_reply(raw: bytes) -> Reply:
    parser = ReplyParser()
    reply = parser.feed(raw)
    assert reply is not None, f"no complete reply in {raw!r}"
    return reply


async def wait_idle(run: RunningSink, within: float = 10.0) -> None:
    """Until the sink has no open connection; polled, as the sink has no event for it."""
    with trio.fail_after(within):
        while run.sink.stats.active:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def wait_waiting(run: RunningSink, count: int) -> None:
    """Until ``count`` connections are open and each waits for its first byte."""
    with trio.fail_after(10):
        while run.sink.stats.active < count:  # noqa: ASYNC110 - the sink has no event
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked()
