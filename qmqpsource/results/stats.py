"""Per-message outcomes and timings of one run.

``record`` runs once per message on the hot path, so it allocates nothing: an accepted
message is three list increments and an integer add (the index arithmetic of
``histogram.counts_index`` is inlined). Everything else (failures, never-connected
messages, out-of-range times) takes the slower general path.

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

from qmqpsource.results.histogram import (
    BUCKET_SHIFT,
    SUB_BUCKET_HALF_COUNT_MAGNITUDE,
    SUB_BUCKET_MASK,
    Histogram,
)
from qmqpsource.results.outcome import Outcome

__all__ = ["LATENCIES", "RunStats"]

# The latency histograms, in report order.
LATENCIES = ("connect", "reply", "total")

_ACCEPTED = Outcome.ACCEPTED
_REPLIED = frozenset({Outcome.ACCEPTED, Outcome.TEMPFAIL, Outcome.PERMFAIL})
# Inlined layout constants (see histogram.counts_index).
_MASK = SUB_BUCKET_MASK
_SHIFT = BUCKET_SHIFT
_HALF = SUB_BUCKET_HALF_COUNT_MAGNITUDE


class RunStats:
    """Counts by outcome and latency histograms (integer microseconds) of one run."""

    __slots__ = (
        "_connect",
        "_failures",
        "_perf_end",
        "_perf_start",
        "_reply",
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

    def __init__(self, recipients_per_message: int, bytes_per_message: int) -> None:
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

    def begin(self) -> None:
        """The run starts now: wall-clock time for reports, perf_counter for elapsed."""
        self.started_at = datetime.now(UTC)
        self._perf_start = time.perf_counter()
        self._perf_end = None

    def finish(self) -> None:
        """The run ended now (a run that never began gets elapsed 0)."""
        if self.started_at is None:
            self.begin()
        self._perf_end = time.perf_counter()

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
        """One message ended; times are time.perf_counter() values (connected None: never)."""
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
