"""What the page shows of one run, read from its result document (schema /1 or /2).

The charts need only this small typed view, not the Result model: the per-interval
timeline (none in a /1 result), the percentile spectrum of each latency (from its
``hdr``), and the config, summary and checks as they stand in the JSON. The document is
one that qmqpsource.results.result has validated (``Result.to_dict()``), so missing or
odd values here are simply left out rather than refused. A --find-rate result's
``find_rate`` (its search: checked by results.findrate.find_rate_in as the file is read)
becomes a Search: the answer and each step as the step table has it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qmqpsource.results.histogram import Histogram, HistogramError

__all__ = ["LATENCY_KINDS", "OUTCOMES", "PERCENTILE_KEYS", "Interval", "RunView", "Search",
           "SearchStep", "view_of"]

OUTCOMES = ("accepted", "tempfail", "permfail", "error")
PERCENTILE_KEYS = ("p50", "p90", "p99", "max")
LATENCY_KINDS = ("connect", "reply", "total")
# Points a decade on the nines axis: enough for a smooth curve, few enough to stay small.
_STEPS_PER_DECADE = 12


@dataclass(frozen=True)
class Interval:
    offset_s: float  # its start, from the run's start
    duration_s: float
    counts: Mapping[str, int]  # by outcome (OUTCOMES)
    latency_ms: Mapping[str, float]  # total latency's PERCENTILE_KEYS; empty without messages

    def rate(self, outcome: str) -> float:
        return self.counts.get(outcome, 0) / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True)
class SearchStep:
    """One step of a --find-rate search, as its line of the step table."""

    number: int  # from 1, in the order the search ran them
    rate: float  # asked, msg/s
    achieved: float  # msg/s
    p50_ms: float  # total latency
    p99_ms: float
    failed: int
    verdict: str  # "held", "failed" or "sessions"
    missed: tuple[str, ...]  # the checks that did not hold


@dataclass(frozen=True)
class Search:
    """A --find-rate result's search: its answer (None: no rate held), why it stopped, steps."""

    rate: float | None
    stopped: str
    steps: tuple[SearchStep, ...]


@dataclass(frozen=True)
class RunView:
    label: str  # the file name: the legend's name for this run
    config: Mapping[str, Any]
    document: Mapping[str, Any]  # the whole result, for the summary table
    timeline: tuple[Interval, ...] | None  # None: the result has none (schema /1)
    spectra: Mapping[str, tuple[tuple[float, float], ...]]  # kind -> (1/(1-p), ms)
    checks: tuple[tuple[str, float, bool], ...]
    search: Search | None = None  # None: not a --find-rate result
    unjudged: int = 0  # failed messages that no check judged (checks.unjudged_failures)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(item: Any) -> Interval | None:
    if not isinstance(item, Mapping):
        return None
    offset, duration = _number(item.get("offset_s")), _number(item.get("duration_s"))
    counts = item.get("counts")
    if offset is None or duration is None or not isinstance(counts, Mapping):
        return None
    total = item.get("latency_ms", {})
    total = total.get("total", {}) if isinstance(total, Mapping) else {}
    latency: dict[str, float] = {}
    if isinstance(total, Mapping) and total.get("count", 1):  # no messages: no latency
        latency = _numbers(total, PERCENTILE_KEYS)
    return Interval(offset, duration,
                    {k: int(v) for k, v in _numbers(counts, OUTCOMES).items()}, latency)


def _numbers(obj: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float]:
    out = {}
    for key in keys:
        value = _number(obj.get(key))
        if value is not None:
            out[key] = value
    return out


def _timeline(document: Mapping[str, Any]) -> tuple[Interval, ...] | None:
    items = document.get("timeline")
    if not isinstance(items, list):
        return None
    intervals = [i for i in map(_interval, items) if i is not None]
    return tuple(sorted(intervals, key=lambda i: i.offset_s))


def spectrum(histogram: Histogram) -> tuple[tuple[float, float], ...]:
    """(1/(1-p), ms) from p = 0 up to the last point the count resolves, then the max."""
    count = histogram.count
    if not count:
        return ()
    top = math.log10(count)
    steps = max(int(top * _STEPS_PER_DECADE), 1)
    xs = [10 ** (top * i / steps) for i in range(steps)]
    values = histogram.percentiles([100 - 100 / x for x in xs])
    points = [(x, v / 1000) for x, v in zip(xs, values, strict=True)]
    points.append((float(count), histogram.max / 1000))
    return tuple(points)


def _spectra(document: Mapping[str, Any]) -> dict[str, tuple[tuple[float, float], ...]]:
    latency = document.get("latency_ms")
    out = {}
    for kind in LATENCY_KINDS:
        entry = latency.get(kind) if isinstance(latency, Mapping) else None
        hdr = entry.get("hdr") if isinstance(entry, Mapping) else None
        if isinstance(hdr, str):
            try:
                points = spectrum(Histogram.decode(hdr))
            except HistogramError:
                continue
            if points:
                out[kind] = points
    return out


def _checks(items: Any) -> tuple[tuple[str, float, bool], ...]:
    out = []
    for item in items if isinstance(items, Sequence) else ():
        if isinstance(item, Mapping) and (value := _number(item.get("value"))) is not None:
            out.append((str(item.get("check", "")), value, item.get("ok") is True))
    return tuple(out)


def _step(number: int, item: Any) -> SearchStep | None:
    if not isinstance(item, Mapping):
        return None
    rate, achieved = _number(item.get("rate")), _number(item.get("achieved"))
    if rate is None or achieved is None:
        return None
    verdict = item.get("verdict", "held" if item.get("ok") is True else "failed")
    checks = item.get("checks")
    missed = tuple(str(c.get("check", "")) for c in checks if isinstance(c, Mapping)
                   and c.get("ok") is False) if isinstance(checks, list) else ()
    return SearchStep(number, rate, achieved, _number(item.get("p50_ms")) or 0.0,
                      _number(item.get("p99_ms")) or 0.0, int(_number(item.get("failed")) or 0),
                      str(verdict), missed)


def _search(value: Any) -> Search | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("steps"), list):
        return None
    steps = (_step(n, item) for n, item in enumerate(value["steps"], 1))
    return Search(_number(value.get("rate")), str(value.get("stopped", "")),
                  tuple(step for step in steps if step is not None))


def view_of(document: Mapping[str, Any], label: str, *, unjudged: int = 0) -> RunView:
    """The view of one result document; ``label`` names the run in legends and tables;
    ``unjudged``: its failed messages that no check judged (they fail it, as a run's
    exit status has it)."""
    config = document.get("config")
    return RunView(
        label=label,
        config=config if isinstance(config, Mapping) else {},
        document=document,
        timeline=_timeline(document),
        spectra=_spectra(document),
        checks=_checks(document.get("checks", [])),
        search=_search(document.get("find_rate")),
        unjudged=unjudged,
    )
