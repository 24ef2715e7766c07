"""Where to connect or listen: Postfix's address syntax, and the address families.

    [inet:]host[:port]    [inet:][address]:port    unix:pathname

One parser for qmqp-source's target and qmqp-sink's endpoint. To connect, the port
defaults to QMQP's 628 and may be a service name; to listen, a port number must be
given (0: any free one) and a host left out means every address. Errors are one
line in Postfix's words.
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import dataclass

from qmqpsource.errors import AddressError

__all__ = [
    "DEFAULT_PORT",
    "FAMILIES",
    "AddressError",
    "Family",
    "InetAddress",
    "UnixAddress",
    "parse_address",
]

DEFAULT_PORT = "628"
# sun_path is 108 bytes on Linux, and the kernel wants room for a terminating NUL.
UNIX_PATH_MAX = 108


class Family(enum.Enum):
    """Which IP versions to use (-4, -6, or either)."""

    ANY = "any"
    INET = "ipv4"
    INET6 = "ipv6"


# For getaddrinfo().
FAMILIES = {
    Family.ANY: socket.AF_UNSPEC,
    Family.INET: socket.AF_INET,
    Family.INET6: socket.AF_INET6,
}


@dataclass(frozen=True, slots=True)
class UnixAddress:
    path: str


@dataclass(frozen=True, slots=True)
class InetAddress:
    host: str  # "" (listening only): every address
    port: str  # digits, or (connecting only) a service name


def parse_address(text: str, *, listen: bool = False) -> UnixAddress | InetAddress:
    """Parse ``text`` as an address to connect to, or (``listen``) to listen on."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise AddressError(f"{text}: missing pathname")
        if "\0" in path:  # no file's name holds one (Linux's abstract names are not files)
            raise AddressError(f"{text}: a pathname has no NUL")
        if len(os.fsencode(path)) >= UNIX_PATH_MAX:
            raise AddressError(f"unix-domain name too long: {path}")
        return UnixAddress(path)
    rest = text.removeprefix("inet:")
    if "/" in rest and not rest.startswith("["):
        # No host name holds a '/': a UNIX socket, given without its unix: (Postfix's
        # words first, then ours on what to write).
        raise AddressError(f"{text}: valid hostname or network address required; "
                           f"for a UNIX-domain socket, write unix:{rest}")
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise AddressError(f"{text}: missing ']'")
        host, tail = rest[1:close], rest[close + 1 :]
        if tail and not tail.startswith(":"):
            raise AddressError(f"{text}: garbage after ']'")
        port = tail[1:] if tail else None
    elif rest.count(":") > 1:
        # A bare IPv6 address would be ambiguous with host:port; Postfix wants [addr].
        raise AddressError(f"{text}: valid hostname or network address required")
    else:
        host, colon, given = rest.partition(":")
        port = given if colon else None
    if port is None and not listen:
        port = DEFAULT_PORT
    if not host and not listen:
        raise AddressError(f"{text}: missing host information")
    if not port:
        raise AddressError(f"{text}: missing port information")
    numeric = port.isascii() and port.isdigit()
    if listen and not (numeric and int(port) < 65536):
        raise AddressError(f"{text}: bad port number: {port!r}")
    if not listen and numeric and not 0 < int(port) < 65536:
        raise AddressError(f"{text}: port out of range: {port}")
    return InetAddress(host, port)
