"""The fields of a result document (schema qmqpsource.result/1 or /2), read and checked.

Each function takes the parsed JSON and gives plain values, or raises ResultError with
one line naming the field at fault; result.from_dict makes a Result of them. A reader
takes no more than the writer writes: counts within int64 (a histogram's within
histogram.MAX_TOTAL), times to the microsecond within the calendar, no NaN or
Infinity (parse_json), at most MAX_INTERVALS intervals (timeline_json.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from qmqpsource.errors import ResultError
from qmqpsource.results.checks import Verdict
from qmqpsource.results.figures import RUN_STATUSES, RunStatus
from qmqpsource.results.histogram import Histogram, HistogramError
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import LATENCIES
from qmqpsource.results.timeline import TICK, Interval
from qmqpsource.results.timeline_json import timeline_from_json
from qmqpsource.values import MAX_COUNT

__all__ = [
    "ERROR_CAUSES",
    "count",
    "get",
    "latencies",
    "outcomes",
    "parse_json",
    "status",
    "timeline",
    "times",
    "verdicts",
]

ERROR_CAUSES = tuple(o.value for o in Outcome if o.is_error)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json(text: str) -> Any:
    """JSON as a result holds it: NaN, Infinity and numbers beyond a double (1e400, read
    as infinity) are refused, as RFC 8259 has it; Python's json takes them all."""
    import json

    obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite,
                     object_pairs_hook=_one_of_each)
    # A \ud800 escape alone is no character: a page or summary would fail to write it.
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ResultError("a \\u escape of half a character (a lone surrogate): "
                              "not text") from None
    return obj


def _one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: of two, a reader would take either."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ResultError(f"the key {twice!r} is given twice in one object")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond a double")
    return value


def get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    if key not in obj:
        raise ResultError(f"missing {where}{key}")
    value = obj[key]
    # bool is an int in Python, never in this schema.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ResultError(f"{where}{key}: wrong type")
    if not isinstance(value, kind):
        raise ResultError(f"{where}{key}: wrong type")
    return value


def count(obj: Mapping[str, Any], key: str, where: str = "") -> int:
    value: int = get(obj, key, int, where)
    if value < 0:
        raise ResultError(f"{where}{key}: negative")
    if value > MAX_COUNT:
        raise ResultError(f"{where}{key}: more than {MAX_COUNT}")
    return value


def times(obj: Mapping[str, Any]) -> tuple[datetime, float]:
    """started_at and elapsed_s, checked: an end that no date can hold is refused too."""
    started_text = get(obj, "started_at", str)
    try:
        started_at = datetime.fromisoformat(started_text)
    except ValueError:
        raise ResultError(f"started_at: not an ISO 8601 time: {started_text!r}") from None
    if started_at.tzinfo is None:
        raise ResultError("started_at: no UTC offset")
    elapsed = float(get(obj, "elapsed_s", (int, float)))
    if not math.isfinite(elapsed) or elapsed < 0:
        raise ResultError("elapsed_s: not a duration")
    if 0 < elapsed < TICK:
        raise ResultError(f"elapsed_s: {elapsed} is under a microsecond, and not 0")
    try:
        started_at + timedelta(seconds=elapsed)  # the end: a merge needs it
    except OverflowError:
        raise ResultError("started_at plus elapsed_s is out of range") from None
    return started_at, elapsed


def outcomes(counts: Mapping[str, Any], errors: Mapping[str, Any]) -> dict[Outcome, int]:
    """Every Outcome's count, from ``counts`` and ``errors`` (by cause), which must agree."""
    out = {o: count(counts, o.value, "counts.")
           for o in (Outcome.ACCEPTED, Outcome.TEMPFAIL, Outcome.PERMFAIL)}
    for cause in errors:
        if cause not in ERROR_CAUSES:
            raise ResultError(f"errors: unknown cause {cause!r}")
    for cause in ERROR_CAUSES:
        out[Outcome(cause)] = count(errors, cause, "errors.") if cause in errors else 0
    if count(counts, "error", "counts.") != sum(n for o, n in out.items() if o.is_error):
        raise ResultError("counts.error is not the sum of errors")
    if count(counts, "attempted", "counts.") != sum(out.values()):
        raise ResultError("counts.attempted is not the sum of the outcomes")
    return out


def latencies(latency_ms: Mapping[str, Any], attempted: int) -> dict[str, Histogram]:
    """Each latency's histogram, from its ``hdr``; reply is optional (schema /1)."""
    out: dict[str, Histogram] = {}
    for name in LATENCIES:
        if name not in latency_ms:
            if name == "reply":  # optional in the schema; only connect and total are required
                continue
            raise ResultError(f"missing latency_ms.{name}")
        entry = get(latency_ms, name, dict, "latency_ms.")
        try:
            histogram = Histogram.decode(get(entry, "hdr", str, f"latency_ms.{name}."))
        except HistogramError as exc:
            raise ResultError(f"latency_ms.{name}.hdr: {exc}") from None
        if "count" in entry and count(entry, "count", f"latency_ms.{name}.") != histogram.count:
            raise ResultError(f"latency_ms.{name}: count differs from its histogram")
        out[name] = histogram
    if out["total"].count != attempted:
        raise ResultError("latency_ms.total.count is not counts.attempted")
    return out


def timeline(obj: Mapping[str, Any], counts: Mapping[str, int],
             started_at: datetime) -> tuple[float, tuple[Interval, ...]]:
    """interval_s and timeline (timeline_json.py), none reaching past any date."""
    horizon = (_END_OF_TIME - started_at).total_seconds()
    return timeline_from_json(obj, counts, horizon)


def status(obj: Mapping[str, Any]) -> RunStatus:
    text = get(obj, "status", str) if "status" in obj else "completed"
    for known in RUN_STATUSES:
        if text == known:
            return known
    raise ResultError(f"status: unknown {text!r}")


def verdicts(items: Any) -> tuple[Verdict, ...]:
    """The checks a result was judged by (none in a result of before --check)."""
    if not isinstance(items, list):
        raise ResultError("checks: wrong type")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ResultError("checks: wrong type")
        value = get(item, "value", (int, float), "checks.")
        out.append(Verdict(get(item, "check", str, "checks."), float(value),
                           get(item, "ok", bool, "checks.")))
    return tuple(out)
