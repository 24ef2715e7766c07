"""The load itself: sessions sharing one message budget, multiplexed by the engine.

Each session loops connect, send, reply, close; a gate keeps the number of
connection attempts in flight small (1 by default, as Postfix does, so that a
burst of SYNs does not make the server back off and skew the run). Every I/O
step has a deadline; the first failure closes every session unless the run keeps
going (-A). Sessions are generators of waits (waits.py) that the engine drives
from one trio task: a trio task per session cost more than the rest of the
per-message path put together.
"""

from __future__ import annotations

import errno
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from qmqpsource.client import read_reply, send_request
from qmqpsource.config import SourceConfig
from qmqpsource.connector import ConnectError, Endpoint, connect_steps
from qmqpsource.engine import Engine, Gate, StepTimeout, Task
from qmqpsource.outcome import DeliveryError, Outcome
from qmqpsource.protocol import Reply, Status
from qmqpsource.request import RequestFactory
from qmqpsource.stats import RunStats
from qmqpsource.waits import GATE, PAUSE, SLEEP, Steps

__all__ = ["RunResult", "Runner", "printable"]

PROG = "qmqp-source"
# --rate: a message that starts later than this after its scheduled time is behind.
BEHIND_TOLERANCE = 0.001

_perf_counter = time.perf_counter
_ACCEPTED = Outcome.ACCEPTED
_K = ord("K")


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
    """One session: its engine task, and whether a message is in flight (for a stop)."""

    __slots__ = ("in_flight", "number", "scheduled", "task")

    def __init__(self, number: int) -> None:
        self.number = number
        self.task: Task | None = None
        self.in_flight = False
        self.scheduled: float | None = None


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
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        self._remaining = config.messages
        self._engine = Engine()
        self._gate = Gate(config.connect_limit)
        self._counter = 0
        self._failure: str | None = None
        self._random = random.Random()

    async def run(self) -> RunResult:
        started = self._t0 = time.perf_counter()
        if self.config.duration is not None:
            self._end = started + self.config.duration
        # More sessions than messages would only idle: -s 1000000 -m 1 needs one.
        for number in range(min(self.config.sessions, self.config.messages)):
            flight = _Flight(number)
            flight.task = self._engine.spawn(self._session(flight))
        await self._engine.run()
        if self.config.counter:
            self._out.write("\n")
            self._out.flush()
        return RunResult(self.stats, time.perf_counter() - started, self._failure)

    def stop(self, grace: float) -> None:
        """Start no new message; cut what is still in flight after ``grace`` seconds."""
        self._stopping = True
        self._engine.wake_pauses()
        self._engine.cancel_at(time.perf_counter() + grace)

    def abort(self) -> None:
        """End now: in-flight messages are cut, their sockets closed."""
        self._stopping = True
        self._engine.cancel()

    def _log(self, text: str) -> None:
        self._err.write(f"{PROG}: {text}\n")
        self._err.flush()

    def _session(self, flight: _Flight) -> Steps[None]:
        try:
            yield from self._messages(flight)
        except GeneratorExit:
            # The run was stopped (grace over, a second signal, another session's fatal
            # failure) with this message in flight: it has no outcome, but it is counted.
            if flight.in_flight:
                self.stats.cut_off += 1
            raise

    def _messages(self, flight: _Flight) -> Steps[None]:
        config = self.config
        end = self._end
        delays = config.fixed_delay or config.random_delay
        while self._remaining > 0 and not self._stopping and self._failure is None:
            if end is not None and time.perf_counter() >= end:
                return
            self._remaining -= 1
            local = self._taken
            self._taken += 1
            seq = config.shard_index + config.shard_count * local
            if self._spacing:
                if not (yield from self._wait_turn(flight, self._t0 + local * self._spacing)):
                    return
            else:
                flight.scheduled = None
            yield from self._deliver(flight, seq)
            if delays and self._remaining > 0:
                pause = config.fixed_delay or self._random.uniform(0, config.random_delay)
                yield PAUSE, time.perf_counter() + pause  # no step of the server's: no deadline

    def _wait_turn(self, flight: _Flight, scheduled: float) -> Steps[bool]:
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
            yield PAUSE, scheduled
            return not self._stopping
        if now - scheduled > BEHIND_TOLERANCE:
            self.stats.behind_schedule += 1
        return True

    def _on_retry(self, exc: ConnectError) -> None:
        self._log(f"warning: {exc}")

    def _deliver(self, flight: _Flight, seq: int) -> Steps[None]:
        """One message: connect, send, read the reply, close. The hot path.

        Each line here runs per message: what a timeout handler needs is in locals (a
        StepTimeout is thrown in at the yield, into this frame), not in attributes.
        """
        config = self.config
        task = flight.task
        assert task is not None
        timeout = config.timeout
        gate = self._gate
        request = self._fixed
        extra = 0
        if request is None:
            request = memoryview(self._requests.build(seq))
            extra = len(request) - self.stats.bytes_per_message
        now = _perf_counter()
        started = now if flight.scheduled is None else flight.scheduled
        connected = None
        doing = "connecting"
        if not gate.try_acquire():
            # Time queued behind other sessions' connects is the client's own, not
            # the server's: no deadline runs while waiting for a turn.
            yield GATE, gate
            now = _perf_counter()
        task.deadline = now + timeout
        sock = None
        unconnected = False
        flight.in_flight = True
        try:
            try:
                sock, sent, connected = yield from connect_steps(
                    self.endpoint, config.connect_attempts, self._on_retry, request
                )
            finally:
                self._engine.release(gate)
            if extra:
                self.stats.bytes_extra += extra
            if config.verbose > 1:
                self._log(f"session {flight.number}: connected to {self.endpoint.label}")
            if sent < len(request):
                doing = "sending message"
                task.deadline = _perf_counter() + timeout
                yield from send_request(sock, request, sent)
            doing = "receiving server reply"
            task.deadline = _perf_counter() + timeout
            reply = yield from read_reply(sock, config.reply_limit)
            task.deadline = math.inf
            if config.verbose:
                self._err.write(f"<< {printable(reply.raw)}\n")
            if reply.raw[0] != _K:
                raise _reply_error(reply)
        except StepTimeout:
            self._failed(
                DeliveryError(Outcome.TIMEOUT, f"timeout while {doing}"), started, connected
            )
        except ConnectError as exc:
            task.deadline = math.inf
            self._failed(_connect_error(exc), started, connected)
            unconnected = True
        except DeliveryError as exc:
            task.deadline = math.inf
            self._failed(exc, started, connected)
        else:
            self.stats.record(_ACCEPTED, started, connected, _perf_counter())
            if config.counter:
                self._counter += 1
                self._out.write(f"{self._counter}\r")
                self._out.flush()
        finally:
            if sock is not None:
                self._engine.close_socket(sock)
        # Not in the finally: a cut message must still look in flight to _session.
        flight.in_flight = False
        if unconnected:
            # A refused loopback or UNIX connect fails without ever waiting: let the
            # engine go round (signals, other sessions) before the next attempt.
            yield SLEEP, 0.0

    def _failed(self, exc: DeliveryError, started: float, connected: float | None) -> None:
        self.stats.record(exc.outcome, started, connected, time.perf_counter())
        if self.config.keep_going:
            if self.config.verbose:
                self._log(f"warning: {exc}")
            return
        if self._failure is None:
            self._failure = str(exc)
            self._engine.cancel()
