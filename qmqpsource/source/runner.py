"""The load itself: a trio nursery of session tasks sharing one message budget.

Each session loops connect, send, reply, close. A trio.CapacityLimiter keeps the
number of connection attempts in flight small (1 by default, as Postfix does, so
that a burst of SYNs does not make the server back off and skew the run). Every I/O
step runs under a cancel scope deadline (--timeout); the first failure cancels the
nursery unless the run keeps going (-A). Times are on trio's clock, so that tests can
drive delays, deadlines and --rate schedules with trio.testing.MockClock.
"""

from __future__ import annotations

import errno
import logging
import math
import random
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from qmqpsource import logs
from qmqpsource.protocol import Reply, Status
from qmqpsource.results.outcome import DeliveryError, Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.source.client import read_reply, send_request
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import ConnectError, Endpoint, begin_connect, connect_and_send
from qmqpsource.source.pacing import UNPACED_SESSIONS, ConnectPacer
from qmqpsource.source.request import RequestFactory
from qmqpsource.wording import printable

if TYPE_CHECKING:
    from qmqpsource.load.budget import MessageBudget

__all__ = ["RunResult", "Runner"]

# --rate: a message that starts later than this after its scheduled time is behind.
BEHIND_TOLERANCE = 0.001
# Large messages: what all sessions together may hand the kernel in one round of sends.
# A session sends at most its part of this (but SEND_CHUNK_MIN at least) before waiting
# for room again. Unlimited, -s 500 with 4 MiB messages put 2 GiB into socket buffers,
# past the kernel's TCP memory pressure mark, and ran at half the speed it does with it;
# -s 10 with 1 MiB messages still sends each whole.
SEND_BUDGET = 64 * 1024 * 1024
SEND_CHUNK_MIN = 128 * 1024

# How much earlier than --timeout a step's deadline may fire (see _Session.arm).
DEADLINE_SLACK = 0.05

_log = logging.getLogger(logs.SOURCE)
_failure_log = logging.getLogger(logs.SOURCE_FAILURES)
_reply_log = logging.getLogger(logs.SOURCE_REPLIES)
_connection_log = logging.getLogger(logs.SOURCE_CONNECTIONS)
_accepted_log = logging.getLogger(logs.SOURCE_ACCEPTED)

_K = ord("K")
_INF = math.inf


def _reply_error(reply: Reply) -> DeliveryError:
    status = reply.status
    text = printable(reply.text)
    if status is Status.TEMPFAIL:
        return DeliveryError(Outcome.TEMPFAIL, f"recoverable error: {text}")
    if status is Status.PERMFAIL:
        return DeliveryError(Outcome.PERMFAIL, f"unrecoverable error: {text}")
    return DeliveryError(Outcome.PROTOCOL_ERROR, f"unknown error: {text}")


def _connect_error(exc: ConnectError) -> DeliveryError:
    if exc.errno == errno.ECONNREFUSED:
        outcome = Outcome.REFUSED
    elif exc.errno == errno.ECONNRESET:
        outcome = Outcome.RESET
    elif exc.errno == errno.ETIMEDOUT:
        outcome = Outcome.TIMEOUT
    else:
        outcome = Outcome.CONNECT_ERROR
    return DeliveryError(outcome, str(exc))


class _Session:
    """One session: its deadline scope, and its message in flight, where a timeout or a
    cut-off run can see them."""

    __slots__ = ("armed", "connected", "in_flight", "number", "scope", "slack", "started", "step")

    def __init__(self, number: int, slack: float) -> None:
        self.number = number
        self.slack = slack
        self.scope = trio.CancelScope()
        self.armed = -_INF  # the scope's deadline while a step has one; -inf: none
        self.in_flight = False
        self.started = 0.0
        self.connected: float | None = None
        self.step = "connecting"  # for Postfix's "timeout while ..."

    def arm(self, deadline: float) -> None:
        """The step that starts now must end by ``deadline`` (trio time).

        Moving a scope's deadline costs (trio keeps a heap of them): moved at every step,
        a message took 16,000 more instructions (+14%) and 1 to 3.5 us more user CPU
        (-s 10 against Postfix's sink; issue 22). So a deadline less than ``slack`` past
        the one in force is left as it is: a step gets between --timeout - slack and
        --timeout.
        """
        if deadline - self.armed > self.slack:
            self.scope.deadline = self.armed = deadline

    def disarm(self) -> None:
        """No deadline from now on: the wait ahead is the client's own (a pause, a queue)."""
        if self.armed != -_INF:
            self.scope.deadline = _INF
            self.armed = -_INF

    def new_scope(self) -> trio.CancelScope:
        self.scope = trio.CancelScope()
        self.armed = -_INF
        return self.scope


@dataclass(slots=True)
class RunResult:
    stats: RunStats
    elapsed: float
    failure: str | None = None

    @property
    def exit_status(self) -> int:
        return 1 if self.failure is not None or self.stats.failed else 0


class Runner:
    """Runs one configured load against one resolved endpoint."""

    def __init__(
        self,
        config: SourceConfig,
        endpoint: Endpoint,
        requests: RequestFactory,
        stats: RunStats,
        *,
        budget: MessageBudget | None = None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.stats = stats
        self._requests = requests
        # The common case: every message is the same bytes, sent from one buffer. Built
        # per message, a request cost 34,000 instructions (+29%) and 3 to 4.5 us of user
        # CPU more (-s 10 against Postfix's sink; issue 22).
        self._fixed = memoryview(requests.fixed) if requests.fixed is not None else None
        self._taken = 0  # the next message's number in this process's share (from 0)
        self._end = _INF  # trio time after which no message starts (--duration)
        self._t0 = 0.0  # trio time of the run's start: --rate schedules from it
        self._spacing = 1.0 / config.rate if config.rate else 0.0
        self._send_chunk = max(SEND_CHUNK_MIN, SEND_BUDGET // config.sessions)
        # Lines per message only where a handler wants them (logs.py): asked once.
        self._count_accepted = logs.wants(logs.SOURCE_ACCEPTED)
        self._log_replies = logs.wants(logs.SOURCE_REPLIES)
        self._log_connections = logs.wants(logs.SOURCE_CONNECTIONS)
        self._log_failures = logs.wants(logs.SOURCE_FAILURES, logging.INFO)
        # Messages left to start; with a budget shared with other processes, those left
        # of the chunk taken last (local numbers from _taken on).
        self._budget = budget
        self._remaining = 0 if budget is not None else config.messages
        self._limiter = trio.CapacityLimiter(config.connect_limit)
        self._pacer = ConnectPacer() if config.sessions > UNPACED_SESSIONS else None
        self._accepted = 0  # the running count, for SOURCE_ACCEPTED's records
        self._failure: str | None = None
        self._random = random.Random()
        # Stopping: no message starts once set; pauses end at once.
        self._stopped = trio.Event()
        self._stop_deadline = _INF  # when messages in flight are cut (trio time)
        self._nursery: trio.Nursery | None = None
        self._slack = min(DEADLINE_SLACK, config.timeout / 10)

    async def run(self) -> RunResult:
        started = time.perf_counter()
        self._t0 = trio.current_time()
        if self.config.duration is not None:
            self._end = self._t0 + self.config.duration
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.cancel_scope.deadline = self._stop_deadline  # a stop before the run
            if self._pacer is not None:
                nursery.start_soon(self._pacer.run)
            async with trio.open_nursery() as sessions:
                # More sessions than messages would only idle: -s 1000000 -m 1 needs one.
                for number in range(min(self.config.sessions, self.config.messages)):
                    sessions.start_soon(self._session, number)
            nursery.cancel_scope.cancel()  # the pacer's work is over with the sessions'
        self._nursery = None
        return RunResult(self.stats, time.perf_counter() - started, self._failure)

    def stop(self, grace: float) -> None:
        """Start no new message; cut what is still in flight after ``grace`` seconds."""
        self._stopped.set()
        self._cut_at(trio.current_time() + grace)

    def abort(self) -> None:
        """End now: in-flight messages are cut, their sockets closed."""
        self._stopped.set()
        self._cut_at(-_INF)

    def _cut_at(self, deadline: float) -> None:
        self._stop_deadline = min(self._stop_deadline, deadline)
        if self._nursery is not None:
            self._nursery.cancel_scope.deadline = self._stop_deadline

    async def _session(self, number: int) -> None:
        session = _Session(number, self._slack)
        try:
            await self._messages(session)
        except trio.Cancelled:
            # The run was stopped (grace over, a second signal, another session's fatal
            # failure) with this message in flight: it has no outcome, but it is counted.
            if session.in_flight:
                self.stats.cut_off += 1
            raise

    async def _messages(self, session: _Session) -> None:
        """The session's messages, one after another, until the budget or the run ends.

        One cancel scope holds the deadline of each step of many messages, moved as the
        steps go: a scope entered and left per step took 48% more instructions a message
        (see docs/performance.md). A deadline that fires ends the scope, with the message's step in
        ``session``; the session goes on in a fresh one.
        """
        config = self.config
        spacing = self._spacing
        delays = config.fixed_delay or config.random_delay
        while True:
            with session.new_scope():
                while self._failure is None and not self._stopped.is_set():
                    local = self._take()
                    if local is None:
                        return
                    scheduled = None
                    if spacing:
                        scheduled = await self._wait_for_schedule(session, local)
                        if scheduled is None:
                            return
                    await self._deliver(session, local, scheduled)
                    if delays and self._more():
                        session.disarm()  # a chosen pause is no step of the server's
                        pause = config.fixed_delay or self._random.uniform(0, config.random_delay)
                        await self._pause_until(trio.current_time() + pause)
                return
            # Only here when this scope's own deadline cut a step: a timeout.
            session.in_flight = False
            self._failed(
                DeliveryError(Outcome.TIMEOUT, f"timeout while {session.step}"),
                session.started,
                session.connected,
            )

    async def _deliver(self, session: _Session, local: int, scheduled: float | None) -> None:
        """One message: connect, send, read the reply, close. The hot path.

        Nothing per message that a plain run does not need: the request is one shared
        buffer, the first send goes right after connect(), and a reply that comes whole
        is parsed without the incremental parser. Options take branches off it.
        """
        config = self.config
        request = self._fixed
        extra = 0
        if request is None:  # a request of its own (-N, --unique-message-id)
            seq = config.shard_index + config.shard_count * local
            request = memoryview(self._requests.build(seq))
            extra = len(request) - self.stats.bytes_per_message
        # --rate: latency runs from the scheduled start (no coordinated omission).
        started = session.started = scheduled if scheduled is not None else trio.current_time()
        session.connected = None
        session.step = "connecting"
        sock = None
        try:
            sock, sent = await self._connect(session, request)
            self.stats.bytes_extra += extra  # bytes count once the connection is up
            reply = await self._exchange(session, sock, request, sent)
            if reply.raw[0] != _K:
                raise _reply_error(reply)
        except ConnectError as exc:
            self._failed(_connect_error(exc), started, session.connected)
        except DeliveryError as exc:
            self._failed(exc, started, session.connected)
        else:
            self.stats.record(Outcome.ACCEPTED, started, session.connected, trio.current_time())
            if self._count_accepted:
                self._accepted += 1
                _accepted_log.debug("%d", self._accepted)
        finally:
            if sock is not None:
                sock.close()
            if self._pacer is not None and session.in_flight:
                self._pacer.give_back()  # closed, or never up: not in the server's queue
        # Not in the finally: a cut message must still look in flight to _session.
        session.in_flight = False
        if sock is None:
            # A refused loopback or UNIX connect fails without ever waiting: let trio's
            # other tasks (signals, progress, other sessions) run before the next attempt.
            await trio.lowlevel.checkpoint()

    async def _connect(
        self, session: _Session, request: memoryview
    ) -> tuple[socket.SocketType, int]:
        """Wait for a turn, connect, send what the socket takes at once: (socket, sent).

        Time queued for a turn (connect pacing, --connect-limit) is the client's own,
        not the server's: no deadline runs while waiting for one.
        """
        pacer = self._pacer
        if pacer is not None and not pacer.try_take():
            session.disarm()
            await pacer.take()
        limiter = self._limiter
        try:
            # Not always acquire(): its trip through the scheduler cost 80,000 instructions
            # (+68%) and 10 us of user CPU a message (-s 10, Postfix's sink; issue 22).
            limiter.acquire_nowait()
        except trio.WouldBlock:
            session.disarm()
            await limiter.acquire()
        session.in_flight = True
        try:
            first = request if len(request) <= self._send_chunk else request[: self._send_chunk]
            first_attempt = begin_connect(self.endpoint, first)
            sock, err, sent = first_attempt
            if err:  # not up yet, or refused: the general path, with -C retries
                session.arm(trio.current_time() + self.config.timeout)
                config = self.config
                sock, sent = await connect_and_send(
                    self.endpoint, config.connect_attempts, self._on_retry, first, first_attempt
                )
        finally:
            limiter.release()
        assert sock is not None
        return sock, sent

    async def _exchange(
        self, session: _Session, sock: socket.SocketType, request: memoryview, sent: int
    ) -> Reply:
        """Send the rest of the request (a large one), then read the reply."""
        config = self.config
        step_started = session.connected = trio.current_time()
        if self._log_connections:
            _connection_log.debug("session %d: connected to %s", session.number,
                                  self.endpoint.label)
        if sent < len(request):
            session.step = "sending message"
            session.arm(step_started + config.timeout)
            await send_request(sock, request, sent, self._send_chunk)
            step_started = trio.current_time()
        session.step = "receiving server reply"
        session.arm(step_started + config.timeout)
        reply = await read_reply(sock, config.reply_limit)
        if self._log_replies:
            _reply_log.debug("%s", printable(reply.raw))
        return reply

    def _take(self) -> int | None:
        """The next message's local number, or None when the budget or the time is spent."""
        if self._remaining <= 0 and not self._refill():
            return None
        if self._end != _INF and trio.current_time() >= self._end:
            return None
        self._remaining -= 1
        local = self._taken
        self._taken = local + 1
        return local

    def _more(self) -> bool:
        """Whether another message is left to take (so that a pause is worth its time)."""
        return self._remaining > 0 or self._refill()

    def _refill(self) -> bool:
        """Take the next chunk of a shared budget; False when there is none (or no budget)."""
        if self._budget is None:
            return False
        chunk = self._budget.take()
        if chunk is None:
            return False
        self._taken, self._remaining = chunk
        return True

    async def _wait_for_schedule(self, session: _Session, local: int) -> float | None:
        """--rate: wait for the message's scheduled start (returned); None if the run ends.

        Arrivals are open-loop: the schedule does not wait for replies. A message whose
        time came while every session was busy starts late, counts as behind schedule,
        and its latency still runs from its scheduled start (no coordinated omission).
        """
        scheduled = self._t0 + local * self._spacing
        if scheduled >= self._end:
            return None
        now = trio.current_time()
        if scheduled > now:
            session.disarm()  # waiting for the schedule is no step of the server's
            await self._pause_until(scheduled)
            return None if self._stopped.is_set() else scheduled
        if now - scheduled > BEHIND_TOLERANCE:
            self.stats.behind_schedule += 1
        return scheduled

    async def _pause_until(self, when: float) -> None:
        """Sleep until ``when`` (trio time), or until the run stops or its time is up."""
        with trio.move_on_at(min(when, self._end)):
            await self._stopped.wait()

    def _on_retry(self, exc: ConnectError) -> None:
        _log.warning("%s", exc)

    def _failed(self, exc: DeliveryError, started: float, connected: float | None) -> None:
        self.stats.record(exc.outcome, started, connected, trio.current_time())
        if self.config.keep_going:
            if self._log_failures:
                _failure_log.info("%s", exc)
            return
        if self._failure is None:
            self._failure = str(exc)
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
