"""QMQP and netstrings, sans-IO: bytes in, values out, no sockets and no trio.

A netstring is ``<decimal length>:<bytes>,``. A QMQP client sends one netstring
whose payload is ``ns(message) + ns(sender) + ns(recipient) ...``; the server
answers one netstring whose first byte is the status (K, Z or D).

The parsers here are incremental: the caller feeds whatever bytes arrived and
gets a value once one is complete, so that the same code serves a client
reading a reply and a server reading a request, whatever the I/O layer.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "DEFAULT_REPLY_LIMIT",
    "MAX_LENGTH_DIGITS",
    "NetstringDecoder",
    "NetstringFormatError",
    "NetstringSizeError",
    "NetstringTruncatedError",
    "ProtocolError",
    "Reply",
    "ReplyParser",
    "Request",
    "RequestError",
    "Status",
    "decode_netstrings",
    "decode_request",
    "encode_reply",
    "encode_request",
    "netstring",
    "whole_reply",
]

# Postfix's qmqp-source reads at most this many reply bytes (var_line_limit).
DEFAULT_REPLY_LIMIT = 10240
# No sane length needs more digits; stops a digit stream from growing forever.
MAX_LENGTH_DIGITS = 20


class ProtocolError(Exception):
    """The peer broke the netstring or QMQP rules; ``str()`` is one line for humans."""


class NetstringFormatError(ProtocolError):
    """Bytes that are not a netstring (bad length, missing ':' or ',')."""

    def __init__(self, detail: str = "netstring format error") -> None:
        super().__init__(detail)


class NetstringSizeError(ProtocolError):
    """A netstring announced a length over the limit; refused before it is read."""

    def __init__(self, length: int, limit: int) -> None:
        # ``length`` is a lower bound: the digits are refused as soon as they pass the limit.
        super().__init__(f"netstring size exceeds limit {limit}")
        self.length = length
        self.limit = limit


class NetstringTruncatedError(ProtocolError):
    """The stream ended before the netstring was complete."""

    def __init__(self, detail: str = "lost connection") -> None:
        super().__init__(detail)


def netstring(data: bytes | bytearray | memoryview) -> bytes:
    """Encode one netstring."""
    return b"%d:%s," % (len(data), bytes(data))


def encode_request(
    message: bytes, sender: bytes, recipients: Sequence[bytes]
) -> bytes:
    """The whole QMQP request: one netstring around message, sender, recipients."""
    if not recipients:
        raise ValueError("a QMQP request needs at least one recipient")
    body = b"".join([netstring(message), netstring(sender), *map(netstring, recipients)])
    return netstring(body)


class _State(enum.Enum):
    LENGTH = 1
    PAYLOAD = 2
    COMMA = 3
    DONE = 4


class NetstringDecoder:
    """Incremental decoder for ONE netstring with a size limit.

    ``feed()`` returns the payload once the closing comma has arrived, else
    None. The length is checked against ``limit`` as soon as its digits are
    known, so an oversize netstring is refused before its payload is read.
    Bytes after the comma are kept in ``trailing``.
    """

    __slots__ = ("_buf", "_digits", "_need", "_state", "length", "limit", "trailing")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.length: int | None = None
        self.trailing = b""
        self._state = _State.LENGTH
        self._digits = bytearray()
        self._buf = bytearray()
        self._need = 0

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    @property
    def started(self) -> bool:
        """Whether any byte of the netstring has arrived."""
        return bool(self._digits) or self._state is not _State.LENGTH

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | None:
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end:
            state = self._state
            if state is _State.LENGTH:
                pos = self._feed_length(view, pos)
            elif state is _State.PAYLOAD:
                take = min(self._need, end - pos)
                self._buf += view[pos : pos + take]
                self._need -= take
                pos += take
                if self._need == 0:
                    self._state = _State.COMMA
            elif state is _State.COMMA:
                if view[pos] != ord(","):
                    raise NetstringFormatError("netstring format error: missing ','")
                pos += 1
                self._state = _State.DONE
                self.trailing = bytes(view[pos:])
                return bytes(self._buf)
            else:
                self.trailing += bytes(view[pos:])
                return None
        return None

    def _feed_length(self, view: memoryview, pos: int) -> int:
        end = len(view)
        while pos < end:
            byte = view[pos]
            pos += 1
            if byte == ord(":"):
                if not self._digits:
                    raise NetstringFormatError("netstring format error: empty length")
                self._start_payload()
                return pos
            if not 0x30 <= byte <= 0x39:
                raise NetstringFormatError("netstring format error: bad length")
            if self._digits == b"0":
                raise NetstringFormatError("netstring format error: leading zero in length")
            self._digits.append(byte)
            if len(self._digits) > MAX_LENGTH_DIGITS:
                raise NetstringFormatError("netstring format error: length too long")
            # Refuse an oversize length as soon as its digits prove it too big.
            if int(self._digits) > self.limit:
                raise NetstringSizeError(int(self._digits), self.limit)
        return pos

    def _start_payload(self) -> None:
        self.length = int(self._digits)
        self._need = self.length
        self._state = _State.PAYLOAD if self._need else _State.COMMA

    def eof(self) -> None:
        """The stream ended: fine only when the netstring was complete."""
        if self._state is not _State.DONE:
            raise NetstringTruncatedError()


def decode_netstrings(data: bytes) -> list[bytes]:
    """Split a buffer that must hold nothing but complete netstrings."""
    items: list[bytes] = []
    view = memoryview(data)
    pos = 0
    end = len(view)
    while pos < end:
        colon = data.find(b":", pos, min(end, pos + MAX_LENGTH_DIGITS + 1))
        if colon < 0:
            raise NetstringFormatError("netstring format error: missing ':'")
        digits = data[pos:colon]
        if not digits.isdigit() or not digits.isascii() or (len(digits) > 1 and digits[0] == 0x30):
            raise NetstringFormatError("netstring format error: bad length")
        length = int(digits)
        start = colon + 1
        stop = start + length
        if stop >= end:
            raise NetstringFormatError("netstring format error: length past the end")
        if data[stop] != ord(","):
            raise NetstringFormatError("netstring format error: missing ','")
        items.append(bytes(view[start:stop]))
        pos = stop + 1
    return items


class Status(enum.Enum):
    """The QMQP reply classes, by the reply's first byte."""

    OK = "K"
    TEMPFAIL = "Z"
    PERMFAIL = "D"
    UNKNOWN = "?"


_STATUS_BY_BYTE = {ord("K"): Status.OK, ord("Z"): Status.TEMPFAIL, ord("D"): Status.PERMFAIL}


class Reply(NamedTuple):
    """A server reply: its raw payload, status and the text after the status byte.

    A NamedTuple, not a frozen dataclass: one is made per message, and a frozen
    dataclass's __init__ cost about a microsecond more.
    """

    raw: bytes

    @property
    def status(self) -> Status:
        return _STATUS_BY_BYTE.get(self.raw[0], Status.UNKNOWN)

    @property
    def text(self) -> bytes:
        return self.raw[1:]


class ReplyParser:
    """Incremental parser for one QMQP reply, as a client reads it.

    The empty reply ``0:,`` carries no status byte, so it is a protocol error
    (Postfix's client would print stale buffer bytes here).
    """

    __slots__ = ("_decoder", "limit")

    def __init__(self, limit: int = DEFAULT_REPLY_LIMIT) -> None:
        self.limit = limit
        self._decoder = NetstringDecoder(limit)

    def feed(self, data: bytes) -> Reply | None:
        decoder = self._decoder
        if not decoder.started:
            reply = whole_reply(data, self.limit)
            if reply is not None:
                return reply
        payload = decoder.feed(data)
        if payload is None:
            return None
        if not payload:
            raise NetstringFormatError("netstring format error: empty reply")
        return Reply(payload)

    def eof(self) -> None:
        self._decoder.eof()


def whole_reply(data: bytes, limit: int) -> Reply | None:
    """The common case, a whole well-formed reply in one read, without the state machine.

    Returns None for anything else (partial, oversize, malformed, empty), which the
    incremental decoder then handles with its precise errors.
    """
    colon = data.find(b":", 0, 6)  # up to 5 digits: the default limit has 5
    if colon <= 0 or data[0] == 0x30:
        return None
    digits = data[:colon]
    if not digits.isdigit():
        return None
    length = int(digits)
    end = colon + 1 + length
    if length == 0 or length > limit or len(data) <= end or data[end] != 0x2C:
        return None
    return Reply(data[colon + 1 : end])


def encode_reply(status: Status, text: bytes) -> bytes:
    """A server reply netstring: status byte then text."""
    if status is Status.UNKNOWN:
        raise ValueError("a server replies K, Z or D")
    return netstring(status.value.encode("ascii") + text)


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded QMQP request."""

    message: bytes
    sender: bytes
    recipients: tuple[bytes, ...]


class RequestError(ProtocolError):
    """A request whose outer netstring was fine but whose content is not QMQP."""


def decode_request(payload: bytes) -> Request:
    """Decode the payload of a request's outer netstring."""
    try:
        items = decode_netstrings(payload)
    except NetstringFormatError as exc:
        raise RequestError(f"malformed request: {exc}") from None
    if len(items) < 3:
        raise RequestError(
            "malformed request: need message, sender and at least one recipient"
        )
    return Request(items[0], items[1], tuple(items[2:]))
