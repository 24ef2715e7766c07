"""The load itself: a trio nursery of sessions sharing one message budget.

Each session loops connect, send, reply, close; a CapacityLimiter keeps the
number of connection attempts in flight small (1 by default, as Postfix does,
so that a burst of SYNs does not make the server back off and skew the run).
Every I/O step has a deadline; the first failure cancels every session unless
the run keeps going (-A).
"""

from __future__ import annotations

import errno
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import trio

from qmqpsource.client import read_reply, send_request
from qmqpsource.config import SourceConfig
from qmqpsource.connector import ConnectError, Endpoint, connect
from qmqpsource.gate import Gate
from qmqpsource.outcome import DeliveryError, Outcome
from qmqpsource.protocol import Reply, Status
from qmqpsource.request import RequestFactory
from qmqpsource.stats import RunStats

__all__ = ["RunResult", "Runner", "printable"]

PROG = "qmqp-source"
# How far a step's deadline may lag behind its start (seconds): see Runner._arm.
DEADLINE_SLACK = 0.05
# --rate: a message that starts later than this after its scheduled time is behind.
BEHIND_TOLERANCE = 0.001


def printable(data: bytes) -> str:
    """Server text for one line of output: no raw control bytes reach the terminal."""
    text = data.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


class _Flight:
    """A session's message in flight, where the timeout handler outside the scope sees it."""

    __slots__ = (
        "armed_at", "connected", "doing", "in_flight", "number", "scheduled", "scope", "seq",
        "started",
    )

    def __init__(self, number: int) -> None:
        self.number = number
        self.in_flight = False
        self.seq = 0
        self.scheduled: float | None = None
        self.scope = trio.CancelScope()
        self.armed_at: float | None = None
        self.started = 0.0
        self.connected: float | None = None
        self.doing = "connecting"


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
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.stats = stats
        self._requests = requests
        # The common case: every message is the same bytes, sent from one buffer.
        self._fixed = memoryview(requests.fixed) if requests.fixed is not None else None
        self._taken = 0  # messages this process has started
        self._end: float | None = None  # perf_counter() after which none starts (--duration)
        self._t0 = 0.0  # perf_counter() of the run's start: --rate schedules from it
        self._spacing = 1.0 / config.rate if config.rate else 0.0
        self._stopping = False
        self._stop_event = trio.Event()
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        self._remaining = config.messages
        self._gate = Gate(config.connect_limit)
        self._counter = 0
        self._failure: str | None = None
        self._nursery: trio.Nursery | None = None
        self._random = random.Random()
        self._slack = min(DEADLINE_SLACK, config.timeout / 10)

    async def run(self) -> RunResult:
        started = self._t0 = time.perf_counter()
        if self.config.duration is not None:
            self._end = started + self.config.duration
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # More sessions than messages would only idle: -s 1000000 -m 1 needs one task.
            for number in range(min(self.config.sessions, self.config.messages)):
                nursery.start_soon(self._session, number)
        if self.config.counter:
            self._out.write("\n")
            self._out.flush()
        return RunResult(self.stats, time.perf_counter() - started, self._failure)

    def stop(self, grace: float) -> None:
        """Start no new message; cut what is still in flight after ``grace`` seconds."""
        self._stopping = True
        self._stop_event.set()
        if self._nursery is not None:
            scope = self._nursery.cancel_scope
            scope.deadline = min(scope.deadline, trio.current_time() + grace)

    def abort(self) -> None:
        """End now: in-flight messages are cut, their sockets closed."""
        self._stopping = True
        self._stop_event.set()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is told to stop."""
        with trio.move_on_after(seconds):
            await self._stop_event.wait()

    def _log(self, text: str) -> None:
        self._err.write(f"{PROG}: {text}\n")
        self._err.flush()

    async def _session(self, number: int) -> None:
        flight = _Flight(number)
        try:
            await self._session_loop(flight)
        except trio.Cancelled:
            # The run was stopped (grace over, a second signal, another session's fatal
            # failure) with this message in flight: it has no outcome, but it is counted.
            if flight.in_flight:
                self.stats.cut_off += 1
            raise

    async def _session_loop(self, flight: _Flight) -> None:
        while True:
            # One cancel scope carries the --timeout deadlines of many messages: entering
            # and leaving a scope per message cost more than the rest of the Python path.
            # A deadline that fires ends the scope; the loop then opens a fresh one.
            with trio.CancelScope() as scope:
                flight.scope = scope
                flight.armed_at = None
                await self._messages(flight)
            if not scope.cancelled_caught:
                return  # the session's work is done
            self._failed(
                DeliveryError(Outcome.TIMEOUT, f"timeout while {flight.doing}"),
                flight.started,
                flight.connected,
            )

    async def _messages(self, flight: _Flight) -> None:
        config = self.config
        end = self._end
        while self._remaining > 0 and not self._stopping and self._failure is None:
            if end is not None and time.perf_counter() >= end:
                return
            self._remaining -= 1
            local = self._taken
            self._taken += 1
            flight.seq = config.shard_index + config.shard_count * local
            if self._spacing:
                if not await self._wait_turn(flight, self._t0 + local * self._spacing):
                    return
            else:
                flight.scheduled = None
            await self._deliver(flight)
            if (config.fixed_delay or config.random_delay) and self._remaining > 0:
                self._disarm(flight)  # a chosen pause is no step of the server's
                await self._pause(
                    config.fixed_delay or self._random.uniform(0, config.random_delay)
                )

    async def _wait_turn(self, flight: _Flight, scheduled: float) -> bool:
        """--rate: wait for the message's scheduled start; False if the run ends first.

        Arrivals are open-loop: the schedule does not wait for replies. A message whose
        time came while every session was busy starts late, counts as behind schedule,
        and its latency still runs from its scheduled start (no coordinated omission).
        """
        if self._end is not None and scheduled >= self._end:
            return False
        flight.scheduled = scheduled
        now = time.perf_counter()
        if scheduled > now:
            self._disarm(flight)
            await self._pause(scheduled - now)
            return not self._stopping
        if now - scheduled > BEHIND_TOLERANCE:
            self.stats.behind_schedule += 1
        return True

    def _arm(self, flight: _Flight, now: float) -> None:
        """Give the step that starts now its --timeout, unless a recent deadline covers it.

        Moving a deadline costs, so it moves at most once per slack interval: a step
        gets between timeout - slack and timeout.
        """
        armed_at = flight.armed_at
        if armed_at is None or now - armed_at > self._slack:
            flight.scope.deadline = trio.current_time() + self.config.timeout
            flight.armed_at = now

    def _disarm(self, flight: _Flight) -> None:
        if flight.armed_at is not None:
            flight.scope.deadline = math.inf
            flight.armed_at = None

    def _on_retry(self, exc: ConnectError) -> None:
        self._log(f"warning: {exc}")

    async def _deliver(self, flight: _Flight) -> None:
        """One message: connect, send, read the reply, close. The hot path."""
        config = self.config
        gate = self._gate
        request = self._fixed
        if request is None:
            request = memoryview(self._requests.build(flight.seq))
            extra = len(request) - self.stats.bytes_per_message
        now = time.perf_counter()
        started = flight.started = now if flight.scheduled is None else flight.scheduled
        connected = flight.connected = None
        flight.doing = "connecting"
        if not gate.try_acquire():
            # Time queued behind other sessions' connects is the client's own, not
            # the server's: no deadline runs while waiting for a turn.
            self._disarm(flight)
            await gate.acquire()
            self._arm(flight, time.perf_counter())
        else:
            self._arm(flight, now)
        sock = None
        flight.in_flight = True
        try:
            try:
                sock = await connect(self.endpoint, config.connect_attempts, self._on_retry)
            finally:
                gate.release()
            connected = flight.connected = time.perf_counter()
            if self._fixed is None:
                self.stats.bytes_extra += extra
            if config.verbose > 1:
                self._log(f"session {flight.number}: connected to {self.endpoint.label}")
            flight.doing = "sending message"
            self._arm(flight, connected)
            await send_request(sock, request)
            flight.doing = "receiving server reply"
            self._arm(flight, time.perf_counter())
            reply = await read_reply(sock, config.reply_limit)
            if config.verbose:
                self._err.write(f"<< {printable(reply.raw)}\n")
            if reply.status is not Status.OK:
                raise _reply_error(reply)
        except ConnectError as exc:
            self._failed(_connect_error(exc), started, connected)
        except DeliveryError as exc:
            self._failed(exc, started, connected)
        else:
            self.stats.record(Outcome.ACCEPTED, started, connected, time.perf_counter())
            if config.counter:
                self._counter += 1
                self._out.write(f"{self._counter}\r")
                self._out.flush()
        finally:
            if sock is not None:
                sock.close()
        # Not in the finally: a cancelled message must still look in flight to _session.
        flight.in_flight = False

    def _failed(self, exc: DeliveryError, started: float, connected: float | None) -> None:
        self.stats.record(exc.outcome, started, connected, time.perf_counter())
        if self.config.keep_going:
            if self.config.verbose:
                self._log(f"warning: {exc}")
            return
        if self._failure is None:
            self._failure = str(exc)
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
