"""The report's three charts, each overlaying every run: its own dash, series in colour.

- throughput over time by outcome (messages a second in each interval);
- total latency p50, p90, p99 and max over time;
- the percentile spectrum of connect, reply and total latency on the nines axis.

Time is counted from each run's own start, so that a run before and one after a change
line up. Points sit at the middle of their interval; hover bands give exact values.
Intervals in which no message ended break the latency lines (they have no latency), and
a last interval cut very short is left out of the lines (see _short).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from qmqpsource.report.svg import Axis, Band, Line, plot
from qmqpsource.report.view import LATENCY_KINDS, OUTCOMES, PERCENTILE_KEYS, Interval, RunView

__all__ = ["Chart", "charts"]

TIME_AXIS = Axis("time since the run's start (s)")
NO_TIMELINE = "No timeline in these results (one of schema qmqpsource.result/1 has none)."


@dataclass(frozen=True)
class Chart:
    name: str  # data-chart, for tests and links
    title: str
    svg: str | None  # None: nothing to draw, ``note`` says why
    lines: tuple[Line, ...]  # for the legend
    note: str = ""
    keys: tuple[tuple[str, str], ...] = ()  # (marker shape, meaning) for the legend


def _mid(interval: Interval) -> float:
    return interval.offset_s + interval.duration_s / 2


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _edges(intervals: Sequence[Interval]) -> list[float]:
    """Every interval's start and end, less those a hair from the one before (runs whose
    intervals nearly line up would otherwise make slivers of bands)."""
    hair = min((i.duration_s for i in intervals if i.duration_s > 0), default=1.0) / 20
    edges: list[float] = []
    for edge in sorted({e for i in intervals for e in (i.offset_s, i.offset_s + i.duration_s)}):
        if not edges or edge - edges[-1] > hair:
            edges.append(edge)
    return edges


def _short(timeline: Sequence[Interval]) -> float:
    """Intervals this short or shorter are no point of a line: a last interval cut very
    short holds a few messages, whose rate and percentiles are noise that would set the
    scale. Their bands still give their exact figures."""
    return max((i.duration_s for i in timeline), default=0.0) / 10


def _bands(runs: Sequence[RunView], describe: Callable[[Interval], str]) -> list[Band]:
    """One band per span between interval boundaries of any run; its text, each run's values."""
    edges = _edges([i for run in runs for i in run.timeline or ()])
    starts = [[i.offset_s for i in run.timeline or ()] for run in runs]
    bands = []
    for x0, x1 in pairwise(edges):
        mid = (x0 + x1) / 2
        lines = [f"{_seconds(x0)} to {_seconds(x1)} s"]
        for run, offsets in zip(runs, starts, strict=True):
            at = bisect_right(offsets, mid) - 1
            interval = run.timeline[at] if run.timeline and at >= 0 else None
            if interval is not None and mid < interval.offset_s + interval.duration_s:
                lines.append(f"{run.label}: {describe(interval)}")
        if len(lines) > 1:
            bands.append(Band(x0, x1, "\n".join(lines)))
    return bands


def _throughput(runs: Sequence[RunView]) -> Chart:
    lines = []
    for n, run in enumerate(runs):
        timeline = run.timeline or ()
        short = _short(timeline)
        for outcome in OUTCOMES:
            if outcome == "accepted" or any(i.counts.get(outcome) for i in timeline):
                points = tuple((_mid(i), i.rate(outcome)) if i.duration_s > short else None
                               for i in timeline)
                lines.append(Line(n, outcome, f"{run.label}: {outcome}", points))

    def describe(i: Interval) -> str:
        rates = ", ".join(f"{i.rate(o):.1f} {o}" for o in OUTCOMES)
        return f"{rates} msg/s ({sum(i.counts.values())} messages)"

    return _timed("throughput", "Throughput over time, by outcome",
                  Axis("messages per second (msg/s)"), runs, lines, describe)


def _latency(runs: Sequence[RunView]) -> Chart:
    lines = []
    for n, run in enumerate(runs):
        short = _short(run.timeline or ())
        for key in PERCENTILE_KEYS:
            points = tuple((_mid(i), i.latency_ms[key])
                           if key in i.latency_ms and i.duration_s > short else None
                           for i in run.timeline or ())
            lines.append(Line(n, key, f"{run.label}: {key}", points))

    def describe(i: Interval) -> str:
        if not i.latency_ms:
            return "no messages"
        return ", ".join(f"{k} {v:g}" for k, v in i.latency_ms.items()) + " ms"

    return _timed("latency", "Total latency over time: p50, p90, p99, max",
                  Axis("latency (ms)"), runs, lines, describe)


def _timed(name: str, title: str, y: Axis, runs: Sequence[RunView], lines: list[Line],
           describe: Callable[[Interval], str]) -> Chart:
    timed = [run for run in runs if run.timeline]
    if not timed:
        return Chart(name, title, None, (), NO_TIMELINE)
    note = "" if len(timed) == len(runs) else "Runs without a timeline: " + ", ".join(
        run.label for run in runs if not run.timeline) + "."
    svg = plot(name, title, TIME_AXIS, y, lines, _bands(runs, describe))
    return Chart(name, title, svg, tuple(lines), note)


def _percentile(x: float) -> str:
    """1/(1-p) as the percentile p, with as many decimals as its nines need."""
    return f"{100 - 100 / x:.{max(math.ceil(math.log10(x)) - 1, 1)}f}"


def _spectrum(runs: Sequence[RunView]) -> Chart:
    lines = []
    for n, run in enumerate(runs):
        for kind in LATENCY_KINDS:
            points = run.spectra.get(kind, ())
            if points:
                tips = (*(f"{run.label}: {kind} p{_percentile(x)} = {ms:g} ms"
                          for x, ms in points[:-1]),
                        f"{run.label}: {kind} max = {points[-1][1]:g} ms")
                lines.append(Line(n, kind, f"{run.label}: {kind}", points, tips))
    title = "Latency by percentile: connect, reply, total"
    if not lines:
        return Chart("spectrum", title, None, (), "No latencies: no message ended.")
    svg = plot("spectrum", title, Axis("percentile (%), log scale of 1/(1-p)", nines=True),
               Axis("latency (ms)"), lines)
    return Chart("spectrum", title, svg, tuple(lines))


def charts(runs: Sequence[RunView]) -> list[Chart]:
    return [_throughput(runs), _latency(runs), _spectrum(runs)]
