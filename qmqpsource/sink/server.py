"""qmqp-sink's server: listening sockets, one task per connection, faults on purpose, counters.

Each connection reads one request netstring (never more than ``max_size``
bytes of it), parses it with the shared sans-IO protocol module, and answers
K (with an id), Z or D, or closes without a word when told to misbehave.

The per-connection path uses plain non-blocking sockets driven by
trio.lowlevel.wait_readable/wait_writable: it is benchmarked against
Postfix's C qmqp-sink, and trio's stream classes cost about twice as much
per message. Counters are plain integer fields for the same reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from qmqpsource.addresses import (
    FAMILIES,
    AddressError,
    Family,
    InetAddress,
    UnixAddress,
    parse_address,
)
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
from qmqpsource.sink.maildir import Maildir
from qmqpsource.wording import counted, printable

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "Faults",
    "Lines",
    "ListenError",
    "Sink",
    "SinkConfig",
    "SinkError",
    "SinkStats",
    "format_summary",
    "open_listeners",
    "parse_endpoint",
]

PROG = "qmqp-sink"
DEFAULT_BACKLOG = 100
# Postfix's message_size_limit; here it bounds the whole request netstring.
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
# qmqpd's default qmqpd_timeout.
DEFAULT_TIMEOUT = 300.0
# Past this many open connections, new ones wait in the listen queue: memory
# stays under max_connections * (max_size + RECV_SIZE) whatever clients do.
DEFAULT_MAX_CONNECTIONS = 1024
RECV_SIZE = 65536
# Accepts per wake-up: enough to empty a busy queue, few enough to let other tasks run.
ACCEPT_BATCH = 64
# After refusing a request whose rest is still arriving: how long to read and discard
# it, so that the client can finish sending and see our D reply instead of a reset.
DRAIN_TIME = 1.0
# accept() errors that mean "out of descriptors or memory": wait, don't spin.
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_PAUSE = 0.1
# listen() takes a C int; the kernel caps the queue far lower anyway (somaxconn).
_LISTEN_MAX = 2**31 - 1


class SinkError(Exception):
    """The sink cannot start as configured; ``str()`` is one line for the user."""


class ListenError(SinkError):
    """The sink cannot listen where asked."""


# --- where to listen


def parse_endpoint(text: str) -> UnixAddress | InetAddress:
    """``[inet:][host]:port`` or ``unix:pathname``, as Postfix's qmqp-sink takes them."""
    try:
        return parse_address(text, listen=True)
    except AddressError as exc:
        raise ListenError(str(exc)) from None


def _label(family: int, address: Any) -> str:
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
                    f"bind {_label(int(fam), address)}: {exc.strerror or exc}"
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
            if _answers(path):
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


def _answers(path: str) -> bool:
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


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


# --- configuration


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose: rates are probabilities per valid request, drawn in this order."""

    drop: float = 0.0
    hang: float = 0.0
    tempfail: float = 0.0
    reject: float = 0.0
    delay_min: float = 0.0
    delay_max: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.drop, self.hang, self.tempfail, self.reject)
        if any(not 0.0 <= r <= 1.0 for r in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        if not 0.0 <= self.delay_min <= self.delay_max:
            raise ValueError("delay must be SECONDS or MIN-MAX with 0 <= MIN <= MAX")

    @property
    def any_rate(self) -> bool:
        return self.drop + self.hang + self.tempfail + self.reject > 0.0


@dataclass(frozen=True, slots=True)
class SinkConfig:
    endpoint: str
    backlog: int = DEFAULT_BACKLOG
    family: Family = Family.ANY
    max_size: int = DEFAULT_MAX_SIZE
    timeout: float = DEFAULT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    faults: Faults = field(default_factory=Faults)
    maildir: str | None = None
    counter: bool = False
    verbose: int = 0

    def __post_init__(self) -> None:
        if self.backlog <= 0:
            raise ValueError("backlog must be a positive number")
        if self.max_size <= 0:
            raise ValueError("--max-size must be a positive number of bytes")
        if not self.timeout > 0:
            raise ValueError("--timeout must be a positive number of seconds")
        if self.max_connections <= 0:
            raise ValueError("--max-connections must be a positive number")


# --- counters


class SinkStats:
    """What the sink saw. Plain integer fields: they are bumped on the per-message path."""

    __slots__ = (
        "active",
        "bytes",
        "connections",
        "cut_off",
        "dropped",
        "empty",
        "evicted",
        "hung",
        "lost",
        "malformed",
        "max_active",
        "message_bytes",
        "messages",
        "recipients",
        "replies_d",
        "replies_k",
        "replies_z",
        "started",
        "stopped",
        "timeouts",
    )

    def __init__(self) -> None:
        self.connections = 0  # accepted connections
        self.active = 0  # open right now
        self.max_active = 0
        self.messages = 0  # well-formed requests
        self.recipients = 0  # in well-formed requests
        self.bytes = 0  # every byte received
        self.message_bytes = 0  # message text in well-formed requests
        self.replies_k = 0
        self.replies_z = 0
        self.replies_d = 0
        self.malformed = 0  # requests refused: bad framing, bad content, oversize
        self.timeouts = 0  # connections ended by --timeout
        self.lost = 0  # clients that went away mid-request or mid-reply
        self.empty = 0  # connections closed before sending a byte (probes)
        self.dropped = 0  # --drop: closed on purpose without a reply
        self.hung = 0  # --hang: never answered
        self.evicted = 0  # closed before their first byte, to make room for new ones
        # Open when the sink stopped, ended in none of the ways above; set at the stop.
        self.cut_off = 0
        self.started = time.monotonic()
        self.stopped: float | None = None

    @property
    def elapsed(self) -> float:
        end = self.stopped if self.stopped is not None else time.monotonic()
        return end - self.started

    def ended(self) -> int:
        """Connections that ended in one of the counted ways; every one ends in exactly one."""
        return (self.empty + self.lost + self.timeouts + self.replies_k + self.replies_z
                + self.replies_d + self.dropped + self.hung + self.evicted)

    def as_dict(self) -> dict[str, Any]:
        elapsed = self.elapsed
        return {
            "connections": self.connections,
            "max_active": self.max_active,
            "messages": self.messages,
            "recipients": self.recipients,
            "bytes": self.bytes,
            "message_bytes": self.message_bytes,
            "replies": {"K": self.replies_k, "Z": self.replies_z, "D": self.replies_d},
            "malformed": self.malformed,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "empty": self.empty,
            "dropped": self.dropped,
            "hung": self.hung,
            "evicted": self.evicted,
            "cut_off": self.cut_off,
            "elapsed": round(elapsed, 6),
            "messages_per_second": round(self.messages / elapsed, 1) if elapsed > 0 else 0.0,
        }


def format_summary(stats: SinkStats) -> list[str]:
    """The human summary, a few lines."""
    elapsed = stats.elapsed
    rate = stats.messages / elapsed if elapsed > 0 else 0.0
    lines = [
        f"{counted(stats.connections, 'connection')}, {counted(stats.messages, 'message')}, "
        f"{counted(stats.recipients, 'recipient')}, {counted(stats.bytes, 'byte')} "
        f"in {elapsed:.3f} s "
        f"({rate:.1f} msg/s)",
        f"replies: {stats.replies_k} K, {stats.replies_z} Z, {stats.replies_d} D; "
        f"malformed {stats.malformed}, timeouts {stats.timeouts}, lost {stats.lost}, "
        f"dropped {stats.dropped}, hung {stats.hung}",
    ]
    if stats.evicted or stats.cut_off:
        lines.append(
            f"closed idle to make room {stats.evicted}; cut off by the stop {stats.cut_off}"
        )
    return lines


# --- the server


class Lines(Protocol):
    """Where log lines and -c's counts go: a text stream, or a loglines.LineWriter."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class _Started(Protocol):
    # What serve() needs of nursery.start's task_status.
    def started(self, value: list[str]) -> None: ...


class _Lost(Exception):
    """The client went away; ``str()`` says while doing what."""


class _Timeout(Exception):
    """The connection's deadline passed; ``str()`` says while doing what."""


class _Evicted(Exception):
    """The connection had sent nothing, and its slot went to a new one."""


def _peer_label(family: int, address: Any, listener: str) -> str:
    if family == socket.AF_UNIX:
        return listener
    try:
        return _label(family, address)
    except (TypeError, IndexError):
        return listener


async def _readable(fd: int, deadline: float, doing: str) -> None:
    """Wait until fd is readable, or raise _Timeout at the deadline."""
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_readable(fd)
        return
    raise _Timeout(doing)


async def _writable(fd: int, deadline: float, doing: str) -> None:
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_writable(fd)
        return
    raise _Timeout(doing)


# What becomes of a well-formed request; one uniform draw picks it (see Faults).
_DROP, _HANG, _TEMPFAIL, _REJECT, _ACCEPT = range(5)
_K, _Z = ord("K"), ord("Z")
_TEMPFAIL_REPLY = encode_reply(Status.TEMPFAIL, b"4.3.0 Error: tempfail on purpose")
_REJECT_REPLY = encode_reply(Status.PERMFAIL, b"5.7.1 Error: rejected on purpose")


class Sink:
    """The server. ``serve`` listens, reports its addresses, and serves until cancelled.

    The common case costs no cancel scope and no wait: a loopback client has
    usually sent its whole request by the time we accept, and a short reply
    fits the socket buffer. Deadlines are armed only around actual waits.
    """

    def __init__(
        self,
        config: SinkConfig,
        *,
        log: Lines | None = None,
        out: Lines | None = None,
    ) -> None:
        self.config = config
        self.stats = SinkStats()
        self.labels: list[str] = []
        # -v's lines and -c's counter (qmqp-sink gives loglines.LineWriters: never blocking).
        self.log: Lines = log if log is not None else sys.stderr
        self.out: Lines = out if out is not None else sys.stdout
        self._maildir: Maildir | None = None
        faults = config.faults
        self._faulty = faults.any_rate
        self._slow = faults.any_rate or faults.delay_max > 0 or config.maildir is not None
        self._chatty = config.verbose > 0 or config.counter
        self._random = random.Random(faults.seed)
        # Cumulative thresholds, in the order of _DROP.._REJECT.
        self._limits = (
            faults.drop,
            faults.drop + faults.hang,
            faults.drop + faults.hang + faults.tempfail,
            faults.drop + faults.hang + faults.tempfail + faults.reject,
        )
        # Ids are unique per sink process: "<start time in hex>.<sequence>".
        self._id_prefix = b"2.0.0 Ok: queued as %X." % int(time.time())
        self._sequence = 0
        self._completed = 0  # well-formed requests answered, for -c
        # Set when a connection ends while the acceptors wait at --max-connections;
        # a plain count (stats.active) is cheaper than a semaphore on the hot path.
        self._room: trio.Event | None = None
        self._accept_warned = -1.0
        # Connections waiting for their first byte, oldest first: who makes room (_evict).
        self._idle: dict[socket.socket, trio.CancelScope] = {}
        self._evict_warned = -1.0

    def _log(self, text: str) -> None:
        try:
            self.log.write(f"{PROG}: {text}\n")
            self.log.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take a connection (or the sink) down

    async def serve(self, *, task_status: _Started = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, call ``task_status.started(labels)``, then serve until cancelled."""
        config = self.config
        endpoint = parse_endpoint(config.endpoint)
        if config.maildir is not None:
            try:
                self._maildir = Maildir(config.maildir)
            except OSError as exc:
                raise SinkError(f"maildir {config.maildir}: {exc.strerror or exc}") from None
        listeners = await open_listeners(endpoint, config.family, config.backlog)
        # What we bound, so that the exit removes our socket file and nobody else's.
        ours = _file_identity(endpoint.path) if isinstance(endpoint, UnixAddress) else None
        try:
            self.labels = [_label(s.family, s.getsockname()) for s in listeners]
            if config.verbose:
                for label in self.labels:
                    self._log(f"listening on {label}")
            self.stats.started = time.monotonic()
            async with trio.open_nursery() as connections:
                for sock, label in zip(listeners, self.labels, strict=True):
                    connections.start_soon(self._accept_loop, sock, label, connections)
                task_status.started(self.labels)
        finally:
            stats = self.stats
            stats.stopped = time.monotonic()
            # Every connection task has ended: those that ended in no counted way were
            # cut off by the stop (mid-request, waiting for --delay or the Maildir...).
            stats.cut_off = stats.connections - stats.ended()
            for sock in listeners:
                sock.close()
            if isinstance(endpoint, UnixAddress) and ours is not None and (
                _file_identity(endpoint.path) == ours
            ):
                with contextlib.suppress(OSError):
                    os.unlink(endpoint.path)

    async def _accept_loop(
        self, listener: socket.socket, label: str, connections: trio.Nursery
    ) -> None:
        start = connections.start_soon
        handler = self._connection
        stats = self.stats
        limit = self.config.max_connections
        wait_readable = trio.lowlevel.wait_readable
        fd = listener.fileno()
        while True:
            await wait_readable(fd)
            for _ in range(ACCEPT_BATCH):
                if stats.active >= limit and not self._idle:
                    # --max-connections reached, and every connection is busy: the rest
                    # wait in the listen queue until one ends.
                    await self._room_made()
                try:
                    sock, address = listener.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _ACCEPT_RESOURCE_ERRNOS:
                        self._accept_trouble(exc)
                        await trio.sleep(_ACCEPT_PAUSE)
                        break
                    # The client gave up between its SYN and our accept: nothing to serve.
                    continue
                if stats.active >= limit:
                    # A connection in hand and no slot for it: the one that has sent
                    # nothing for longest makes room.
                    try:
                        while stats.active >= limit:
                            if self._idle:
                                self._evict()
                            await self._room_made()
                    except BaseException:
                        sock.close()
                        raise
                sock.setblocking(False)
                stats.connections += 1
                stats.active += 1
                if stats.active > stats.max_active:
                    stats.max_active = stats.active
                start(handler, sock, address, label)

    async def _room_made(self) -> None:
        """Until a connection ends (and so frees its slot)."""
        if self._room is None:
            self._room = trio.Event()
        await self._room.wait()

    def _evict(self) -> None:
        """Close the connection that has waited longest for its first byte.

        Idle connections cost a slot each and nothing else: without this, a few
        thousand of them (a flood, or clients that connect and never speak) kept every
        real client waiting for --timeout, five minutes by default.
        """
        sock = next(iter(self._idle))
        self._idle.pop(sock).cancel()  # gone from _idle: _first_byte knows why it ended
        now = time.monotonic()
        if self._evict_warned < 0 or now - self._evict_warned >= 1.0:
            self._evict_warned = now  # one line a second at most, however many
            self._log("warning: every connection slot is taken: closing the connections "
                      "that have sent nothing for longest")

    def _accept_trouble(self, exc: OSError) -> None:
        # One line a second at most, however hard the clients push.
        now = time.monotonic()
        if self._accept_warned < 0 or now - self._accept_warned >= 1.0:
            self._accept_warned = now
            self._log(f"warning: accept: {exc.strerror}; pausing new connections")

    async def _connection(self, sock: socket.socket, address: Any, listener: str) -> None:
        """One client: one request, at most one reply, at most one log line."""
        stats = self.stats
        note: str | None = None
        try:
            request = await self._receive(sock)
            if isinstance(request, str):
                note = request
            elif self._slow:
                note = await self._answer(sock, request)
            else:
                self._sequence += 1
                reply = encode_reply(Status.OK, self._id_prefix + b"%d" % self._sequence)
                try:
                    # A short reply nearly always fits the socket buffer at once.
                    sent = sock.send(reply)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    raise _Lost("sending reply") from None
                if sent < len(reply):
                    await self._send(sock, reply[sent:])
                stats.replies_k += 1
                if self._chatty:
                    note = self._done(request, reply)
        except _Timeout as exc:
            stats.timeouts += 1
            note = f"warning: timeout while {exc}"
        except _Evicted:
            stats.evicted += 1
            note = "closed before a byte came, to make room"
        except _Lost as exc:
            stats.lost += 1
            note = f"warning: lost connection while {exc}"
        finally:
            stats.active -= 1
            sock.close()
            room = self._room
            if room is not None:
                self._room = None
                room.set()
        if note is not None and (self.config.verbose or note.startswith("warning:")):
            self._log(f"{_peer_label(sock.family, address, listener)}: {note}")

    async def _receive(self, sock: socket.socket) -> Request | str:
        """The request, or (having dealt with the client) the note for the log."""
        stats = self.stats
        limit = self.config.max_size
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
                        deadline = trio.current_time() + self.config.timeout
                    if decoder is None:
                        await self._first_byte(sock, deadline)
                    else:
                        await _readable(sock.fileno(), deadline, "receiving request")
                    continue
                except OSError:
                    if decoder is not None:
                        raise _Lost("receiving request") from None
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
        except NetstringSizeError as exc:
            stats.malformed += 1
            # The length is refused as soon as its digits pass the limit, so only a
            # lower bound of the size is known.
            text = b"5.3.4 Error: message too large: over %d bytes" % exc.limit
            await self._refuse(sock, encode_reply(Status.PERMFAIL, text))
            return f"warning: refused: request of over {exc.limit} bytes"
        except NetstringTruncatedError:
            raise _Lost("receiving request") from None
        except ProtocolError as exc:
            # The framing is broken: nothing after this point can be trusted.
            stats.malformed += 1
            await self._refuse(sock, encode_reply(Status.PERMFAIL, b"5.5.4 Error: %s" % (
                str(exc).encode())))
            return f"warning: refused: {exc}"
        try:
            request = decode_request(payload)
            _check_addresses(request)
        except RequestError as exc:
            stats.malformed += 1
            await self._send(sock, encode_reply(Status.PERMFAIL, b"5.5.4 Error: %s" % (
                str(exc).encode())))
            stats.replies_d += 1
            return f"warning: refused: {exc}"
        stats.messages += 1
        stats.recipients += len(request.recipients)
        stats.message_bytes += len(request.message)
        return request

    async def _first_byte(self, sock: socket.socket, deadline: float) -> None:
        """Wait until a new connection has something to read; raises _Timeout at the
        deadline, or _Evicted when its slot is taken back meanwhile (see _evict)."""
        idle = self._idle
        with trio.move_on_at(deadline):
            idle[sock] = trio.CancelScope()
            with idle[sock]:
                try:
                    await trio.lowlevel.wait_readable(sock.fileno())
                finally:
                    evicted = idle.pop(sock, None) is None
                return
            if evicted:
                raise _Evicted
        raise _Timeout("receiving request")

    def _delay(self) -> float:
        faults = self.config.faults
        if faults.delay_max <= 0:
            return 0.0
        if faults.delay_min == faults.delay_max:
            return faults.delay_min
        return self._random.uniform(faults.delay_min, faults.delay_max)

    def _fate(self) -> int:
        draw = self._random.random()
        for fate, limit in enumerate(self._limits):
            if draw < limit:
                return fate
        return _ACCEPT

    async def _answer(self, sock: socket.socket, request: Request) -> str | None:
        """The slow path: faults, delays, Maildir. The note for the log, if any."""
        stats = self.stats
        # Both draws at once, in arrival order: the same --seed gives the same run.
        fate = self._fate() if self._faulty else _ACCEPT
        delay = self._delay()
        if delay:
            await trio.sleep(delay)
        warning = None
        if fate == _ACCEPT:
            if self._maildir is not None:
                reply, warning = await self._store(request)
            else:
                self._sequence += 1
                reply = encode_reply(Status.OK, self._id_prefix + b"%d" % self._sequence)
        elif fate == _TEMPFAIL:
            reply = _TEMPFAIL_REPLY
        elif fate == _REJECT:
            reply = _REJECT_REPLY
        elif fate == _DROP:
            stats.dropped += 1
            return "dropped on purpose"
        else:
            stats.hung += 1
            await self._hang(sock)
            return "hung on purpose"
        await self._send(sock, reply)
        # The status byte follows the netstring's length and colon.
        status = reply[reply.index(b":") + 1]
        if status == _K:
            stats.replies_k += 1
        elif status == _Z:
            stats.replies_z += 1
        else:
            stats.replies_d += 1
        note = self._done(request, reply)
        return warning if warning is not None else note

    def _done(self, request: Request, reply: bytes) -> str | None:
        """-c and -v bookkeeping for an answered request."""
        if self.config.counter:
            self._completed += 1
            with contextlib.suppress(OSError, ValueError):
                self.out.write(f"{self._completed}\r")
                self.out.flush()
        if not self.config.verbose:
            return None
        text = printable(reply[reply.index(b":") + 1 : -1])
        line = f"{text}; {len(request.recipients)} recipients, {len(request.message)} bytes"
        if self.config.verbose > 1:
            line += f", from=<{printable(request.sender)}>"
        return line

    async def _store(self, request: Request) -> tuple[bytes, str | None]:
        """Deliver into the Maildir (a worker thread: fsync blocks): the reply, a warning."""
        assert self._maildir is not None
        try:
            name = await trio.to_thread.run_sync(
                self._maildir.deliver, request.message, request.sender, request.recipients
            )
        except OSError as exc:
            # Not stored, so not accepted: the client must try again later.
            why = f"maildir delivery failed: {exc.strerror or exc}"
            return encode_reply(Status.TEMPFAIL, b"4.3.0 Error: " + why.encode()), (
                f"warning: {why}")
        return encode_reply(Status.OK, b"2.0.0 Ok: queued as " + name.encode()), None

    async def _send(self, sock: socket.socket, reply: bytes) -> None:
        view = memoryview(reply)
        deadline = -1.0
        while True:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                if deadline < 0:
                    deadline = trio.current_time() + self.config.timeout
                await _writable(sock.fileno(), deadline, "sending reply")
                continue
            except OSError:
                raise _Lost("sending reply") from None
            if sent == len(view):
                return
            view = view[sent:]

    async def _refuse(self, sock: socket.socket, reply: bytes) -> None:
        """Reply D to a request we stopped reading, then let its rest drain, bounded."""
        self.stats.replies_d += 1
        try:
            await self._send(sock, reply)
            sock.shutdown(socket.SHUT_WR)
        except (_Lost, OSError):
            return
        # Closing with unread input would reset the connection and could destroy the
        # reply before the client reads it: read and discard for a short while instead.
        with trio.move_on_after(DRAIN_TIME):
            await self._discard(sock)

    async def _hang(self, sock: socket.socket) -> None:
        """Never answer: hold the connection until the client leaves or --timeout ends it."""
        with trio.move_on_after(self.config.timeout):
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
            self.stats.bytes += len(data)


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
