"""A run's timeline: per-interval counts and total latency, recorded, written, read, merged.

Recording costs one comparison per message (RunStats.record): when a message ends past
the open interval, the interval is closed with what the run's counts and total-latency
histogram gained since the last close, and the interval the message ended in opens. So a
message counts in the interval in which it ended, and nothing per interval is kept
between closes but a copy of the histogram's used part. Closed intervals keep their
latencies sparse (index -> count): a dense histogram is 28,672 counts, a second of load
a few hundred distinct ones. Intervals in which nothing ended are kept as zeros, so that
a stall shows; they cost nothing until written.

Reading a timeline from a result document is timeline_json.py's.

A merge puts each interval into the merged interval in which its wall-clock start falls,
the merged run starting at the earliest start, on the largest step of the inputs: runs on
several hosts started together line up, and nothing is split (histograms add exactly).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, compress
from operator import ne  # not int.__ne__: a slot wrapper's call costs twice as much
from typing import Any, Protocol

from qmqpsource.results.histogram import (
    COUNTS_LEN,
    Histogram,
    encode_sparse,
    highest_equivalent,
    percentiles_of,
    used_length,
)
from qmqpsource.results.outcome import Outcome

__all__ = [
    "COUNT_KEYS",
    "DEFAULT_INTERVAL",
    "MAX_INTERVALS",
    "MIN_INTERVAL",
    "TICK",
    "TIMELINE_PERCENTILES",
    "Interval",
    "LatencyCounts",
    "Tally",
    "TimelineRecorder",
    "add_counts",
    "check_interval",
    "empty_hdr",
    "merge_timelines",
    "sparse_of",
    "zero_counts",
]

# The timeline's step when --interval is not given.
DEFAULT_INTERVAL = 1.0
# A shorter step would make more intervals than messages, and files of hundreds of MB.
MIN_INTERVAL = 0.01
# The keys of an interval's counts: those of the result's top-level counts.
COUNT_KEYS = ("attempted", "accepted", "tempfail", "permfail", "error")
# Percentile -> key in an interval's latency_ms.total.
TIMELINE_PERCENTILES = {50.0: "p50", 90.0: "p90", 99.0: "p99"}
# At most this many intervals in a timeline (a day at 1 s has 86,400, and would make a
# file of tens of MB): beyond, the step widens to a whole multiple of itself.
MAX_INTERVALS = 10_000
# Times are written to the microsecond: a positive one below it is none the writer
# wrote, and a reader refuses it (5e-324 s made rates of infinity). A last interval
# shorter than this (clock rounding) is no interval.
TICK = 1e-6
_TINY = TICK

# Counts compared at a time when an interval closes (see TimelineRecorder._gained).
_DIFF_BLOCK = 64

Sparse = dict[int, int]  # histogram index -> count, only the nonzero ones


class LatencyCounts(Mapping[int, int]):
    """A histogram's nonzero counts by index (a Mapping), packed in two arrays: ~10 bytes
    a count, where a dict took ~70 (an hour at 10,000 messages a second keeps 3,600
    intervals of ~2,000 counts each)."""

    __slots__ = ("hits", "indexes")

    def __init__(self, sparse: Mapping[int, int] | None = None) -> None:
        keys = sorted(sparse) if sparse else []
        self.indexes = array("H", keys)  # ascending; COUNTS_LEN < 65,536
        self.hits = array("q", [sparse[k] for k in keys] if sparse else [])

    def __getitem__(self, index: int) -> int:
        at = bisect_left(self.indexes, index)
        if at < len(self.indexes) and self.indexes[at] == index:
            return self.hits[at]
        raise KeyError(index)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indexes)

    def __len__(self) -> int:
        return len(self.indexes)

    def pairs(self) -> Iterator[tuple[int, int]]:
        """(index, count), ascending: items() without a lookup each."""
        return zip(self.indexes, self.hits, strict=True)

    def __repr__(self) -> str:
        return f"LatencyCounts({dict(self.pairs())})"


def _packed(sparse: Mapping[int, int]) -> LatencyCounts:
    return sparse if isinstance(sparse, LatencyCounts) else LatencyCounts(sparse)


def check_interval(value: float, name: str = "interval") -> float:
    """``value`` if it is a step the timeline takes; else values.ValueProblem, naming ``name``."""
    from qmqpsource.values import ValueProblem, seconds

    seconds(name, value)
    if value < MIN_INTERVAL:
        raise ValueProblem(f"{name} must be at least {MIN_INTERVAL} seconds, not {value}")
    return value


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


@dataclass(frozen=True)
class Interval:
    """One step of a timeline: the messages that ended in it.

    ``offset_s`` is its start, in seconds from the run's ``started_at``; ``duration_s``
    its length (the step; the last may be shorter). ``counts`` has the keys of the
    result's counts. ``sparse`` holds the total-latency histogram's nonzero counts by
    index (see histogram.py), packed (LatencyCounts); ``total`` is that histogram,
    ``latency_ms`` its figures. Interval.of makes one from counts in a dict.
    """

    offset_s: float
    duration_s: float
    counts: Mapping[str, int]
    sparse: LatencyCounts

    def __post_init__(self) -> None:
        if not isinstance(self.sparse, LatencyCounts):  # a dict, from an untyped caller
            object.__setattr__(self, "sparse", LatencyCounts(self.sparse))

    @classmethod
    def of(
        cls, offset_s: float, duration_s: float, counts: Mapping[str, int],
        sparse: Mapping[int, int],
    ) -> Interval:
        """An interval from counts by index in any Mapping (a dict, say)."""
        return cls(offset_s, duration_s, counts, _packed(sparse))

    @property
    def attempted(self) -> int:
        return self.counts["attempted"]

    @property
    def total(self) -> Histogram:
        """The total-latency histogram of the interval (integer microseconds)."""
        counts = [0] * COUNTS_LEN
        for index, n in self.sparse.pairs():
            counts[index] = n
        return Histogram(counts)

    def percentiles(self, percentiles: Sequence[float]) -> list[int]:
        """Histogram.percentiles, from the sparse counts (microseconds)."""
        return percentiles_of(list(accumulate(self.sparse.hits)), percentiles,
                              self.sparse.indexes)

    @property
    def max_us(self) -> int:
        return highest_equivalent(self.sparse.indexes[-1]) if self.sparse else 0

    @property
    def latency_ms(self) -> dict[str, dict[str, Any]]:
        """``{"total": {"count", "p50", "p90", "p99", "max", "hdr"}}`` as in the JSON."""
        return {"total": _latency_dict(self)}

    def to_dict(self) -> dict[str, Any]:
        """The interval as a JSON object (schema qmqpsource.result/2's timeline entry)."""
        return {
            "offset_s": round(self.offset_s, 6),
            "duration_s": round(self.duration_s, 6),
            "counts": {key: self.counts[key] for key in COUNT_KEYS},
            "latency_ms": self.latency_ms,
        }


def _ms(us: float) -> float:
    return round(us / 1000, 3)


_EMPTY_HDR: list[str] = []  # the empty histogram's hdr, made once


def empty_hdr() -> str:
    """The hdr of an empty interval: made once (a stall makes many)."""
    if not _EMPTY_HDR:
        _EMPTY_HDR.append(encode_sparse({}))
    return _EMPTY_HDR[0]


def _encode(interval: Interval) -> str:
    return encode_sparse(dict(interval.sparse.pairs())) if interval.sparse else empty_hdr()


def _latency_dict(interval: Interval) -> dict[str, Any]:
    values = interval.percentiles(list(TIMELINE_PERCENTILES))
    out: dict[str, Any] = {"count": sum(interval.sparse.hits)}
    out.update((k, _ms(v)) for k, v in zip(TIMELINE_PERCENTILES.values(), values, strict=True))
    out["max"] = _ms(interval.max_us)
    out["hdr"] = _encode(interval)
    return out


def sparse_of(histogram: Histogram) -> Sparse:
    """A histogram's nonzero counts by index."""
    counts = histogram.counts
    return {i: counts[i] for i in compress(range(len(counts)), counts)}


def _widened(
    closed: Mapping[int, tuple[Mapping[str, int], Mapping[int, int]]], step: float, n: int
) -> tuple[dict[int, tuple[dict[str, int], Sparse]], float, int]:
    """(closed, step, n) again, with at most MAX_INTERVALS steps of a multiple of ``step``."""
    factor = math.ceil(n / MAX_INTERVALS)
    wide: dict[int, tuple[dict[str, int], Sparse]] = {}
    for k, (counts, sparse) in sorted(closed.items()):
        into_counts, into_sparse = wide.setdefault(k // factor, (zero_counts(), {}))
        add_counts(into_counts, counts)
        add_sparse(into_sparse, sparse)
    return wide, step * factor, math.ceil(n / factor)


def _intervals(
    closed: Mapping[int, tuple[Mapping[str, int], Mapping[int, int]]], step: float, span: float
) -> tuple[float, tuple[Interval, ...]]:
    """(step, intervals 0..n-1) from the nonempty ones by index (the others zero); n
    covers ``span`` seconds and every nonempty one; the last lasts what is left of
    ``span``. Times are rounded to the microsecond, as the JSON has them."""
    last = max(closed, default=0)
    n = max(last + 1, math.ceil((span - _TINY) / step), 1)
    if n > MAX_INTERVALS:
        closed, step, n = _widened(closed, step, n)
    out = []
    for k in range(n):
        counts, sparse = closed.get(k) or (zero_counts(), {})
        duration = step if k < n - 1 else min(max(span - k * step, 0.0), step)
        out.append(Interval.of(round(k * step, 6), round(duration, 6), counts, sparse))
    return step, tuple(out)


class Tally(Protocol):
    """What a TimelineRecorder reads of its run's stats (RunStats, which owns the
    recorder: this, not RunStats, keeps the import one way)."""

    @property
    def attempted(self) -> int: ...
    @property
    def accepted(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def failure_counts(self) -> Mapping[Outcome, int]: ...
    @property
    def total(self) -> Histogram: ...


class TimelineRecorder:
    """The timeline of one RunStats while it runs (see the module doc)."""

    __slots__ = ("_closed", "_index", "_mark_counts", "_mark_total", "_stats", "origin", "step")

    def __init__(self, stats: Tally, step: float) -> None:
        self._stats = stats
        self.step = step
        self.origin = 0.0  # clock time of the run's start (the runner's clock)
        self._index = 0  # the open interval
        self._closed: dict[int, tuple[dict[str, int], Mapping[int, int]]] = {}
        # What the stats held at the last close: counts, and the histogram's used part.
        self._mark_counts = zero_counts()
        self._mark_total: list[int] = []

    def start(self, origin: float) -> float:
        """The run starts at ``origin``; the end of the first interval."""
        self.origin = origin
        return origin + self.step

    def roll(self, now: float) -> float:
        """A message ends at ``now``, past the open interval: close it, open the one
        ``now`` falls in; the end of that one."""
        self._close()
        step, origin = self.step, self.origin
        index = max(int((now - origin) // step), self._index + 1)
        while origin + (index + 1) * step <= now:  # float rounding of the division
            index += 1
        self._index = index
        return origin + (index + 1) * step

    def _counts_now(self) -> dict[str, int]:
        stats = self._stats
        failures = stats.failure_counts
        tempfail = failures.get(Outcome.TEMPFAIL, 0)
        permfail = failures.get(Outcome.PERMFAIL, 0)
        return {
            "attempted": stats.attempted,
            "accepted": stats.accepted,
            "tempfail": tempfail,
            "permfail": permfail,
            "error": stats.failed - tempfail - permfail,
        }

    def _gained(self) -> tuple[dict[str, int], Sparse, list[int], dict[str, int]]:
        """What the open interval holds: counts, sparse histogram; and the new marks."""
        counts_now = self._counts_now()
        counts = {k: counts_now[k] - self._mark_counts[k] for k in COUNT_KEYS}
        total = self._stats.total.counts
        mark = self._mark_total
        top = max(used_length(total), len(mark))
        now = total[:top]
        padded = mark + [0] * (top - len(mark))
        sparse: Sparse = {}
        # Blocks compared in C first: a second of load changes a few hundred counts of
        # thousands, and a Python-level look at each count took most of the time.
        for start in range(0, top, _DIFF_BLOCK):
            end = start + _DIFF_BLOCK
            if now[start:end] != padded[start:end]:
                for i in compress(range(start, min(end, top)),
                                  map(ne, now[start:end], padded[start:end])):
                    sparse[i] = now[i] - padded[i]
        return counts, sparse, now, counts_now

    def _close(self) -> None:
        counts, sparse, self._mark_total, self._mark_counts = self._gained()
        if counts["attempted"] or sparse:
            self._closed[self._index] = (counts, LatencyCounts(sparse))

    def intervals(self, end: float) -> tuple[float, tuple[Interval, ...]]:
        """(step, the timeline up to ``end`` (clock time), the open interval as it
        stands); the step is wider than ``self.step`` past MAX_INTERVALS steps."""
        closed = dict(self._closed)
        counts, sparse, _, _ = self._gained()
        if counts["attempted"] or sparse:
            closed[self._index] = (counts, sparse)
        return _intervals(closed, self.step, end - self.origin)


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key in COUNT_KEYS:
        into[key] += counts[key]


def add_sparse(into: Sparse, sparse: Mapping[int, int]) -> None:
    pairs = sparse.pairs() if isinstance(sparse, LatencyCounts) else sparse.items()
    for index, n in pairs:
        into[index] = into.get(index, 0) + n


def merge_timelines(
    parts: Iterable[tuple[datetime, float, Sequence[Interval]]], start: datetime
) -> tuple[float, tuple[Interval, ...]]:
    """Several runs' timelines (started_at, interval_s, timeline) as one: (step, timeline).

    The merge starts at ``start`` (the earliest) and ends where the last timeline does
    (so that a merge of one is that one). Its step is
    the largest of the inputs'; each interval goes, whole, into the merged interval in
    which its wall-clock start falls. If any input has no timeline (a schema /1 result),
    neither has the merge: its intervals would not add up to its counts.
    """
    parts = list(parts)
    step = max((interval_s for _, interval_s, _ in parts), default=DEFAULT_INTERVAL)
    if not parts or any(not timeline for _, _, timeline in parts):
        return step, ()
    merged: dict[int, tuple[dict[str, int], Sparse]] = {}
    span = 0.0
    for started_at, _, timeline in parts:
        shift = (started_at - start).total_seconds()
        span = max(span, shift + timeline[-1].offset_s + timeline[-1].duration_s)
        for interval in timeline:
            if not interval.attempted and not interval.sparse:
                continue
            k = max(math.floor((shift + interval.offset_s) / step + 1e-9), 0)
            counts, sparse = merged.setdefault(k, (zero_counts(), {}))
            add_counts(counts, interval.counts)
            add_sparse(sparse, interval.sparse)
    return _intervals(merged, step, span)
