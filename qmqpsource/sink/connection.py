"""One client connection's I/O: read its request (never more than ``max_size`` bytes of
it), send a reply, refuse a bad request and drain the rest of it.

Plain non-blocking sockets driven by trio.lowlevel.wait_readable/wait_writable: the
sink is benchmarked against Postfix's C qmqp-sink, and trio's stream classes cost about
twice as much per message. The common case costs no cancel scope and no wait: a
loopback client has usually sent its whole request by the time we accept, and a short
reply fits the socket buffer. Deadlines are armed only around actual waits.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import trio

from qmqpsource.protocol import (
    NetstringDecoder,
    NetstringFormatError,
    NetstringSizeError,
    NetstringTruncatedError,
    ProtocolError,
    Request,
    RequestError,
    Status,
    decode_netstrings,
    decode_request,
    encode_reply,
)
from qmqpsource.sink.stats import SinkStats

__all__ = [
    "RECEIVING",
    "RECV_SIZE",
    "SENDING",
    "WARNING",
    "ConnectionIO",
    "ConnectionLost",
    "ConnectionTimeout",
]

RECV_SIZE = 65536
# After refusing a request whose rest is still arriving: how long to read and discard
# it, so that the client can finish sending and see our D reply instead of a reset.
DRAIN_TIME = 1.0
# The steps a ConnectionLost or a ConnectionTimeout names: "timeout while receiving request".
RECEIVING = "receiving request"
SENDING = "sending reply"
# Starts a line that ``receive`` returns for the log when it is a warning (the server
# logs it at that level, without these words).
WARNING = "warning: "


class ConnectionLost(Exception):
    """The client went away; ``str()`` says during which step (receiving request...)."""


class ConnectionTimeout(Exception):
    """The connection's deadline passed; ``str()`` says during which step."""


# Waits for a new connection's first byte: the server's, as it may take the slot back.
FirstByteWait = Callable[[socket.socket, float], Awaitable[None]]


class ConnectionIO:
    """Requests read and replies sent on the sink's connections, within its limits.

    ``timeout`` counts from a connection's first wait, not from a cancel scope entered
    for each step: the common case never waits, and a scope per step costs as much
    as the rest of its work.
    """

    __slots__ = ("_first_byte", "_max_size", "_stats", "_timeout")

    def __init__(
        self, stats: SinkStats, max_size: int, timeout: float, first_byte: FirstByteWait
    ) -> None:
        self._stats = stats
        self._max_size = max_size
        self._timeout = timeout
        self._first_byte = first_byte

    async def receive(self, sock: socket.socket) -> Request | str:
        """The request, or (having dealt with the client) the line for the log."""
        stats = self._stats
        limit = self._max_size
        # Made only when the first read is not one whole request (see _whole_request).
        decoder: NetstringDecoder | None = None
        recv = sock.recv
        deadline = -1.0
        try:
            while True:
                try:
                    # Loopback clients have usually sent it all before we accepted: read first.
                    data = recv(RECV_SIZE)
                except BlockingIOError:
                    if deadline < 0:
                        # --timeout counts from the first wait, microseconds after the accept.
                        deadline = trio.current_time() + self._timeout
                    if decoder is None:
                        await self._first_byte(sock, deadline)
                    else:
                        await _readable(sock.fileno(), deadline, RECEIVING)
                    continue
                except OSError:
                    if decoder is not None:
                        raise ConnectionLost(RECEIVING) from None
                    data = b""  # reset before a byte came: a probe, like a plain close
                stats.bytes += len(data)
                if decoder is None:
                    if not data:
                        stats.empty += 1
                        return "closed without a request"
                    payload = _whole_request(data, limit)
                    if payload is not None:
                        break
                    decoder = NetstringDecoder(limit)
                elif not data:
                    decoder.eof()  # it has bytes already: the client left mid-request
                payload = decoder.feed(data)
                if payload is not None:
                    break
        except NetstringTruncatedError:
            raise ConnectionLost(RECEIVING) from None
        except ProtocolError as exc:
            return await self._refuse_framing(sock, exc)
        try:
            request = decode_request(payload)
            _check_addresses(request)
        except RequestError as exc:
            stats.malformed += 1
            await self.send(sock, encode_reply(Status.PERMFAIL, b"5.5.4 Error: %s" % (
                str(exc).encode())))
            stats.replies_d += 1
            return f"{WARNING}refused: {exc}"
        stats.messages += 1
        stats.recipients += len(request.recipients)
        stats.message_bytes += len(request.message)
        return request

    async def _refuse_framing(self, sock: socket.socket, exc: ProtocolError) -> str:
        """Answer D to a request whose framing is broken or too long: the line for the log."""
        self._stats.malformed += 1
        if isinstance(exc, NetstringSizeError):
            # The length is refused as soon as its digits pass the limit, so only a
            # lower bound of the size is known.
            text = b"5.3.4 Error: message too large: over %d bytes" % exc.limit
            await self._refuse(sock, encode_reply(Status.PERMFAIL, text))
            return f"{WARNING}refused: request of over {exc.limit} bytes"
        # The framing is broken: nothing after this point can be trusted.
        await self._refuse(sock, encode_reply(Status.PERMFAIL, b"5.5.4 Error: %s" % (
            str(exc).encode())))
        return f"{WARNING}refused: {exc}"

    async def send(self, sock: socket.socket, reply: bytes) -> None:
        """The whole reply; ConnectionTimeout past --timeout from the first wait."""
        view = memoryview(reply)
        deadline = -1.0
        while True:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                if deadline < 0:
                    deadline = trio.current_time() + self._timeout
                await _writable(sock.fileno(), deadline, SENDING)
                continue
            except OSError:
                raise ConnectionLost(SENDING) from None
            if sent == len(view):
                return
            view = view[sent:]

    async def _refuse(self, sock: socket.socket, reply: bytes) -> None:
        """Reply D to a request we stopped reading, then let its rest drain, bounded."""
        self._stats.replies_d += 1
        try:
            await self.send(sock, reply)
            sock.shutdown(socket.SHUT_WR)
        except (ConnectionLost, OSError):
            return
        # Closing with unread input would reset the connection and could destroy the
        # reply before the client reads it: read and discard for a short while instead.
        with trio.move_on_after(DRAIN_TIME):
            await self._discard(sock)

    async def hold(self, sock: socket.socket) -> None:
        """Never answer: hold the connection until the client leaves or --timeout ends it."""
        with trio.move_on_after(self._timeout):
            await self._discard(sock)

    async def _discard(self, sock: socket.socket) -> None:
        """Read and throw away until the client closes."""
        fd = sock.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            self._stats.bytes += len(data)


async def _readable(fd: int, deadline: float, step: str) -> None:
    """Wait until fd is readable, or raise ConnectionTimeout(step) at the deadline."""
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_readable(fd)
        return
    raise ConnectionTimeout(step)


async def _writable(fd: int, deadline: float, step: str) -> None:
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_writable(fd)
        return
    raise ConnectionTimeout(step)


def _whole_request(data: bytes, limit: int) -> bytes | None:
    """The common case, one whole request in the first read, without the state machine.

    None for anything else (partial, trailing bytes, oversize, malformed): the
    incremental decoder then handles it, with its precise errors.
    """
    try:
        items = decode_netstrings(data)
    except NetstringFormatError:
        return None
    if len(items) != 1 or len(items[0]) > limit:
        return None
    return items[0]


def _check_addresses(request: Request) -> None:
    # CR, LF or NUL in an address would forge headers in the Maildir, and no MTA takes them.
    for address in (request.sender, *request.recipients):
        if b"\n" in address or b"\r" in address or b"\0" in address:
            raise RequestError("malformed request: control character in envelope address")
