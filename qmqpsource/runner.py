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
from typing import TYPE_CHECKING, TextIO

from qmqpsource.client import RECV_SIZE, read_reply, receive_error, send_request
from qmqpsource.config import SourceConfig
from qmqpsource.connector import ConnectError, Endpoint, begin_connect, connect_steps
from qmqpsource.engine import Engine, Gate, StepTimeout, Task
from qmqpsource.outcome import DeliveryError, Outcome
from qmqpsource.protocol import Reply, Status, whole_reply
from qmqpsource.request import RequestFactory
from qmqpsource.stats import RunStats
from qmqpsource.waits import GATE, PAUSE, READABLE, SLEEP, Steps

if TYPE_CHECKING:
    from qmqpsource.budget import MessageBudget

__all__ = ["RunResult", "Runner", "printable"]

PROG = "qmqp-source"
# --rate: a message that starts later than this after its scheduled time is behind.
BEHIND_TOLERANCE = 0.001
# Large messages: what all sessions together may hand the kernel in one round of sends.
# A session sends at most its part of this (but SEND_TURN_MIN at least) before waiting
# for room again. Unlimited, -s 500 with 4 MiB messages put 2 GiB into socket buffers,
# past the kernel's TCP memory pressure mark, and ran at half the speed it does now;
# -s 10 with 1 MiB messages still sends each whole.
SEND_BUDGET = 64 * 1024 * 1024
SEND_TURN_MIN = 128 * 1024

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

    __slots__ = ("in_flight", "number", "task")

    def __init__(self, number: int) -> None:
        self.number = number
        self.task: Task | None = None
        self.in_flight = False


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
        budget: MessageBudget | None = None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.stats = stats
        self._requests = requests
        # The common case: every message is the same bytes, sent from one buffer.
        self._fixed = memoryview(requests.fixed) if requests.fixed is not None else None
        self._taken = 0  # the next message's number in this process's share (from 0)
        self._end: float | None = None  # perf_counter() after which none starts (--duration)
        self._t0 = 0.0  # perf_counter() of the run's start: --rate schedules from it
        self._spacing = 1.0 / config.rate if config.rate else 0.0
        self._send_turn = max(SEND_TURN_MIN, SEND_BUDGET // config.sessions)
        self._stopping = False
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        # Messages left to start; with a budget shared with other processes, those left
        # of the chunk taken last (local numbers from _taken on).
        self._budget = budget
        self._remaining = 0 if budget is not None else config.messages
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
        """The session's messages, one after another: connect, send, reply, close.

        The hot path, one loop with nothing per message that a plain run does not
        need: no generator but the one wait for the reply, and what a timeout handler
        needs kept in locals (a StepTimeout is thrown in at a yield, into this frame).
        Options (--rate, delays, -v, -c, per-message requests) take branches off it.
        """
        config = self.config
        stats = self.stats
        record = stats.record
        endpoint = self.endpoint
        gate = self._gate
        engine = self._engine
        task = flight.task
        assert task is not None
        timeout = config.timeout
        reply_limit = config.reply_limit
        fixed = self._fixed
        turn = self._send_turn
        end = self._end
        delays = config.fixed_delay or config.random_delay
        spacing = self._spacing
        scheduled = 0.0
        while not self._stopping and self._failure is None:
            if self._remaining <= 0 and not self._refill():
                return
            if end is not None and _perf_counter() >= end:
                return
            self._remaining -= 1
            local = self._taken
            self._taken = local + 1
            if spacing:
                scheduled = self._t0 + local * spacing
                if not (yield from self._wait_turn(scheduled)):
                    return
            request = fixed
            extra = 0
            if request is None:
                request = memoryview(
                    self._requests.build(config.shard_index + config.shard_count * local)
                )
                extra = len(request) - stats.bytes_per_message
            now = _perf_counter()
            # --rate: latency runs from the scheduled start (no coordinated omission).
            started = scheduled if spacing else now
            connected = None
            doing = "connecting"
            if not gate.try_acquire():
                # Time queued behind other sessions' connects is the client's own, not
                # the server's: no deadline runs while waiting for a turn.
                yield GATE, gate
                now = _perf_counter()
            sock = None
            unconnected = False
            flight.in_flight = True
            try:
                try:
                    first = request if len(request) <= turn else request[:turn]
                    begun = begin_connect(endpoint, first)
                    sock, err, sent, up = begun
                    if err:  # not up yet, or refused: the general path, with -C retries
                        sock = None
                        task.deadline = now + timeout
                        sock, sent, up = yield from connect_steps(
                            endpoint, config.connect_attempts, self._on_retry, first, begun
                        )
                finally:
                    engine.release_connect(gate)
                assert sock is not None
                connected = up
                if extra:
                    stats.bytes_extra += extra
                if config.verbose > 1:
                    self._log(f"session {flight.number}: connected to {endpoint.label}")
                if sent < len(request):
                    doing = "sending message"
                    task.deadline = _perf_counter() + timeout
                    yield from send_request(sock, request, sent, turn)
                    up = _perf_counter()
                doing = "receiving server reply"
                task.deadline = up + timeout
                # The common case inline: one wait, one recv, the whole reply.
                yield READABLE, sock.fileno()
                try:
                    data: bytes | None = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    data = None
                except OSError as exc:
                    raise receive_error(exc) from None
                reply = whole_reply(data, reply_limit) if data else None
                if reply is None:
                    reply = yield from read_reply(sock, reply_limit, data)
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
                record(_ACCEPTED, started, connected, _perf_counter())
                if config.counter:
                    self._counter += 1
                    self._out.write(f"{self._counter}\r")
                    self._out.flush()
            finally:
                if sock is not None:
                    sock.close()  # which also takes it out of the engine's epoll set
            # Not in the finally: a cut message must still look in flight to _session.
            flight.in_flight = False
            if unconnected:
                # A refused loopback or UNIX connect fails without ever waiting: let the
                # engine go round (signals, other sessions) before the next attempt.
                yield SLEEP, 0.0
            if delays and (self._remaining > 0 or self._refill()):
                pause = config.fixed_delay or self._random.uniform(0, config.random_delay)
                yield PAUSE, _perf_counter() + pause  # no step of the server's: no deadline

    def _refill(self) -> bool:
        """Take the next chunk of a shared budget; False when there is none (or no budget)."""
        if self._budget is None:
            return False
        chunk = self._budget.take()
        if chunk is None:
            return False
        self._taken, self._remaining = chunk
        return True

    def _wait_turn(self, scheduled: float) -> Steps[bool]:
        """--rate: wait for the message's scheduled start; False if the run ends first.

        Arrivals are open-loop: the schedule does not wait for replies. A message whose
        time came while every session was busy starts late, counts as behind schedule,
        and its latency still runs from its scheduled start (no coordinated omission).
        """
        if self._end is not None and scheduled >= self._end:
            return False
        now = time.perf_counter()
        if scheduled > now:
            yield PAUSE, scheduled
            return not self._stopping
        if now - scheduled > BEHIND_TOLERANCE:
            self.stats.behind_schedule += 1
        return True

    def _on_retry(self, exc: ConnectError) -> None:
        self._log(f"warning: {exc}")

    def _failed(self, exc: DeliveryError, started: float, connected: float | None) -> None:
        self.stats.record(exc.outcome, started, connected, time.perf_counter())
        if self.config.keep_going:
            if self.config.verbose:
                self._log(f"warning: {exc}")
            return
        if self._failure is None:
            self._failure = str(exc)
            self._engine.cancel()
