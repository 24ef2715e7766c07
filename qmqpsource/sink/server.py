"""qmqp-sink's server: accepting on the listeners, one task and one slot per connection,
one answer per request, log lines.

Each connection reads one request (connection.py) and is answered K with an id or,
when told to misbehave (faults.py), Z, D, a close without a word, or nothing at all.
Past --max-connections, new connections wait in the listen queue, or take the slot of
the connection that has sent nothing for longest.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Any, Protocol

import trio

from qmqpsource import logs
from qmqpsource.protocol import Request, Status, encode_reply
from qmqpsource.sink.config import SinkConfig
from qmqpsource.sink.connection import (
    RECEIVING,
    SENDING,
    WARNING,
    ConnectionIO,
    ConnectionLost,
    ConnectionTimeout,
)
from qmqpsource.sink.faults import (
    DROP,
    NO_FAULT,
    REJECT,
    REJECT_REPLY,
    TEMPFAIL,
    TEMPFAIL_REPLY,
    FaultDraw,
)
from qmqpsource.sink.listeners import (
    SinkError,
    address_label,
    close_listeners,
    open_listeners,
    parse_endpoint,
    socket_file,
)
from qmqpsource.sink.maildir import Maildir
from qmqpsource.sink.stats import SinkStats
from qmqpsource.wording import printable

__all__ = ["Sink"]

# Accepts per wake-up: enough to empty a busy queue, few enough to let other tasks run.
ACCEPT_BATCH = 64
# accept() errors that mean "out of descriptors or memory": wait, don't spin.
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_PAUSE = 0.1
_K, _Z = ord("K"), ord("Z")

_log = logging.getLogger(logs.SINK)
_request_log = logging.getLogger(logs.SINK_REQUESTS)
_reply_log = logging.getLogger(logs.SINK_REPLIES)


class _Started(Protocol):
    # What serve() needs of nursery.start's task_status.
    def started(self, value: list[str]) -> None: ...


class Evicted(Exception):
    """The connection had sent nothing, and its slot went to a new one."""


def _client_label(family: int, address: Any, listener: str) -> str:
    if family == socket.AF_UNIX:
        return listener
    try:
        return address_label(family, address)
    except (TypeError, IndexError):
        return listener


class Sink:
    """The server. ``serve`` listens, reports its addresses, and serves until cancelled."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.stats = SinkStats()
        self.labels: list[str] = []
        self._maildir: Maildir | None = None
        faults = config.faults
        self._faults = FaultDraw(faults)
        # Faults, delays or a Maildir: requests are answered by _answer, not inline.
        self._slow_path = faults.any_rate or faults.delay_max > 0 or config.maildir is not None
        # A line or a count per reply only where a handler wants them (logs.py).
        self._count_replies = logs.wants(logs.SINK_REPLIES)
        self._log_requests = logs.wants(logs.SINK_REQUESTS, logging.INFO)
        self._log_senders = logs.wants(logs.SINK_REQUESTS)
        self._reply_bookkeeping = self._count_replies or self._log_requests
        self._io = ConnectionIO(self.stats, config.max_size, config.timeout, self._first_byte)
        # Ids are unique per sink process: "<start time in hex>.<sequence>".
        self._id_prefix = b"2.0.0 Ok: queued as %X." % int(time.time())
        self._sequence = 0
        self._requests_answered = 0  # well-formed requests answered, for -c
        # Set when a connection ends while the acceptors wait at --max-connections;
        # a plain count (stats.active) is cheaper than a semaphore on the hot path.
        self._slot_freed: trio.Event | None = None
        self._accept_warned = -1.0
        # Connections waiting for their first byte, oldest first: who makes room (_evict).
        self._idle: dict[socket.socket, trio.CancelScope] = {}
        self._evict_warned = -1.0

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
        ours = socket_file(endpoint)
        try:
            self.labels = [address_label(s.family, s.getsockname()) for s in listeners]
            for label in self.labels:
                _log.info("listening on %s", label)
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
            close_listeners(listeners, endpoint, ours)

    # --- accepting, and the --max-connections slots

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
                    await self._until_a_slot_frees()
                try:
                    sock, address = listener.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _ACCEPT_RESOURCE_ERRNOS:
                        self._accept_failed(exc)
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
                            await self._until_a_slot_frees()
                    except BaseException:
                        sock.close()
                        raise
                sock.setblocking(False)
                stats.connections += 1
                stats.active += 1
                if stats.active > stats.max_active:
                    stats.max_active = stats.active
                start(handler, sock, address, label)

    async def _until_a_slot_frees(self) -> None:
        """Until a connection ends (and so frees its slot)."""
        if self._slot_freed is None:
            self._slot_freed = trio.Event()
        await self._slot_freed.wait()

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
            _log.warning("every connection slot is taken: closing the connections that "
                         "have sent nothing for longest")

    def _accept_failed(self, exc: OSError) -> None:
        # One line a second at most, however hard the clients push.
        now = time.monotonic()
        if self._accept_warned < 0 or now - self._accept_warned >= 1.0:
            self._accept_warned = now
            _log.warning("accept: %s; pausing new connections", exc.strerror)

    async def _first_byte(self, sock: socket.socket, deadline: float) -> None:
        """Wait until a new connection has something to read; raises ConnectionTimeout at
        the deadline, or Evicted when its slot is taken back meanwhile (see _evict)."""
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
                raise Evicted
        raise ConnectionTimeout(RECEIVING)

    # --- one connection: its request, its reply

    async def _connection(self, sock: socket.socket, address: Any, listener: str) -> None:
        """One client: one request, at most one reply, at most one log line."""
        stats = self.stats
        log_line: str | None = None
        level = logging.INFO
        try:
            request = await self._io.receive(sock)
            if isinstance(request, str):
                log_line = request.removeprefix(WARNING)
                if log_line != request:
                    level = logging.WARNING
            elif self._slow_path:
                log_line, level = await self._answer(sock, request)
            else:
                self._sequence += 1
                reply = encode_reply(Status.OK, self._id_prefix + b"%d" % self._sequence)
                try:
                    # A short reply nearly always fits the socket buffer at once.
                    sent = sock.send(reply)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    raise ConnectionLost(SENDING) from None
                if sent < len(reply):
                    await self._io.send(sock, reply[sent:])
                stats.replies_k += 1
                if self._reply_bookkeeping:
                    log_line = self._answered(request, reply)
        except ConnectionTimeout as exc:
            stats.timeouts += 1
            log_line, level = f"timeout while {exc}", logging.WARNING
        except Evicted:
            stats.evicted += 1
            log_line = "closed before a byte came, to make room"
        except ConnectionLost as exc:
            stats.lost += 1
            log_line, level = f"lost connection while {exc}", logging.WARNING
        finally:
            stats.active -= 1
            sock.close()
            slot_freed = self._slot_freed
            if slot_freed is not None:
                self._slot_freed = None
                slot_freed.set()
        if log_line is not None and (level > logging.INFO or self._log_requests):
            client = _client_label(sock.family, address, listener)
            _request_log.log(level, "%s", log_line, extra={"client": client})

    async def _answer(self, sock: socket.socket, request: Request) -> tuple[str | None, int]:
        """The slow path: faults, delays, Maildir. The line for the log, if any, and its
        level."""
        stats = self.stats
        # Both draws at once, in arrival order: the same --seed gives the same run.
        fault, delay = self._faults.draw()
        if delay:
            await trio.sleep(delay)
        warning = None
        if fault == NO_FAULT:
            if self._maildir is not None:
                reply, warning = await self._store(request)
            else:
                self._sequence += 1
                reply = encode_reply(Status.OK, self._id_prefix + b"%d" % self._sequence)
        elif fault == TEMPFAIL:
            reply = TEMPFAIL_REPLY
        elif fault == REJECT:
            reply = REJECT_REPLY
        elif fault == DROP:
            stats.dropped += 1
            return "dropped on purpose", logging.INFO
        else:
            stats.hung += 1
            await self._io.hold(sock)
            return "hung on purpose", logging.INFO
        await self._io.send(sock, reply)
        # The status byte follows the netstring's length and colon.
        status = reply[reply.index(b":") + 1]
        if status == _K:
            stats.replies_k += 1
        elif status == _Z:
            stats.replies_z += 1
        else:
            stats.replies_d += 1
        log_line = self._answered(request, reply)
        if warning is not None:
            return warning, logging.WARNING
        return log_line, logging.INFO

    def _answered(self, request: Request, reply: bytes) -> str | None:
        """The count of answered requests, and the line for the log, if any is wanted."""
        if self._count_replies:
            self._requests_answered += 1
            _reply_log.debug("%d", self._requests_answered)
        if not self._log_requests:
            return None
        text = printable(reply[reply.index(b":") + 1 : -1])
        line = f"{text}; {len(request.recipients)} recipients, {len(request.message)} bytes"
        if self._log_senders:
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
            return encode_reply(Status.TEMPFAIL, b"4.3.0 Error: " + why.encode()), why
        return encode_reply(Status.OK, b"2.0.0 Ok: queued as " + name.encode()), None
