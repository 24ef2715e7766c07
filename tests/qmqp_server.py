"""A small trio QMQP server for tests: records what it receives, misbehaves on request.

    async with qmqp_server(reply=b"Kok", delay=0.05) as server:
        ... run the client against server.target ...
    assert len(server.requests) == 10

``handler`` replaces the whole conversation for broken-server tests; the
default reads one request, records it, waits ``delay`` and sends ``reply``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from qmqpsource.protocol import NetstringDecoder, Request, decode_request, netstring

__all__ = [
    "Handler",
    "ServerState",
    "accepting_after",
    "close_after_request",
    "never_reply",
    "qmqp_server",
    "read_request",
    "reply_with",
]

Handler = Callable[[trio.SocketStream, "ServerState"], Awaitable[None]]
# Tests send at most tens of MiB.
_REQUEST_LIMIT = 64 * 1024 * 1024


@dataclass
class ServerState:
    target: str = ""
    reply: bytes | Callable[[int], bytes] = b"Kok"
    delay: float | Callable[[int], float] = 0.0
    raw: list[bytes] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    active: int = 0
    max_active: int = 0
    # Requests read and not yet answered (the default handler): unlike ``active``, this
    # drops before the reply goes out, so a client that reconnects at once after it
    # cannot be counted twice.
    pending: int = 0
    max_pending: int = 0
    # trio.current_time() of every accepted connection, in order.
    accept_times: list[float] = field(default_factory=list)
    handler_errors: list[BaseException] = field(default_factory=list)


async def read_request(stream: trio.SocketStream) -> bytes | None:
    """The raw outer-netstring bytes of one request, or None when the client left early."""
    decoder = NetstringDecoder(_REQUEST_LIMIT)
    raw = bytearray()
    while not decoder.done:
        data = await stream.receive_some(65536)
        if not data:
            return None
        raw += data
        decoder.feed(data)
    return bytes(raw)


async def _default_handler(stream: trio.SocketStream, state: ServerState) -> None:
    raw = await read_request(stream)
    if raw is None:
        return
    index = len(state.raw)
    state.raw.append(raw)
    payload = NetstringDecoder(_REQUEST_LIMIT).feed(raw)
    assert payload is not None
    state.requests.append(decode_request(payload))
    state.pending += 1
    state.max_pending = max(state.max_pending, state.pending)
    try:
        delay = state.delay(index) if callable(state.delay) else state.delay
        if delay:
            await trio.sleep(delay)
        reply = state.reply(index) if callable(state.reply) else state.reply
    finally:
        state.pending -= 1
    await stream.send_all(netstring(reply))


def reply_with(raw: bytes) -> Handler:
    """Read the whole request, send ``raw`` (anything: it is the server's whole answer)."""

    async def handler(stream: trio.SocketStream, state: ServerState) -> None:
        await read_request(stream)
        await stream.send_all(raw)

    return handler


async def close_after_request(stream: trio.SocketStream, state: ServerState) -> None:
    """Read the request, then close without a word."""
    await read_request(stream)


async def never_reply(stream: trio.SocketStream, state: ServerState) -> None:
    """Read the request, then say nothing until the client gives up."""
    await read_request(stream)
    await trio.sleep_forever()


@asynccontextmanager
async def qmqp_server(
    handler: Handler | None = None,
    *,
    reply: bytes | Callable[[int], bytes] = b"Kok",
    delay: float | Callable[[int], float] = 0.0,
    family: str = "inet",
    backlog: int = 128,
) -> AsyncIterator[ServerState]:
    """Serve on a free loopback port ("inet", "inet6") or a fresh UNIX socket ("unix")."""
    state = ServerState(reply=reply, delay=delay)
    handle = handler or _default_handler
    with tempfile.TemporaryDirectory(prefix="qmqp-test-") as tmp:
        if family == "unix":
            path = os.path.join(tmp, "qmqp.sock")
            listener_sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            await listener_sock.bind(path)
            state.target = f"unix:{path}"
        elif family == "inet6":
            listener_sock = trio.socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            await listener_sock.bind(("::1", 0))
            state.target = f"[::1]:{listener_sock.getsockname()[1]}"
        else:
            listener_sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            await listener_sock.bind(("127.0.0.1", 0))
            state.target = f"127.0.0.1:{listener_sock.getsockname()[1]}"
        listener_sock.listen(backlog)
        listener = trio.SocketListener(listener_sock)

        async def serve_one(stream: trio.SocketStream) -> None:
            state.connections += 1
            state.accept_times.append(trio.current_time())
            state.active += 1
            state.max_active = max(state.max_active, state.active)
            try:
                async with stream:
                    await handle(stream, state)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client went away: that is its business
            except Exception as exc:  # recorded for the test to inspect, never raised
                state.handler_errors.append(exc)
            finally:
                state.active -= 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, serve_one, [listener])
            try:
                yield state
            finally:
                nursery.cancel_scope.cancel()


def accepting_after(delay: float) -> Handler:
    """A server that takes its time: each reply, a K, comes ``delay`` seconds late; the
    request is recorded (``raw``) once answered."""

    async def handle(stream: trio.SocketStream, state: ServerState) -> None:
        raw = await read_request(stream)
        await trio.sleep(delay)
        await stream.send_all(b"3:Kok,")
        if raw is not None:
            state.raw.append(raw)

    return handle
