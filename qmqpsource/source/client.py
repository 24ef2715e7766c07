"""One QMQP exchange over a connected non-blocking socket, waited on in trio.

Failures come out as DeliveryError with Postfix's wording ("lost connection
while receiving server reply", ...), so that callers only decide what to do.
"""

from __future__ import annotations

import errno
import socket

import trio

from qmqpsource.protocol import (
    NetstringSizeError,
    NetstringTruncatedError,
    ProtocolError,
    Reply,
    ReplyParser,
    whole_reply,
)
from qmqpsource.results.outcome import DeliveryError, Outcome

__all__ = ["RECV_SIZE", "read_reply", "send_request"]

# One recv() takes any reply a server sends in practice.
RECV_SIZE = 16384
# How much of an early reply to look at when a send fails (any reply limit in use fits).
_PEEK_SIZE = 65536
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def _io_error(exc: OSError, step: str) -> DeliveryError:
    if exc.errno in _RESET_ERRNOS:
        return DeliveryError(Outcome.RESET, f"lost connection while {step}")
    return DeliveryError(Outcome.LOST_CONNECTION, f"{exc.strerror or exc} while {step}")


def _reply_waiting(sock: socket.SocketType) -> bool:
    """Whether a whole reply netstring already sits in the receive queue (left there)."""
    try:
        data = sock.recv(_PEEK_SIZE, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return ReplyParser(_PEEK_SIZE).feed(data) is not None
    except (OSError, ProtocolError):
        return False


async def send_request(
    sock: socket.SocketType, request: memoryview, sent: int = 0, chunk: int = 0
) -> None:
    """Send ``request`` from byte ``sent`` on; a large one waits for room, never blocking.

    ``chunk`` (0: no limit) is the most one send() may take: past it the session waits
    for room again, so that many sessions take turns rather than each filling its
    socket's buffer at once (see Runner's SEND_BUDGET).

    A server may answer before it has read the whole request (a D for a message over
    its size limit, typically) and close, so that the rest of the send fails. Its reply
    is still the answer: when a whole one has arrived, the send error is dropped and
    read_reply() then reads that reply. Postfix's client would report only the lost
    connection.
    """
    total = len(request)
    step = chunk or total
    wait_writable = trio.lowlevel.wait_writable
    try:
        while sent < total:
            try:
                sent += sock.send(request[sent : sent + step])
            except BlockingIOError:
                await wait_writable(sock)
                continue
            if sent < total:
                await wait_writable(sock)
    except OSError as exc:
        if _reply_waiting(sock):
            return
        raise _io_error(exc, "sending message") from None


async def read_reply(sock: socket.SocketType, limit: int) -> Reply:
    """Read and parse one reply netstring."""
    data: bytes | None = None
    parser: ReplyParser | None = None  # only when the reply does not come whole at once
    try:
        while True:
            if data is None:
                # The reply cannot be there yet right after sending: wait first, saving a recv.
                await trio.lowlevel.wait_readable(sock)
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
            if parser is None:
                # Parsed whole when it comes whole, as it nearly always does: through the
                # incremental parser a message took 11,000 more instructions (+9%), and
                # 1 us more user CPU in two series of real runs of three (-s 10,
                # Postfix's sink; issue 22).
                reply = whole_reply(data, limit)
                if reply is not None:
                    return reply
                parser = ReplyParser(limit)
            if not data:
                parser.eof()
            reply = parser.feed(data)
            if reply is not None:
                return reply
            data = None
    except OSError as exc:
        raise _io_error(exc, "receiving server reply") from None
    except NetstringTruncatedError:
        raise DeliveryError(
            Outcome.LOST_CONNECTION, "lost connection while receiving server reply"
        ) from None
    except NetstringSizeError:
        raise DeliveryError(
            Outcome.PROTOCOL_ERROR, "netstring size exceeds limit while receiving server reply"
        ) from None
    except ProtocolError as exc:
        raise DeliveryError(
            Outcome.PROTOCOL_ERROR, f"{exc} while receiving server reply"
        ) from None
