"""How to connect: resolution of the target, connect with RESET retry, socket options.

Sockets here are plain non-blocking sockets that the calling trio task waits on with
trio.lowlevel.wait_writable: trio's own event loop, whatever the platform's is.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from qmqpsource.addresses import FAMILIES, AddressError, Family, UnixAddress, parse_address

__all__ = ["ConnectError", "Endpoint", "begin_connect", "connect", "connect_and_send", "resolve"]

# SO_LINGER {on, 0}: close() sends RST and leaves no TIME_WAIT behind, as Postfix does;
# tens of thousands of connections a minute would otherwise exhaust ephemeral ports.
LINGER_ABORT = struct.pack("ii", 1, 0)
# Between -C attempts: short at first (a full listen queue drains fast), growing so that
# a listener that comes up late is still found; Postfix waits a flat 10 microseconds.
RETRY_FIRST_DELAY = 0.01
RETRY_MAX_DELAY = 1.0
# Errors that mean "nobody took the call"; each uses up one -C attempt.
_RETRYABLE = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EAGAIN, errno.ETIMEDOUT, errno.ENOENT}
)


class ConnectError(OSError):
    """Connecting failed after every attempt; ``str()`` names the address, as Postfix's
    SMTP client does (``connect to 127.0.0.1:628: Connection refused``): its qmqp-source
    says only ``connect: %m``, which leaves a user to guess where it went."""

    def __init__(self, err: int, label: str | None = None) -> None:
        super().__init__(err, os.strerror(err))
        self.label = label  # the Endpoint's label: 127.0.0.1:628, [::1]:628, unix:PATH

    def __str__(self) -> str:
        where = "" if self.label is None else f" to {self.label}"
        return f"connect{where}: {self.strerror}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved address, ready for connect()."""

    family: int
    address: str | tuple[str, int] | tuple[str, int, int, int]
    label: str

    @property
    def is_tcp(self) -> bool:
        return self.family != socket.AF_UNIX


async def resolve(target: str, family: Family = Family.ANY) -> Endpoint:
    """Resolve once, before the run; the first address wins, as in Postfix."""
    parsed = parse_address(target)
    if isinstance(parsed, UnixAddress):
        return Endpoint(socket.AF_UNIX, parsed.path, f"unix:{parsed.path}")
    try:
        infos = await trio.socket.getaddrinfo(
            parsed.host, parsed.port, FAMILIES[family], socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise AddressError(f"{target}: {exc.strerror}") from None
    except UnicodeError:
        raise AddressError(f"{target}: bad host name") from None
    if not infos:
        raise AddressError(f"{target}: no address found")
    fam, _, _, _, sockaddr = infos[0]
    host, port = str(sockaddr[0]), int(sockaddr[1])
    if fam == socket.AF_INET6:
        flowinfo, scope_id = int(sockaddr[2]), int(sockaddr[3])  # type: ignore[misc]
        return Endpoint(int(fam), (host, port, flowinfo, scope_id), f"[{host}]:{port}")
    return Endpoint(int(fam), (host, port), f"{host}:{port}")


# The C socket type, not socket.socket: that subclass's Python __init__ and close()
# cost more per message than they give (io wrappers, reference counting of makefile).
# SOCK_NONBLOCK makes it non-blocking in the socket() call itself.
_SOCKET = socket.SocketType
_SOCK_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_NONBLOCKING_STREAM = socket.SOCK_STREAM | _SOCK_NONBLOCK
# A first send that fails with these found the connection up and already lost: the
# send path reports it (and looks for an early reply), not the connect path.
_LOST_AFTER_CONNECT = frozenset({errno.ECONNRESET, errno.EPIPE})


def _new_socket(endpoint: Endpoint) -> socket.SocketType:
    sock = _SOCKET(endpoint.family, _NONBLOCKING_STREAM)
    if not _SOCK_NONBLOCK:  # a platform without it: one more call
        sock.setblocking(False)
    if endpoint.is_tcp:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
    return sock


def begin_connect(
    endpoint: Endpoint, first: memoryview | None = None
) -> tuple[socket.SocketType | None, int, int]:
    """Start one attempt without waiting: (socket, errno, bytes of ``first`` sent).

    errno 0: the connection is up and ``sent`` bytes of ``first`` are gone; EINPROGRESS:
    still connecting (connect() finishes it); anything else: failed, and the socket is
    closed (None). A plain function: on loopback the common case never waits, and this
    is once per message.
    """
    sock = _new_socket(endpoint)
    sent = 0
    try:
        err = sock.connect_ex(endpoint.address)
        if err == errno.EINPROGRESS and first is not None:
            # On loopback the handshake is over by the time connect() returns: sending
            # at once finds out for no extra syscall; "would block" means still connecting.
            # Waiting for the socket to show writable first cost 164,000 instructions
            # (+140%) and 20 us of user CPU a message (-s 10, Postfix's sink; issue 22).
            try:
                sent = sock.send(first)
                err = 0
            except BlockingIOError:
                pass
            except OSError as exc:
                err = 0 if exc.errno in _LOST_AFTER_CONNECT else (exc.errno or errno.EIO)
    except BaseException:
        sock.close()
        raise
    if err and err != errno.EINPROGRESS:
        sock.close()
        return None, err, 0
    return sock, err, sent


async def _finish(sock: socket.SocketType) -> int:
    """Wait for a connect in progress; its errno (0: up). The socket is closed unless up."""
    try:
        await trio.lowlevel.wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except BaseException:
        sock.close()
        raise
    if err:
        sock.close()
    return err


async def connect_and_send(
    endpoint: Endpoint,
    attempts: int = 1,
    on_retry: Callable[[ConnectError], None] | None = None,
    first: memoryview | None = None,
    first_attempt: tuple[socket.SocketType | None, int, int] | None = None,
) -> tuple[socket.SocketType, int]:
    """Connect, retrying refused or reset attempts up to ``attempts`` times in all.

    With ``first`` (the request), as much of it as the socket takes at once is sent
    as soon as the connection is up. ``first_attempt``: what begin_connect() gave for
    the first attempt, when the caller started it. Returns (socket, bytes of ``first`` sent);
    raises ConnectError. Cancelled, it leaves no socket open.
    """
    delay = RETRY_FIRST_DELAY
    for attempt in range(1, attempts + 1):
        if first_attempt is None:
            sock, err, sent = begin_connect(endpoint, first)
        else:
            sock, err, sent = first_attempt
            first_attempt = None
        if err == errno.EINPROGRESS and sock is not None:
            err = await _finish(sock)
        if sock is not None and not err:
            return sock, sent
        if attempt == attempts or err not in _RETRYABLE:
            raise ConnectError(err, endpoint.label)
        if on_retry is not None:
            on_retry(ConnectError(err, endpoint.label))
        await trio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY)
    raise AssertionError("unreachable")  # pragma: no cover


async def connect(
    endpoint: Endpoint,
    attempts: int = 1,
    on_retry: Callable[[ConnectError], None] | None = None,
) -> socket.SocketType:
    """A connected non-blocking socket (SO_LINGER 0 on TCP), with -C retries."""
    sock, _ = await connect_and_send(endpoint, attempts, on_retry)
    return sock
