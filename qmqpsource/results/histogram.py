"""Latency histograms of integer microseconds, in HdrHistogram's layout.

The counts live in a plain list laid out exactly as an ``HdrHistogram(1, HIGHEST, 3)``
(the ``hdrhistogram`` package) lays out its counts array, so that recording is one
index computation and one list increment (``hdrh``'s own ``record_value`` costs several
microseconds of Python per call), while encoding, decoding and merging stay HdrHistogram's
own: the ``hdr`` strings are the standard compressed base64 form that every HdrHistogram
implementation reads. Percentiles, mean and max follow ``hdrh``'s definitions.

hdrh is imported only to encode or decode, so that short runs do not pay for it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from qmqpsource.errors import ResultError

__all__ = [
    "COUNTS_LEN",
    "HIGHEST",
    "LOWEST",
    "MAX_TOTAL",
    "SIGNIFICANT_FIGURES",
    "Histogram",
    "HistogramError",
    "counts_index",
    "encode_sparse",
    "percentiles_of",
    "used_length",
]

LOWEST = 1
# One day in microseconds: far beyond any per-message time the timeouts allow; the list
# actually covers up to 2**37 - 1 us (about 38 h), and larger values are clamped.
HIGHEST = 86_400 * 1_000_000
SIGNIFICANT_FIGURES = 3
# The layout that LOWEST = 1 and 3 significant figures give (unit magnitude 0):
# 2048 sub-buckets, the lower half of each bucket after the first shared with the one before.
SUB_BUCKET_HALF_COUNT_MAGNITUDE = 10
SUB_BUCKET_MASK = (1 << (SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1)) - 1  # 2047
BUCKET_SHIFT = SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1  # 11


def _bucket_count(highest: int) -> int:
    smallest_untrackable = SUB_BUCKET_MASK + 1
    buckets = 1
    while smallest_untrackable <= highest:
        smallest_untrackable <<= 1
        buckets += 1
    return buckets


COUNTS_LEN = (_bucket_count(HIGHEST) + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE
# The most values a histogram holds: HdrHistogram's encoding zigzags each count into 64
# bits, so that a count from 2**62 on does not come back as it went, and hdrh's encoder
# corrupts its heap (free(): invalid pointer) on a total past 2**63. Refused before
# hdrh sees them, on the way in and out (and by a merge: result.py).
MAX_TOTAL = 2**62 - 1


class HistogramError(ResultError):
    """An ``hdr`` string that is not a histogram this module can merge exactly."""


def counts_index(value: int) -> int:
    """Where ``value`` (>= 0) is counted; RunStats.record inlines this same arithmetic."""
    bucket = (value | SUB_BUCKET_MASK).bit_length() - BUCKET_SHIFT
    return (bucket << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + (value >> bucket)


def _bucket_of_index(index: int) -> int:
    return max((index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) - 1, 0)


def lowest_equivalent(index: int) -> int:
    """The smallest value counted at ``index``."""
    half = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE
    bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) - 1
    sub_bucket = (index & (half - 1)) + half
    if bucket < 0:
        sub_bucket -= half
        bucket = 0
    return sub_bucket << bucket


def highest_equivalent(index: int) -> int:
    """The largest value counted at ``index``."""
    return lowest_equivalent(index) + (1 << _bucket_of_index(index)) - 1


# Most of the list is empty at the top (latencies are far below a day): _used() skips
# empty blocks a comparison in C at a time, where a Python loop took ~0.7 ms a histogram.
_BLOCK = 1024
_ZERO_BLOCK = [0] * _BLOCK


def _used(counts: list[int]) -> int:
    """One past the last nonzero count; 0 if there is none."""
    top = len(counts)
    while top >= _BLOCK and counts[top - _BLOCK:top] == _ZERO_BLOCK:
        top -= _BLOCK
    while top and not counts[top - 1]:
        top -= 1
    return top


used_length = _used  # for the timeline's interval deltas

# HdrHistogram's V2 encoding (see Histogram.encode): its cookies, word size 8.
_PAYLOAD_COOKIE = 0x1C849303 | 0x10
_COMPRESSED_COOKIE = 0x1C849304 | 0x10


def _varint(value: int, out: bytearray) -> None:
    """LEB128 as HdrHistogram's ZigZag encoding writes a (zigzagged) 64-bit value: the
    9th byte, if any, holds 8 bits."""
    for _ in range(8):
        if value <= 0x7F:
            out.append(value)
            return
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_sparse(sparse: Mapping[int, int]) -> str:
    """The ``hdr`` string of the histogram whose nonzero counts by index are ``sparse``:
    the same text as Histogram.encode (tested), without hdrh's dense copy (~1 ms each:
    a timeline of thousands of intervals took seconds)."""
    import base64
    import struct
    import zlib

    _refuse_total(sum(sparse.values()))
    out = bytearray()
    last = -1
    for index in sorted(sparse):
        zeros = index - last - 1
        if zeros:
            _varint(2 * zeros - 1, out)  # a run of zeros: zigzag(-zeros)
        _varint(sparse[index] << 1, out)  # zigzag(count)
        last = index
    header = struct.pack(">IIIIqqd", _PAYLOAD_COOKIE, len(out), 0, SIGNIFICANT_FIGURES,
                         LOWEST, HIGHEST, 1.0)
    payload = zlib.compress(header + bytes(out))
    wrapped = struct.pack(">II", _COMPRESSED_COOKIE, len(payload)) + payload
    return base64.b64encode(wrapped).decode("ascii")


def _refuse_total(total: int) -> None:
    if total > MAX_TOTAL:
        raise HistogramError(f"histogram holds {total} values, more than {MAX_TOTAL}")


class Histogram:
    """Counts of integer-microsecond values; ``counts`` is the live list (see the module doc)."""

    __slots__ = ("counts",)

    def __init__(self, counts: Iterable[int] | None = None) -> None:
        self.counts: list[int] = [0] * COUNTS_LEN if counts is None else list(counts)
        if len(self.counts) != COUNTS_LEN:
            raise ValueError(f"a histogram has {COUNTS_LEN} counts, not {len(self.counts)}")

    def record(self, value: int, count: int = 1) -> None:
        """Count ``value``, clamped to 0..HIGHEST (the checked path; RunStats inlines its own)."""
        self.counts[counts_index(min(max(value, 0), HIGHEST))] += count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, max={self.max})"

    def copy(self) -> Histogram:
        return Histogram(self.counts)

    def __add__(self, other: Histogram) -> Histogram:
        """The exact merge: counts add index by index (only up to the last one in use:
        the rest are zeros, and a Python-level add of all of them took ~2 ms)."""
        top = max(_used(self.counts), _used(other.counts))
        counts = list(map(int.__add__, self.counts[:top], other.counts[:top]))
        counts += [0] * (COUNTS_LEN - top)
        return Histogram._adopt(counts)

    @classmethod
    def _adopt(cls, counts: list[int]) -> Histogram:
        """A histogram that takes ``counts`` (a fresh list of the right length) as it is."""
        histogram = cls.__new__(cls)
        histogram.counts = counts
        return histogram

    def __sub__(self, earlier: Histogram) -> Histogram:
        """What was recorded since the copy ``earlier`` was taken (for interval reports)."""
        return Histogram(map(int.__sub__, self.counts, earlier.counts))

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def max(self) -> int:
        """hdrh's max: the highest value equivalent to the largest one recorded (0 if empty)."""
        used = _used(self.counts)
        return highest_equivalent(used - 1) if used else 0

    @property
    def min(self) -> int:
        for index, n in enumerate(self.counts):
            if n:
                return lowest_equivalent(index)
        return 0

    @property
    def mean(self) -> float:
        """hdrh's mean: each count taken at the middle of its bucket's range."""
        total = 0
        weighted = 0
        for index, n in enumerate(self.counts[:_used(self.counts)]):
            if n:
                total += n
                weighted += n * (lowest_equivalent(index) + ((1 << _bucket_of_index(index)) >> 1))
        return weighted / total if total else 0.0

    def percentiles(self, percentiles: Sequence[float]) -> list[int]:
        """hdrh's get_value_at_percentile for each of ``percentiles`` (0..100), in one pass."""
        return percentiles_of(list(accumulate(self.counts[:_used(self.counts)])), percentiles)

    def percentile(self, p: float) -> int:
        return self.percentiles([p])[0]

    def encode(self) -> str:
        """HdrHistogram's standard compressed base64 form (V2, "HISTF...")."""
        from hdrh.histogram import HdrHistogram

        total = self.count
        _refuse_total(total)  # before hdrh sees the counts
        hdr: Any = HdrHistogram(LOWEST, HIGHEST, SIGNIFICANT_FIGURES)
        hdr.counts[:COUNTS_LEN] = self.counts
        if total:
            # encode() sizes its output from these, as record_value would have left them.
            hdr.total_count = total
            hdr.min_value = self.min
            hdr.max_value = self.max
        return bytes(hdr.encode()).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Histogram:
        """Read an ``hdr`` string; refuse layouts that would not merge exactly with ours."""
        from hdrh.histogram import HdrHistogram

        try:
            hdr: Any = HdrHistogram.decode(text.encode("ascii"))
        except Exception as exc:  # hdrh raises anything from TypeError to zlib.error
            raise HistogramError(f"not an HdrHistogram: {exc or type(exc).__name__}") from None
        if (
            hdr.unit_magnitude != 0
            or hdr.sub_bucket_half_count_magnitude != SUB_BUCKET_HALF_COUNT_MAGNITUDE
        ):
            raise HistogramError(
                "histogram layout differs (lowest trackable value "
                f"{hdr.lowest_trackable_value}, {hdr.significant_figures} significant figures)"
            )
        counts: list[int] = hdr.counts[:]  # a ctypes array's slice is a list of ints, in C
        top = _used(counts)
        if top > COUNTS_LEN:
            raise HistogramError("histogram holds values beyond its range")
        del counts[top:]
        if counts and min(counts) < 0:
            raise HistogramError("histogram has negative counts")
        _refuse_total(sum(counts))
        counts += [0] * (COUNTS_LEN - top)
        return cls._adopt(counts)


def percentiles_of(cumulative: Sequence[int], percentiles: Sequence[float],
                   indexes: Sequence[int] | None = None) -> list[int]:
    """hdrh's get_value_at_percentile for each of ``percentiles``, given the cumulative
    counts of the used buckets; ``indexes``: each position's bucket index when they are
    not 0, 1, 2, ... (a sparse histogram)."""
    total = cumulative[-1] if cumulative else 0
    if not total:
        return [0 for _ in percentiles]
    out = []
    for p in percentiles:
        position = bisect_left(cumulative, max(int(min(p, 100.0) * total / 100 + 0.5), 1))
        index = indexes[position] if indexes is not None else position
        out.append(highest_equivalent(index) if p else lowest_equivalent(index))
    return out
