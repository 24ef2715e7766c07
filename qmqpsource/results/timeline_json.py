"""A result document's timeline (schema qmqpsource.result/2), read and checked.

Every interval is checked on its own (one line names the field at fault), and together
they must add up to the document's counts: a timeline that does not is refused, not
drawn. Nothing is taken that the writer would not write: more than MAX_INTERVALS
intervals (300,000 took 1.5 GB), a step under MIN_INTERVAL, an interval longer than the
step, a time under a microsecond but 0 (TICK) or past any date (``horizon_s``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qmqpsource.errors import ResultError
from qmqpsource.results.histogram import Histogram, HistogramError
from qmqpsource.results.timeline import (
    COUNT_KEYS,
    MAX_INTERVALS,
    MIN_INTERVAL,
    TICK,
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


def _number(obj: Mapping[str, Any], key: str, where: str, horizon_s: float) -> float:
    """A time in seconds, as the writer writes one: 0, or a microsecond up to the horizon."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TimelineError(f"{where}{key}: missing or not a number")
    if not math.isfinite(value) or value < 0:
        raise TimelineError(f"{where}{key}: not a duration")
    if 0 < value < TICK:
        raise TimelineError(f"{where}{key}: {value} is under a microsecond, and not 0")
    if value > horizon_s:
        raise TimelineError(f"{where}{key}: {value} s from started_at reaches past any date")
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


def timeline_from_json(obj: Mapping[str, Any], counts: Mapping[str, int],
                       horizon_s: float = math.inf) -> tuple[float, tuple[Interval, ...]]:
    """``interval_s`` and ``timeline`` of a schema /2 document, checked, and checked to
    add up to the document's ``counts``; (step, intervals). ``horizon_s``: seconds from
    the run's start to the last date there is (no time of the timeline reaches past)."""
    step = _step(obj, horizon_s)
    items = obj.get("timeline")
    if not isinstance(items, list):
        raise TimelineError("timeline: missing or not a list")
    if len(items) > MAX_INTERVALS:
        raise TimelineError(f"timeline: {len(items)} intervals, more than the "
                            f"{MAX_INTERVALS} a result has")
    intervals = []
    sums = zero_counts()
    offset = 0.0
    for n, item in enumerate(items):
        where = f"timeline[{n}]."
        if not isinstance(item, dict):
            raise TimelineError(f"timeline[{n}]: not an object")
        start = _number(item, "offset_s", where, horizon_s - step)
        if start < offset:
            raise TimelineError(f"{where}offset_s: before the interval it follows")
        offset = start
        duration = _number(item, "duration_s", where, horizon_s)
        if duration > step + TICK:  # each rounded to the microsecond on its own
            raise TimelineError(f"{where}duration_s: longer than interval_s")
        interval_counts = _interval_counts(item, where)
        sparse = _interval_sparse(item, interval_counts["attempted"], where)
        add_counts(sums, interval_counts)
        intervals.append(Interval.of(start, duration, interval_counts, sparse))
    if intervals and any(sums[key] != counts[key] for key in COUNT_KEYS):
        raise TimelineError("timeline: its counts do not add up to the result's counts")
    return step, tuple(intervals)


def _step(obj: Mapping[str, Any], horizon_s: float) -> float:
    step = _number(obj, "interval_s", "", horizon_s)
    if step <= 0:
        raise TimelineError("interval_s: not a positive number of seconds")
    if step < MIN_INTERVAL:
        raise TimelineError(f"interval_s: {step} is under the {MIN_INTERVAL} s a step is")
    return step
