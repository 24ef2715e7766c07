"""A result document's timeline (schema qmqpsource.result/2), read and checked.

Every interval is checked on its own (one line names the field at fault), and together
they must add up to the document's counts: a timeline that does not is refused, not
drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qmqpsource.errors import ResultError
from qmqpsource.results.histogram import Histogram, HistogramError
from qmqpsource.results.timeline import (
    COUNT_KEYS,
    Interval,
    Sparse,
    add_counts,
    empty_hdr,
    sparse_of,
    zero_counts,
)

__all__ = ["TimelineError", "timeline_from_json"]


class TimelineError(ResultError):
    """A timeline in a result document that cannot be read; ``str()`` is one line."""


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TimelineError(f"{where}{key}: missing or not a number")
    if not math.isfinite(value) or value < 0:
        raise TimelineError(f"{where}{key}: not a duration")
    return float(value)


def _interval_counts(obj: Mapping[str, Any], where: str) -> dict[str, int]:
    counts = obj.get("counts")
    if not isinstance(counts, dict):
        raise TimelineError(f"{where}counts: missing or not an object")
    out = {}
    for key in COUNT_KEYS:
        value = counts.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TimelineError(f"{where}counts.{key}: missing or not a count")
        out[key] = value
    if out["attempted"] != sum(out[key] for key in COUNT_KEYS[1:]):
        raise TimelineError(f"{where}counts.attempted is not the sum of the outcomes")
    return out


def _interval_sparse(obj: Mapping[str, Any], attempted: int, where: str) -> Sparse:
    latency = obj.get("latency_ms")
    total = latency.get("total") if isinstance(latency, dict) else None
    hdr = total.get("hdr") if isinstance(total, dict) else None
    if not isinstance(hdr, str):
        raise TimelineError(f"{where}latency_ms.total.hdr: missing or not a string")
    if hdr == empty_hdr():  # a stall's many empty intervals: no decode each
        sparse: Sparse = {}
    else:
        try:
            sparse = sparse_of(Histogram.decode(hdr))
        except HistogramError as exc:
            raise TimelineError(f"{where}latency_ms.total.hdr: {exc}") from None
    if sum(sparse.values()) != attempted:
        raise TimelineError(f"{where}latency_ms.total: count is not counts.attempted")
    return sparse


def timeline_from_json(obj: Mapping[str, Any], counts: Mapping[str, int]) -> tuple[
    float, tuple[Interval, ...]
]:
    """``interval_s`` and ``timeline`` of a schema /2 document, checked, and checked to
    add up to the document's ``counts``; (step, intervals)."""
    step = _number(obj, "interval_s", "")
    if step <= 0:
        raise TimelineError("interval_s: not a positive number of seconds")
    items = obj.get("timeline")
    if not isinstance(items, list):
        raise TimelineError("timeline: missing or not a list")
    intervals = []
    sums = zero_counts()
    offset = 0.0
    for n, item in enumerate(items):
        where = f"timeline[{n}]."
        if not isinstance(item, dict):
            raise TimelineError(f"timeline[{n}]: not an object")
        start = _number(item, "offset_s", where)
        if start < offset:
            raise TimelineError(f"{where}offset_s: before the interval it follows")
        offset = start
        interval_counts = _interval_counts(item, where)
        sparse = _interval_sparse(item, interval_counts["attempted"], where)
        add_counts(sums, interval_counts)
        intervals.append(Interval.of(start, _number(item, "duration_s", where),
                                     interval_counts, sparse))
    if intervals and any(sums[key] != counts[key] for key in COUNT_KEYS):
        raise TimelineError("timeline: its counts do not add up to the result's counts")
    return step, tuple(intervals)
