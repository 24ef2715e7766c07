"""SVG for the report's charts: scales, ticks, axes, lines and tooltips, all text escaped.

A chart is drawn from plain numbers: Lines of (x, y) points in data units (with a marker
per point where each has a tooltip: a dot, or a shape of MARKS), two Axes, hover Bands (a
<title> over a span of x) for exact values, and Rules (a labelled vertical line at an x).
Colours and dashes come from the page's style sheet (classes ``s-SERIES`` and ``r-RUN``),
so that light and dark themes change them without touching the SVG. No script: a
browser, a mail reader or an image viewer shows the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["DASHES", "MARKS", "Axis", "Band", "Line", "Rule", "decade_ticks", "esc", "marker",
           "nice_ticks", "nines_ticks", "plot"]

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 14, 46
Point = tuple[float, float]
# Dash patterns the style sheet has (r-0 ... r-5); more runs reuse them.
DASHES = 6
# Marker shapes a point may have besides the small dot: filled, hollow, square.
MARKS = ("filled", "open", "square")
_MARK_SIZE = 3.5


def esc(text: str) -> str:
    """Text or an attribute value, safe inside HTML and SVG (quotes too)."""
    return escape(text, quote=True)


@dataclass(frozen=True)
class Axis:
    title: str  # with its unit
    nines: bool = False  # x = 1/(1-p) on a log scale, labelled as percentiles
    log: bool = False  # y on a log10 scale, ticks at powers of ten


@dataclass(frozen=True)
class Line:
    run: int  # which run: its dash pattern
    series: str  # what it shows (a class name: its colour)
    label: str  # legend text, e.g. "before.json: p99"
    points: tuple[Point | None, ...]  # None breaks the line (an interval without messages)
    tips: tuple[str, ...] = ()  # with one per point: a marker with that tooltip
    marks: tuple[str, ...] = ()  # with one per point: its marker's shape (MARKS), not a dot


@dataclass(frozen=True)
class Band:
    """A span of x that shows ``text`` as a tooltip (exact values of one interval)."""

    x0: float
    x1: float
    text: str


@dataclass(frozen=True)
class Rule:
    """A vertical line at ``x`` across the plot, labelled (``text``) at its top."""

    x: float
    run: int  # its dash pattern
    text: str


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Ticks 0, step, 2 step, ... up to the first at or above ``top``; step 1, 2 or 5 x 10^n."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10.0 ** math.floor(math.log10(raw))  # a float: an int's ticks near 1e308
    # would not convert to float to be labelled
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    n = math.ceil(top / step - 1e-9)
    # Near the largest float the last tick overflows: the axis ends a tick short.
    return [t for t in (round(i * step, 12) for i in range(n + 1)) if math.isfinite(t)]


def nines_ticks(top: float) -> list[tuple[float, str]]:
    """(x, label) at x = 1, 10, 100, ... (0%, 90%, 99%, ...) up to the first at or above top."""
    ticks = [(1.0, "0")]
    decade = 1
    while 10.0 ** (decade - 1) < top or decade == 1:
        ticks.append((10.0**decade, f"{100 - 100 / 10**decade:.{max(decade - 2, 0)}f}"))
        decade += 1
    return ticks


def decade_ticks(values: Sequence[float]) -> list[float]:
    """Powers of ten from the one at or below the smallest positive value to the one at or
    above the largest: a log axis on which 2 ms and 2 s both show."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return [1.0, 10.0]
    # 10.0**309 overflows and 10.0**-324 is 0: the axis stays within what a float holds.
    low = max(math.floor(math.log10(min(positive)) + 1e-9), -300)
    high = min(max(math.ceil(math.log10(max(positive)) - 1e-9), low + 1), 308)
    return [10.0**k for k in range(low, high + 1)]


def _label(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class _Frame:
    """Data to pixels: x linear from 0, or log10 for the nines; y linear from 0, or log10
    from ``y_bottom`` (values at or below it sit on the x axis)."""

    x_top: float
    y_top: float
    nines: bool
    y_bottom: float = 0.0  # > 0: a log y axis

    def x(self, value: float) -> float:
        if self.nines:
            share = math.log10(max(value, 1.0)) / math.log10(self.x_top)
        else:
            share = value / self.x_top
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        if self.y_bottom > 0:
            share = (math.log10(max(value, self.y_bottom) / self.y_bottom)
                     / math.log10(self.y_top / self.y_bottom))
        else:
            share = value / self.y_top
        return HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)


def _path(frame: _Frame, points: Sequence[Point | None]) -> str:
    parts = []
    pen_up = True
    for point in points:
        if point is None:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{frame.x(point[0]):.1f} {frame.y(point[1]):.1f}")
        pen_up = False
    return "".join(parts)


def _axes(frame: _Frame, x: Axis, y: Axis, x_ticks: Sequence[tuple[float, str]],
          y_ticks: Sequence[float]) -> list[str]:
    out = ['<g class="axes">']
    for value in y_ticks:
        py = frame.y(value)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" '
                   f'y2="{py:.1f}"/><text x="{LEFT - 6}" y="{py + 4:.1f}" '
                   f'text-anchor="end">{esc(_label(value))}</text>')
    for value, label in x_ticks:
        px = frame.x(value)
        out.append(f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" '
                   f'y2="{HEIGHT - BOTTOM}"/><text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                   f'text-anchor="middle">{esc(label)}</text>')
    out.append(f'<text class="title" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" '
               f'text-anchor="middle">{esc(x.title)}</text>')
    out.append(f'<text class="title" transform="translate(16 {(TOP + HEIGHT - BOTTOM) / 2}) '
               f'rotate(-90)" text-anchor="middle">{esc(y.title)}</text></g>')
    return out


def _line(frame: _Frame, line: Line) -> list[str]:
    attributes = (f'class="line s-{esc(line.series)} r-{line.run % DASHES}" '
                  f'data-run="{line.run}" data-series="{esc(line.series)}"')
    out = [f'<path {attributes} d="{_path(frame, line.points)}"><title>{esc(line.label)}'
           '</title></path>']
    if len(line.tips) != len(line.points):
        # A point with no neighbour draws no path (a run of one interval, or one between
        # two stalls): a dot shows it.
        out += [marker("dot", line.series, frame.x(point[0]), frame.y(point[1]))
                for point in _isolated(line.points)]
    else:
        shapes = line.marks if len(line.marks) == len(line.points) else ("dot",) * len(line.tips)
        for point, tip, shape in zip(line.points, line.tips, shapes, strict=True):
            if point is not None:
                out.append(marker(shape, line.series, frame.x(point[0]), frame.y(point[1]),
                                  f"<title>{esc(tip)}</title>"))
    return out


def _isolated(points: Sequence[Point | None]) -> list[Point]:
    """The points of a line that have no point next to them on either side."""
    padded = [None, *points, None]
    return [point for before, point, after in zip(padded, padded[1:], padded[2:], strict=False)
            if point is not None and before is None and after is None]


def marker(shape: str, series: str, x: float, y: float, inner: str = "") -> str:
    """A point's marker at pixel (x, y): a small dot, or one of MARKS; ``inner``: markup
    inside it (its <title>)."""
    css = f'class="mark{" open" if shape == "open" else ""} s-{esc(series)}"'
    if shape == "square":
        side = 2 * _MARK_SIZE * 0.9
        return (f'<rect {css} data-mark="square" x="{x - side / 2:.1f}" y="{y - side / 2:.1f}" '
                f'width="{side:.1f}" height="{side:.1f}">{inner}</rect>')
    if shape in MARKS:
        return (f'<circle {css} data-mark="{shape}" cx="{x:.1f}" cy="{y:.1f}" '
                f'r="{_MARK_SIZE}">{inner}</circle>')
    return f'<circle {css} cx="{x:.1f}" cy="{y:.1f}" r="2">{inner}</circle>'


def _rules(frame: _Frame, rules: Sequence[Rule]) -> list[str]:
    out = []
    for n, rule in enumerate(rules):
        px = frame.x(rule.x)
        # Near the right edge the label goes to the left of its line.
        anchor, dx = ("end", -4) if px > WIDTH - RIGHT - 180 else ("start", 4)
        out.append(f'<g class="rule"><title>{esc(rule.text)}</title>'
                   f'<line class="rule r-{rule.run % DASHES}" x1="{px:.1f}" x2="{px:.1f}" '
                   f'y1="{TOP}" y2="{HEIGHT - BOTTOM}"/><text x="{px + dx:.1f}" '
                   f'y="{TOP + 12 + 14 * n}" text-anchor="{anchor}">{esc(rule.text)}</text></g>')
    return out


def _bands(frame: _Frame, bands: Sequence[Band]) -> list[str]:
    out = ['<g class="bands">']
    for band in bands:
        x0, x1 = frame.x(band.x0), frame.x(band.x1)
        out.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" '
                   f'height="{HEIGHT - TOP - BOTTOM}"><title>{esc(band.text)}</title></rect>')
    out.append("</g>")
    return out


def plot(name: str, title: str, x: Axis, y: Axis, lines: Sequence[Line],
         bands: Sequence[Band] = (), rules: Sequence[Rule] = ()) -> str:
    """One chart as an <svg> element; ``name`` identifies it (data-chart) for tests."""
    points = [p for line in lines for p in line.points if p is not None]
    x_max = max((p[0] for p in points), default=1.0)
    y_ticks = (decade_ticks([p[1] for p in points]) if y.log
               else nice_ticks(max((p[1] for p in points), default=0.0)))
    x_ticks = (nines_ticks(x_max) if x.nines
               else [(v, _label(v)) for v in nice_ticks(x_max, 8)])
    frame = _Frame(x_ticks[-1][0], y_ticks[-1], x.nines, y_ticks[0] if y.log else 0.0)
    out = [f'<svg class="chart" data-chart="{esc(name)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>']
    out += _axes(frame, x, y, x_ticks, y_ticks)
    out += _bands(frame, bands)  # under the lines: a line's own title wins where it is
    out += _rules(frame, rules)
    for line in lines:
        out += _line(frame, line)
    out.append("</svg>")
    return "\n".join(out)
