"""Where qmqp-sink listens: the endpoint, its listening sockets, and their removal at the end.

``[inet:][host]:port`` may give several sockets (IPv4 and IPv6 for a dual-stack host);
``unix:pathname`` gives one, replacing a stale socket file but never the socket of a
server that still answers there. The sockets are plain and non-blocking: the server
accepts on them with trio.lowlevel.wait_readable (see server.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import Any

import trio

from qmqpsource.addresses import (
    FAMILIES,
    AddressError,
    Family,
    InetAddress,
    UnixAddress,
    parse_address,
)
from qmqpsource.errors import SinkError

__all__ = [
    "ListenError",
    "SinkError",
    "address_label",
    "close_listeners",
    "open_listeners",
    "parse_endpoint",
    "socket_file",
]

# listen() takes a C int; the kernel caps the queue far lower anyway (somaxconn).
_LISTEN_MAX = 2**31 - 1


class ListenError(SinkError):
    """The sink cannot listen where asked."""


def parse_endpoint(text: str) -> UnixAddress | InetAddress:
    """``[inet:][host]:port`` or ``unix:pathname``, as Postfix's qmqp-sink takes them."""
    try:
        return parse_address(text, listen=True)
    except AddressError as exc:
        raise ListenError(str(exc)) from None


def address_label(family: int, address: Any) -> str:
    """A socket address as the log lines and --control-fd show it."""
    if family == socket.AF_UNIX:
        return f"unix:{address}"
    if family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    return f"{address[0]}:{address[1]}"


async def open_listeners(
    endpoint: UnixAddress | InetAddress, family: Family, backlog: int
) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for the endpoint (several for a dual-stack host)."""
    if isinstance(endpoint, UnixAddress):
        return [_listen_unix(endpoint.path, backlog)]
    try:
        infos = await trio.socket.getaddrinfo(
            endpoint.host or None, endpoint.port, FAMILIES[family], socket.SOCK_STREAM, 0,
            socket.AI_PASSIVE,
        )
    except socket.gaierror as exc:
        raise ListenError(f"{endpoint.host}: {exc.strerror}") from None
    seen: set[tuple[int, Any]] = set()
    listeners: list[socket.socket] = []
    port = int(endpoint.port)
    last_error: OSError | None = None
    try:
        for fam, _, _, _, sockaddr in infos:
            if fam not in (socket.AF_INET, socket.AF_INET6) or (fam, sockaddr[0]) in seen:
                continue
            seen.add((fam, sockaddr[0]))
            # Port 0 on a dual-stack host: every family on the port the first one got.
            address = (sockaddr[0], port, *sockaddr[2:])
            try:
                sock = _listen_inet(int(fam), address, backlog)
            except OSError as exc:
                # A host without IPv6 (or IPv4) must not stop a dual-stack default.
                if family is Family.ANY and exc.errno in (errno.EAFNOSUPPORT,
                                                         errno.EADDRNOTAVAIL):
                    last_error = exc
                    continue
                raise ListenError(
                    f"bind {address_label(int(fam), address)}: {exc.strerror or exc}"
                ) from None
            listeners.append(sock)
            port = sock.getsockname()[1]
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    if not listeners:
        why = last_error.strerror if last_error is not None else "no address to listen on"
        raise ListenError(f"{endpoint.host or '*'}:{endpoint.port}: {why}")
    return listeners


def _listen_inet(family: int, address: tuple[Any, ...], backlog: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # Separate IPv4 and IPv6 listeners, as Postfix does; else the second bind fails.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(min(backlog, _LISTEN_MAX))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_unix(path: str, backlog: int) -> socket.socket:
    # A socket left by an earlier run would make bind fail; anything else is not ours to
    # remove, and neither is the socket of a server that still answers on it.
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            if _server_answers(path):
                raise ListenError(f"unix:{path}: a server is listening there already")
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ListenError(f"unix:{path}: {exc.strerror}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(min(backlog, _LISTEN_MAX))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"bind unix:{path}: {exc.strerror or exc}") from None
    return sock


def _server_answers(path: str) -> bool:
    """Whether a live server listens on the UNIX socket at ``path``; a stale one refuses."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except BlockingIOError:
        return True  # its listen queue is full: busy, but alive
    finally:
        probe.close()
    return True


def socket_file(endpoint: UnixAddress | InetAddress) -> tuple[int, int] | None:
    """The identity (device, inode) of the socket file we bound, for close_listeners."""
    if not isinstance(endpoint, UnixAddress):
        return None
    try:
        info = os.stat(endpoint.path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def close_listeners(
    listeners: list[socket.socket],
    endpoint: UnixAddress | InetAddress,
    ours: tuple[int, int] | None,
) -> None:
    """Close the sockets; remove the socket file if it is still ours, nobody else's."""
    for sock in listeners:
        sock.close()
    if ours is not None and isinstance(endpoint, UnixAddress) and socket_file(endpoint) == ours:
        with contextlib.suppress(OSError):
            os.unlink(endpoint.path)
