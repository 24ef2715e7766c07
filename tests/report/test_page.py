"""The report page without a browser: scales, the view of a run, escaping, size, policy."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from qmqpsource.report.charts import NO_TIMELINE
from qmqpsource.report.page import render
from qmqpsource.report.svg import nice_ticks, nines_ticks
from qmqpsource.report.view import spectrum, view_of
from qmqpsource.results.histogram import Histogram
from tests.report.synthetic import document


def page_of(*docs: tuple[dict[str, Any], str]) -> str:
    return render([view_of(doc, label) for doc, label in docs], generator="qmqp-report test")


@pytest.mark.parametrize(("top", "ticks"), [
    (0.0, [0.0, 1.0]),
    (7.3, [0.0, 2.0, 4.0, 6.0, 8.0]),
    (812.0, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]),
    (0.0042, [0.0, 0.001, 0.002, 0.003, 0.004, 0.005]),
    (600.0, [0.0, 200.0, 400.0, 600.0]),
])
def test_nice_ticks_start_at_zero_and_reach_the_top(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top, 5) == ticks


def test_nines_ticks_are_percentiles_up_to_the_count() -> None:
    assert nines_ticks(1000) == [(1.0, "0"), (10.0, "90"), (100.0, "99"), (1000.0, "99.9")]
    assert [label for _, label in nines_ticks(1001)][-1] == "99.99"
    assert nines_ticks(1) == [(1.0, "0"), (10.0, "90")]


def test_spectrum_climbs_from_the_minimum_to_the_max() -> None:
    histogram = Histogram()
    for us in range(1, 10_001):  # 1 us .. 10 ms, evenly
        histogram.record(us)
    points = spectrum(histogram)
    xs, ms = [x for x, _ in points], [y for _, y in points]
    assert xs[0] == 1.0 and xs[-1] == 10_000 and xs == sorted(xs)
    assert ms == sorted(ms)
    assert ms[0] == 0.001 and ms[-1] == pytest.approx(10.0, rel=1e-3)  # min, then max
    # x = 1/(1-p): at x = 10 (p90) the value is 9 ms, to the histogram's precision.
    at_10 = next(y for x, y in points if x >= 10)
    assert at_10 == pytest.approx(9.0, rel=0.01)


def test_a_run_of_schema_1_has_no_timeline_but_its_spectrum() -> None:
    doc = document(3)
    del doc["timeline"], doc["interval_s"]
    view = view_of(doc, "old.json")
    assert view.timeline is None
    assert sorted(view.spectra) == ["connect", "reply", "total"]
    page = page_of((doc, "old.json"))
    assert page.count(NO_TIMELINE) == 2  # throughput and latency over time
    assert re.findall(r'data-chart="(\w+)"', page) == ["spectrum"]


def test_runs_without_timeline_beside_one_with_are_named() -> None:
    old = document(3)
    del old["timeline"]
    page = page_of((document(3), "new.json"), (old, "old.json"))
    assert page.count("Runs without a timeline: old.json.") == 2
    assert re.findall(r'data-chart="(\w+)"', page) == ["throughput", "latency", "spectrum"]


def test_every_run_gets_its_lines_and_failures_their_own() -> None:
    page = page_of((document(5), "a.json"), (document(5, failing=True), "b.json"))
    lines = re.findall(r'<path class="line s-(\w+) r-(\d)"', page)
    assert lines == [
        ("accepted", "0"), ("accepted", "1"), ("tempfail", "1"), ("permfail", "1"),
        ("error", "1"),
        *((key, run) for run in "01" for key in ("p50", "p90", "p99", "max")),
        *((kind, run) for run in "01" for kind in ("connect", "reply", "total")),
    ]
    # Each interval's exact values, for both runs, in a hover band.
    assert re.search(r"<title>2 to 3 s\na\.json: \d{3}\.0 accepted, 0\.0 tempfail, .*"
                     r"\nb\.json: ", page)


HOSTILE = '<script>alert(1)</script>"\'&.json'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_a_hostile_result_adds_no_markup() -> None:
    doc = document(2)
    doc["config"]["subject"] = "</style><script>alert(2)</script>"
    doc["config"]['<img src=x onerror="alert(3)">'] = ["<iframe>", {"a": "<b>"}]
    doc["checks"] = [{"check": "<svg onload=alert(4)>", "value": 1.0, "ok": True}]
    page = page_of((doc, HOSTILE))
    parser = Tags()
    parser.feed(page)
    assert parser.tags == {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "strong",
        "main",
        "section", "aside", "figure", "figcaption", "svg", "g", "line", "text", "rect",
        "path", "circle", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
    assert not {a for a in parser.attributes if a.startswith("on")}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;.json" in page
    assert "&lt;/style&gt;&lt;script&gt;alert(2)" in page
    assert "&lt;svg onload=alert(4)&gt;" in page


def test_the_policy_allows_the_style_sheet_and_nothing_else() -> None:
    page = page_of((document(2), "a.json"))
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy == (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
                      "form-action 'none'")
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", page)  # only the SVG namespace


def test_config_rows_that_differ_between_runs_are_marked() -> None:
    before, after = document(2), document(2)
    after["config"]["sessions"] = 40
    page = page_of((before, "before.json"), (after, "after.json"))
    assert re.findall(r'<tr class="differs"><th>(\w+)</th>', page) == ["sessions"]


def test_a_run_without_a_count_says_so_in_its_config() -> None:
    timed, counted = document(2), document(2)
    timed["config"]["messages"] = 2**63 - 1  # -m of a --duration run: none
    counted["config"]["messages"] = 500
    page = page_of((timed, "timed.json"), (counted, "counted.json"))
    config = page[page.index("<h2>Config</h2>"):]
    row = re.search(r"<th>messages</th>(.*?)</tr>", config)
    assert row is not None
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row[1]) == ["no limit", "500"]


def test_a_ten_minute_run_makes_a_page_under_3_mb() -> None:
    # Every outcome in every interval: the most lines and the longest tooltips.
    ten_minutes = document(600, rate=50, failing=True)
    page = page_of((ten_minutes, "before.json"), (document(600, rate=50, seed=2), "after.json"))
    size = len(page.encode())
    assert size < 3_000_000, size
    assert len(page_of((ten_minutes, "run.json")).encode()) < size


def test_intervals_that_nearly_line_up_share_their_hover_bands() -> None:
    before, after = document(3), document(3, seed=2)
    for n, interval in enumerate(after["timeline"]):  # another host's clock, a hair later
        interval["offset_s"] = n * 1.0004 + 0.0002
    page = page_of((before, "a.json"), (after, "b.json"))
    throughput = page[page.index('data-chart="throughput"'):page.index('data-chart="latency"')]
    bands = re.findall(r"<title>([\d.]+) to ([\d.]+) s\n", throughput)
    assert bands == [("0", "1"), ("1", "2"), ("2", "3")]


def test_a_last_interval_cut_short_is_no_point_of_the_lines_but_has_its_band() -> None:
    doc = document(3)
    doc["timeline"][-1].update(duration_s=0.01)  # 800 messages in 10 ms: 80000 msg/s
    view = view_of(doc, "a.json")
    page = page_of((doc, "a.json"))
    throughput = page[page.index('data-chart="throughput"'):page.index('data-chart="latency"')]
    [accepted] = re.findall(r'data-series="accepted" d="([^"]*)"', throughput)
    assert accepted.count("L") == 1  # two points: the third interval left out
    latency = page[page.index('data-chart="latency"'):page.index('data-chart="spectrum"')]
    assert [d.count("L") for d in re.findall(r'class="line s-\w+ r-0"[^>]* d="([^"]*)"',
                                             latency)] == [1, 1, 1, 1]
    assert "<title>2 to 2.01 s\na.json: " in throughput
    assert view.timeline is not None and view.timeline[-1].rate("accepted") > 10_000


def test_the_start_is_shown_to_the_second_with_its_offset() -> None:
    page = page_of((document(2), "a.json"))
    assert "<tr><th>started at</th><td>2026-12-01 12:00:00 +0000</td></tr>" in page


def test_a_run_of_one_interval_shows_its_point() -> None:
    # One interval draws no path: each series still shows as a dot, where a line of
    # several intervals has none.
    page = page_of((document(1), "short.json"))
    timed = page[:page.index("Latency by percentile")]
    dots = re.findall(r'<circle class="mark s-(\w+)" cx="[\d.]+" cy="[\d.]+" r="2"', timed)
    assert sorted(dots) == ["accepted", "max", "p50", "p90", "p99"]
    longer = page_of((document(3), "long.json"))
    assert not re.findall(r'<circle class="mark s-\w+" cx="[\d.]+" cy="[\d.]+" r="2"',
                          longer[:longer.index("Latency by percentile")])
