"""Frames between the parent and a worker process, over a UNIX socket pair.

A frame is a 5-byte header (payload length, kind) and its payload: small JSON for jobs,
log records and errors; a result document for a result; the grace in seconds for a
stop. A job may carry descriptors (the shared message budget's pipe), passed with the
frame's first bytes (SCM_RIGHTS). End of file means the other side is gone: a worker
whose parent died aborts its run; a parent sees a worker die.

Sans-IO where it can be: ``encode`` and ``FrameReader`` know no sockets; the async
``receive``/``send`` are the only I/O, on non-blocking sockets under trio.
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
import struct
from collections.abc import Sequence

import trio

__all__ = ["MAX_FRAME", "ChannelClosed", "Frame", "FrameReader", "Kind", "close_all",
           "encode", "receive_frame", "send_frame"]

_HEADER = struct.Struct("!IB")
# A result of 10,000 intervals is a few MiB of JSON; anything past this is no frame.
MAX_FRAME = 256 * 1024 * 1024
_RECV = 65536


class Kind(enum.IntEnum):
    JOB = 1  # parent -> worker: run this (JSON), maybe with the budget's descriptor
    STOP = 2  # parent -> worker: stop, with a grace (seconds, as text)
    ABORT = 3  # parent -> worker: cut what is in flight now
    LOG = 4  # worker -> parent: a log record (JSON: name, level, message)
    RESULT = 5  # worker -> parent: the run's result document
    ERROR = 6  # worker -> parent: the run could not start (JSON: kind, message)


class ChannelClosed(Exception):
    """The other side closed the channel (or died), or sent something that is no frame."""


class Frame:
    __slots__ = ("fds", "kind", "payload")

    def __init__(self, kind: Kind, payload: bytes, fds: Sequence[int] = ()) -> None:
        self.kind = kind
        self.payload = payload
        self.fds = list(fds)


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    return _HEADER.pack(len(payload), kind) + payload


class FrameReader:
    """Bytes in, frames out: ``feed`` what came, ``next`` a whole frame or None."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fds: list[int] = []

    def feed(self, data: bytes, fds: Sequence[int] = ()) -> None:
        self._buffer += data
        self._fds.extend(fds)

    def next(self) -> Frame | None:
        if len(self._buffer) < _HEADER.size:
            return None
        length, kind = _HEADER.unpack_from(self._buffer)
        if length > MAX_FRAME or kind not in Kind._value2member_map_:
            raise ChannelClosed("not a frame")
        end = _HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[_HEADER.size : end])
        del self._buffer[:end]
        fds, self._fds = self._fds, []
        return Frame(Kind(kind), payload, fds)


async def receive_frame(sock: socket.socket, reader: FrameReader) -> Frame:
    """The next frame from ``sock`` (non-blocking); ChannelClosed at end of file."""
    while (frame := reader.next()) is None:
        await trio.lowlevel.wait_readable(sock)
        try:
            data, fds, _, _ = socket.recv_fds(sock, _RECV, 4)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if not data:
            close_all(fds)
            raise ChannelClosed("end of file")
        reader.feed(data, fds)
    return frame


async def send_frame(
    sock: socket.socket, kind: Kind, payload: bytes = b"", fds: Sequence[int] = ()
) -> None:
    """Send one whole frame on ``sock`` (non-blocking); ChannelClosed if the peer is gone."""
    data = memoryview(encode(kind, payload))
    try:
        if fds:
            while True:
                try:
                    sent = socket.send_fds(sock, [data], list(fds))
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
            data = data[sent:]
        while data:
            try:
                data = data[sock.send(data) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None


def close_all(fds: Sequence[int]) -> None:
    """Close descriptors that came with a frame and were not taken."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
