"""The page of a --find-rate result without a browser: the search's chart, table and answer."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from qmqpsource.report.svg import HEIGHT, decade_ticks
from qmqpsource.report.view import SearchStep, view_of
from qmqpsource.results.findrate import parse_find_rate, table
from tests.report.synthetic import SEARCH, document, find_rate
from tests.report.test_page import HOSTILE, Tags, page_of


def searched(**kwargs: Any) -> dict[str, Any]:
    doc = document(2)
    doc["find_rate"] = find_rate(**kwargs)
    return doc


def chart_of(page: str) -> str:
    return page[page.index('data-chart="search"'):page.index("</svg>", page.index(
        'data-chart="search"'))]


class Cells(HTMLParser):
    """The text of each row of the tables with class "steps"."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.inside = "steps" in (dict(attrs).get("class") or "")
        elif tag == "tr" and self.inside:
            self.rows.append([])

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "table"

    def handle_data(self, data: str) -> None:
        if self.inside and self.rows:
            self.rows[-1].append(data)


def test_a_search_gets_its_chart_table_and_answer() -> None:
    page = page_of((searched(), "find.json"))
    assert re.findall(r'data-chart="(\w+)"', page) == ["throughput", "latency", "spectrum",
                                                       "search"]
    assert "<h2>Rate search</h2>" in page
    chart = chart_of(page)
    assert re.findall(r'<path class="line s-(\w+) r-(\d)"', chart) == [("p50", "0"), ("p99", "0")]
    # One marker a step on each line, its shape the verdict: 7 held, 3 failed.
    marks = re.findall(r'class="mark(?: open)? s-(p50|p99)" data-mark="(\w+)"', chart)
    assert len(marks) == 2 * len(SEARCH)
    assert sorted(shape for series, shape in marks if series == "p99") == ["filled"] * 7 + [
        "open"] * 3
    assert "<title>find.json: step 5, 3200.0 msg/s asked, 2251.4 achieved: p50 794.111 ms, " \
           "p99 1790.975 ms, 0 failed; FAILED: p99&lt;200ms</title>" in chart
    # The answer: a rule at its rate, labelled.
    assert re.search(r'<g class="rule"><title>find.json: answer 1950.0 msg/s</title>'
                     r'<line class="rule r-0"', chart)
    assert "highest rate that met the checks: 1950.0 msg/s (10 steps, stopped: bracket)" in page
    # The legend: both lines, then what each marker's shape means.
    assert re.findall(r"<li><svg[^>]*>.*?</svg>([^<]*)</li>", page.split('id="search"')[1]) == [
        "find.json: p50", "find.json: p99", "held", "failed", "sessions busy (not judged)"]


def test_the_step_table_says_what_the_search_printed() -> None:
    doc = searched()
    page = page_of((doc, "find.json"))
    cells = Cells()
    cells.feed(page)
    header, *rows = cells.rows
    assert header == ["step", "rate asked (msg/s)", "achieved (msg/s)", "p50 (ms)", "p99 (ms)",
                      "failed", "verdict"]
    # Row for row, the table qmqp-source printed on stderr (from the same JSON).
    printed = table("qmqp-source", doc["find_rate"]).splitlines()[1:-1]
    assert rows == [line.split(None, 6) for line in printed]


def test_the_lines_join_the_steps_in_order_of_rate() -> None:
    chart = chart_of(page_of((searched(), "find.json")))
    for d in re.findall(r'class="line s-\w+ r-0"[^>]* d="([^"]*)"', chart):
        xs = [float(x) for x in re.findall(r"[ML]([\d.]+) ", d)]
        assert len(xs) == len(SEARCH) and xs == sorted(xs)


def test_decade_ticks_cover_every_positive_value() -> None:
    assert decade_ticks([1.609, 1790.975]) == [1.0, 10.0, 100.0, 1000.0, 10000.0]
    assert decade_ticks([0.0, 0.25, 0.5]) == [0.1, 1.0]  # a zero sits on the axis
    assert decade_ticks([10.0]) == [10.0, 100.0]
    assert decade_ticks([]) == [1.0, 10.0]


def test_latency_is_on_a_log_scale_so_the_steps_that_held_stand_apart() -> None:
    # README's search: p99 from 6 ms (held) to 1.8 s (failed). On a linear axis the held
    # steps would sit within a few pixels of each other; on the log one 6 ms and 43 ms
    # are a decade apart.
    chart = chart_of(page_of((searched(), "find.json")))
    assert re.findall(r'text-anchor="end">([\d.]+)</text>', chart) == [
        "1", "10", "100", "1000", "10000"]
    p99 = re.search(r'class="line s-p99 r-0"[^>]* d="([^"]*)"', chart)
    assert p99 is not None
    ys = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", p99[1])]
    plot_height = HEIGHT - 14 - 46
    assert ys[0] - ys[5] > plot_height / 5  # 200 msg/s (6.4 ms) to 1900 (43 ms)


def test_no_rate_held_no_rule_and_the_answer_says_so() -> None:
    doc = searched(steps=[(200.0, 180.0, 5.0, 300.0, "failed")], rate=None,
                   stopped="first step failed")
    page = page_of((doc, "find.json"))
    assert 'class="rule' not in chart_of(page)
    assert "no rate met the checks (1 step, stopped: first step failed)" in page
    assert re.findall(r'data-mark="(\w+)"', chart_of(page)) == ["open", "open"]


def test_sessions_busy_is_a_square() -> None:
    doc = searched(steps=[(500.0, 500.0, 1.0, 2.0, "held"),
                          (1000.0, 700.0, 50.0, 150.0, "sessions")],
                   rate=500.0, stopped="sessions")
    chart = chart_of(page_of((doc, "find.json")))
    assert re.findall(r'data-mark="(\w+)"', chart) == ["filled", "square"] * 2
    assert "SESSIONS BUSY (not judged)</title></rect>" in chart


def test_each_file_its_own_search_and_files_without_one_add_nothing() -> None:
    other = searched(steps=[(100.0, 100.0, 1.0, 3.0, "held"), (200.0, 150.0, 9.0, 900.0,
                                                                "failed")], rate=100.0)
    page = page_of((searched(), "a.json"), (document(2), "plain.json"), (other, "c.json"))
    chart = chart_of(page)
    # Run 2 keeps its own dash: the run without a search only has no lines here.
    assert re.findall(r'<path class="line s-(\w+) r-(\d)"', chart) == [
        ("p50", "0"), ("p99", "0"), ("p50", "2"), ("p99", "2")]
    assert re.findall(r"<title>(\S+ answer [\d.]+ msg/s)</title>", chart) == [
        "a.json: answer 1950.0 msg/s", "c.json: answer 100.0 msg/s"]
    assert re.findall(r"<h3>([^<]*)</h3>", page) == ["a.json", "c.json"]
    assert page.count("highest rate that met the checks: ") == 4  # the banner's and each h3's
    # The banner leads each search's line with its answer.
    banner = re.findall(r'<p class="verdict \w+"><strong>([^<]*)</strong>: (\w+): ([^;<]*)',
                        page)
    assert banner == [
        ("a.json", "passed", "highest rate that met the checks: 1950.0 msg/s (10 steps, "
         "stopped: bracket)"),
        ("plain.json", "passed", "completed"),
        ("c.json", "passed", "highest rate that met the checks: 100.0 msg/s (2 steps, "
         "stopped: bracket)")]


def test_pages_without_a_search_are_as_they_were() -> None:
    page = page_of((document(3), "a.json"), (document(3, seed=2), "b.json"))
    assert re.findall(r'data-chart="(\w+)"', page) == ["throughput", "latency", "spectrum"]
    for new in ("Rate search", "<h3>", "data-mark", 'class="rule', 'class="numbers steps"'):
        assert new not in page
    # The page of a search's run, less its search, is the page of that run.
    doc = searched()
    assert page_of((document(2), "a.json")) == page_of(
        ({k: v for k, v in doc.items() if k != "find_rate"}, "a.json"))


def test_a_hostile_search_adds_no_markup() -> None:
    doc = searched(check="<script>alert(5)</script>", stopped="<b>x</b>")
    page = page_of((doc, HOSTILE))
    parser = Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags
    assert parser.tags <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p",
        "strong", "main", "section", "aside", "figure", "figcaption", "svg", "g", "line", "text",
        "rect", "path", "circle", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
    assert not {a for a in parser.attributes if a.startswith("on")}
    assert "FAILED: &lt;script&gt;alert(5)&lt;/script&gt;</td>" in page
    assert "stopped: &lt;b&gt;x&lt;/b&gt;)" in page
    assert "<strong>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;.json</strong>" in page
    assert "<h3>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;.json</h3>" in page


def test_the_view_reads_what_find_rate_in_let_through() -> None:
    value = find_rate(steps=[(100.0, 90.0, 1.0, 2.0, "held")], rate=100.0)
    del value["steps"][0]["p50_ms"], value["steps"][0]["verdict"]  # older or partial
    assert parse_find_rate({"find_rate": value}) is value
    search = view_of({**document(2), "find_rate": value}, "a.json").search
    assert search is not None and search.rate == 100.0 and search.stopped == "bracket"
    assert search.steps == (SearchStep(1, 100.0, 90.0, 0.0, 2.0, 0, "held", ()),)
    assert view_of(document(2), "a.json").search is None
    assert view_of({**document(2), "find_rate": [1]}, "a.json").search is None


def test_rates_and_latencies_near_the_largest_float_still_draw() -> None:
    # A search's rates have no bound but the float's (--rate 1e300 starts one there): the
    # axes overflowed (10.0**309; an int tick too large to label) into a traceback.
    steps = [(1e300, 1.7e308, 5e-324, 1e8, "held"), (1.7e308, 1.0, 2.0, 3.0, "failed")]
    page = page_of((searched(steps=steps, rate=1e300), "huge.json"))
    assert 'data-chart="search"' in page and "inf" not in chart_of(page).lower()
    assert decade_ticks([5e-324, 1.7e308])[-1] == 1e308
