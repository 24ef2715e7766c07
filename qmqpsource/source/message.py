"""The payload Postfix's qmqp-source sends, byte for byte; built once per run.

No I/O here beyond reading the clock and host name for defaults.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time

from qmqpsource.errors import ConfigError

__all__ = [
    "HostnameError",
    "build_message",
    "check_myhostname",
    "default_address",
    "mail_date",
    "recipient_list",
    "system_hostname",
    "x_lines",
]

# Body lines grow X, XX, ... up to this many X's, then stay there (Postfix).
_MAX_LINE = 79
_MAX_HOSTNAME = 255
_MAX_LABEL = 63


class HostnameError(ConfigError):
    """A myhostname (-M) that Postfix would refuse; ``str()`` is Postfix's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="myhostname")


# RFC 5322's names, whatever the locale (struct_time counts weekdays from Monday).
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_MIN = 24 * 60


def mail_date(when: float | None = None) -> str:
    """Local time as Postfix's mail_date() writes it: 'Tue,  1 Dec 2026 15:41:15 +0000 (UTC)'.

    Postfix formats "%a, %e %b %Y %H:%M:%S ", then "%+03d%02d" of its offset in minutes,
    then " (%Z)": the day is padded with a space (``%e``), not a zero.
    """
    now = time.time() if when is None else when
    local = time.localtime(now)
    offset = _utc_offset_minutes(local, time.gmtime(now))
    # C's division truncates toward zero, and the sign is the hours' (as in Postfix).
    hours = -(-offset // 60) if offset < 0 else offset // 60
    return (
        f"{_DAYS[local.tm_wday]}, {local.tm_mday:2d} {_MONTHS[local.tm_mon - 1]} "
        f"{local.tm_year} {local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} "
        f"{hours:+03d}{abs(offset) % 60:02d} ({local.tm_zone or ''})"
    )


def _utc_offset_minutes(local: time.struct_time, utc: time.struct_time) -> int:
    """Postfix's offset: from the two broken-down times, in whole minutes."""
    offset = (local.tm_hour - utc.tm_hour) * 60 + local.tm_min - utc.tm_min
    if local.tm_year != utc.tm_year:
        offset += _DAY_MIN if local.tm_year > utc.tm_year else -_DAY_MIN
    elif local.tm_yday != utc.tm_yday:
        offset += _DAY_MIN if local.tm_yday > utc.tm_yday else -_DAY_MIN
    if local.tm_sec <= utc.tm_sec - 60:
        offset -= 1
    elif local.tm_sec >= utc.tm_sec + 60:
        offset += 1
    return offset


def system_hostname() -> str:
    return socket.gethostname()


def default_address(myhostname: str) -> str:
    return f"foo@{myhostname}"


def check_myhostname(name: str) -> None:
    """Refuse what Postfix's -M refuses: not a valid hostname nor an [address literal]."""
    if name.startswith("["):
        if not _valid_address_literal(name):
            raise HostnameError(f"bad address literal: {name}")
        return
    if not _valid_hostname(name):
        raise HostnameError(f"bad hostname: {name}")


def _valid_address_literal(name: str) -> bool:
    if not name.endswith("]"):
        return False
    inner = name[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    parts = inner.split(".")
    return len(parts) == 4 and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts
    )


def _valid_hostname(name: str) -> bool:
    """Postfix's valid_hostname(): letters, digits, '-', '_' in dot-separated labels."""
    if not name or len(name) > _MAX_HOSTNAME:
        return False
    labels = name.split(".")
    for label in labels:
        if not label or len(label) > _MAX_LABEL:
            return False
        if label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            return False
    # Postfix refuses an all-numeric name: it would pass for an address.
    return not all(label.isdigit() for label in labels)


def x_lines(length: int) -> bytes:
    """Postfix's body: lines of 1, 2, ... 79, 79, ... X's, at least ``length`` bytes in all."""
    parts: list[bytes] = []
    size = 0
    width = 1
    while size < length:
        line = b"X" * min(width, _MAX_LINE) + b"\n"
        if width >= _MAX_LINE:
            # The rest is all full lines: add them in one go rather than one by one.
            repeat = (length - size + len(line) - 1) // len(line)
            parts.append(line * repeat)
            break
        parts.append(line)
        size += len(line)
        width += 1
    return b"".join(parts)


def build_message(
    sender: str,
    recipient: str,
    length: int,
    myhostname: str,
    *,
    date: str | None = None,
    pid: int | None = None,
    subject: str | None = None,
) -> bytes:
    """Postfix's generated message: headers, then X lines, cut to exactly ``length`` bytes.

    ``length`` counts the headers too; a length shorter than the headers cuts
    into them. The last byte is always LF. ``subject`` adds a Subject: header
    after Message-Id, where Postfix's smtp-source -S puts it.
    """
    if length <= 0:
        raise ValueError("message length must be positive")
    subject_line = f"Subject: {subject}\n" if subject is not None else ""
    head = (
        f"From: <{sender}>\nTo: <{recipient}>\nDate: {date or mail_date()}\n"
        f"Message-Id: <{os.getpid() if pid is None else pid}@{myhostname}>\n{subject_line}\n"
    ).encode("utf-8", "surrogateescape")  # argv bytes as given, UTF-8 or not
    text = bytearray(head[:length])
    text += x_lines(length - len(text))
    del text[length:]
    text[-1] = ord("\n")
    return bytes(text)


def recipient_list(recipient: str, count: int) -> list[str]:
    """-r 1 sends the address as given; -r N sends 0ADDR, 1ADDR, ... (N-1)ADDR."""
    if count <= 0:
        raise ValueError("recipient count must be positive")
    if count == 1:
        return [recipient]
    return [f"{n}{recipient}" for n in range(count)]
