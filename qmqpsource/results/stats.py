"""Per-message outcomes and timings of one run.

``record`` runs once per message on the hot path, so it allocates nothing: an accepted
message is one comparison (is it the first in a new interval of the timeline?), three
list increments and an integer add (the index arithmetic of ``histogram.counts_index``
is inlined). Everything else (failures, never-connected messages, out-of-range times,
the timeline's interval closes: timeline.py) takes the slower general path.

Per message: the outcome; the connect time (from the start of the attempt, queueing for
the connect limiter included, to the connection up); the reply time (from the connection
up, which is when the first byte is sent, to the reply parsed); the total time. Recipients
and bytes are counted for every message whose connection came up, as the whole request
goes out right after (a send that fails half-way still counts whole).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import trio

from qmqpsource.results.histogram import (
    BUCKET_SHIFT,
    SUB_BUCKET_HALF_COUNT_MAGNITUDE,
    SUB_BUCKET_MASK,
    Histogram,
)
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.timeline import DEFAULT_INTERVAL, Interval, TimelineRecorder

__all__ = ["LATENCIES", "RunStats"]

# The latency histograms, in report order.
LATENCIES = ("connect", "reply", "total")

_ACCEPTED = Outcome.ACCEPTED
_REPLIED = frozenset({Outcome.ACCEPTED, Outcome.TEMPFAIL, Outcome.PERMFAIL})
# Inlined layout constants (see histogram.counts_index).
_MASK = SUB_BUCKET_MASK
_SHIFT = BUCKET_SHIFT
_HALF = SUB_BUCKET_HALF_COUNT_MAGNITUDE
_INF = float("inf")


def _clock() -> float:
    """Now, on the clock the runner gives record(): trio's in a trio run."""
    return trio.current_time() if trio.lowlevel.in_trio_run() else time.perf_counter()


class RunStats:
    """Counts by outcome and latency histograms (integer microseconds) of one run."""

    __slots__ = (
        "_connect",
        "_failures",
        "_perf_end",
        "_perf_start",
        "_reply",
        "_tick",
        "_timeline",
        "_timeline_end",
        "_total",
        "accepted",
        "behind_schedule",
        "bytes_extra",
        "bytes_per_message",
        "connect",
        "cut_off",
        "failed",
        "recipients_per_message",
        "reply",
        "started_at",
        "total",
        "unconnected",
    )

    def __init__(
        self, recipients_per_message: int, bytes_per_message: int,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.recipients_per_message = recipients_per_message
        self.bytes_per_message = bytes_per_message
        self.accepted = 0
        self.failed = 0
        self.unconnected = 0  # messages whose connection never came up
        self.behind_schedule = 0  # --rate: messages that started late, every session busy
        # Requests that vary per message (--unique-message-id, -N) differ in size from
        # bytes_per_message by a few digits: the runner adds the difference here.
        self.bytes_extra = 0
        # Messages in flight when the run was stopped: no outcome, so not in attempted.
        self.cut_off = 0
        self._failures: Counter[Outcome] = Counter()
        self.connect = Histogram()
        self.reply = Histogram()
        self.total = Histogram()
        # The live lists, one attribute lookup away on the hot path.
        self._connect = self.connect.counts
        self._reply = self.reply.counts
        self._total = self.total.counts
        self.started_at: datetime | None = None
        self._perf_start = 0.0
        self._perf_end: float | None = None
        # The timeline (timeline.py): record() rolls it when a message ends at or past
        # _tick, the open interval's end; none is open before begin().
        self._timeline = TimelineRecorder(self, interval)
        self._tick = _INF
        self._timeline_end = 0.0

    @property
    def interval(self) -> float:
        """The timeline's step, in seconds."""
        return self._timeline.step

    def begin(self, now: float | None = None) -> None:
        """The run starts now: wall-clock time for reports, perf_counter for elapsed, and
        ``now`` on the clock of record()'s times for the timeline (default: trio's in a
        trio run, else perf_counter)."""
        self.started_at = datetime.now(UTC)
        self._perf_start = time.perf_counter()
        self._perf_end = None
        self._tick = self._timeline.start(_clock() if now is None else now)

    @property
    def origin(self) -> float:
        """When the run began, on the clock of record()'s times (trio's in a trio run)."""
        return self._timeline.origin

    def finish(self, now: float | None = None) -> None:
        """The run ended now (a run that never began gets elapsed 0); ``now`` as begin's.
        Outside a trio run, the timeline ends at its start plus the elapsed time."""
        if self.started_at is None:
            self.begin(now)
        self._perf_end = time.perf_counter()
        if now is None:
            in_trio = trio.lowlevel.in_trio_run()
            now = trio.current_time() if in_trio else self._timeline.origin + self.elapsed
        self._timeline_end = now

    def timeline(self) -> tuple[float, tuple[Interval, ...]]:
        """(step, the run's intervals up to finish(), in order): see timeline.py."""
        return self._timeline.intervals(self._timeline_end)

    @property
    def elapsed(self) -> float:
        """Seconds from begin() to finish(), or to now while running."""
        if self.started_at is None:
            return 0.0
        end = self._perf_end if self._perf_end is not None else time.perf_counter()
        return end - self._perf_start

    def record(
        self, outcome: Outcome, started: float, connected: float | None, done: float
    ) -> None:
        """One message ended; times are on the runner's clock (connected None: never)."""
        if done >= self._tick:  # the first to end in a new interval: close the last one
            self._tick = self._timeline.roll(done)
        if outcome is _ACCEPTED and connected is not None:
            # histogram.counts_index, inlined: a value under 2048 us (most, on a LAN) is
            # its own index. perf_counter is monotonic, so no value is negative. Total
            # goes first: the largest of the three, so an out-of-range time raises before
            # anything was counted, and the general path clamps it.
            v = int((done - started) * 1e6)
            if v <= _MASK:
                self._total[v] += 1
            else:
                b = v.bit_length() - _SHIFT
                try:
                    self._total[(b << _HALF) + (v >> b)] += 1
                except IndexError:
                    self._record(outcome, started, connected, done)
                    return
            v = int((connected - started) * 1e6)
            if v <= _MASK:
                self._connect[v] += 1
            else:
                b = v.bit_length() - _SHIFT
                self._connect[(b << _HALF) + (v >> b)] += 1
            v = int((done - connected) * 1e6)
            if v <= _MASK:
                self._reply[v] += 1
            else:
                b = v.bit_length() - _SHIFT
                self._reply[(b << _HALF) + (v >> b)] += 1
            self.accepted += 1
        else:
            self._record(outcome, started, connected, done)

    def _record(
        self, outcome: Outcome, started: float, connected: float | None, done: float
    ) -> None:
        """The general path: any outcome, any times (clamped into the histograms' range)."""
        self.total.record(int((done - started) * 1e6))
        if connected is None:
            self.unconnected += 1
        else:
            self.connect.record(int((connected - started) * 1e6))
            if outcome in _REPLIED:
                self.reply.record(int((done - connected) * 1e6))
        if outcome is _ACCEPTED:
            self.accepted += 1
        else:
            self.failed += 1
            self._failures[outcome] += 1

    @property
    def counts(self) -> Counter[Outcome]:
        """Messages by outcome (a fresh Counter)."""
        counts = Counter(self._failures)
        if self.accepted:
            counts[_ACCEPTED] = self.accepted
        return counts

    @property
    def failure_counts(self) -> Counter[Outcome]:
        """Failed messages by outcome (the live Counter: do not change it)."""
        return self._failures

    @property
    def attempted(self) -> int:
        return self.accepted + self.failed

    @property
    def connected(self) -> int:
        return self.attempted - self.unconnected

    @property
    def recipients(self) -> int:
        return self.connected * self.recipients_per_message

    @property
    def bytes_sent(self) -> int:
        return self.connected * self.bytes_per_message + self.bytes_extra

    def histograms(self) -> dict[str, Histogram]:
        """The live latency histograms by name (see LATENCIES)."""
        return {"connect": self.connect, "reply": self.reply, "total": self.total}
