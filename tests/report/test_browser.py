"""The page of two real runs in a real browser: headless Chromium (Debian's; CI installs it).

Every chart must be drawn with each run's expected series (lines of real length, coloured
and dashed by the style sheet that the page's policy allowed), with no error, no console
message and no blocked request; and a screenshot is taken. Set QMQP_REPORT_SCREENSHOT to a
path to keep it (the README's docs/report.png is made so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from qmqpsource.report.page import render
from qmqpsource.report.view import view_of
from tests.report import browser
from tests.report.runs import DURATION, INTERVAL, before_and_after
from tests.report.synthetic import document, find_rate

REPORT = [sys.executable, "-m", "qmqpsource.cli.report"]


@pytest.fixture(scope="module")
def chromium() -> None:
    if not browser.available():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have Debian's chromium installed ({browser.CHROMIUM})")
        pytest.skip(f"chromium is missing at {browser.CHROMIUM}: apt-get install chromium "
                    "(CI installs it)")


@pytest.fixture(scope="module")
def real_page(chromium: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """qmqp-report --html of two real runs: before (a quick sink), after (slower, failing)."""
    folder = tmp_path_factory.mktemp("report")
    before, after = trio.run(before_and_after, folder)
    page = folder / "report.html"
    done = subprocess.run([*REPORT, "-q", "--html", str(page), str(before), str(after)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    return page


def two_runs(folder: Path) -> Path:
    """The page of two made-up runs (no load needed): a before and a slower after."""
    before = view_of(document(30), "before.json")
    after = view_of(document(30, slow=1.5, failing=True, seed=2), "after.json")
    page = folder / "report.html"
    page.write_text(render([before, after], generator="qmqp-report test"))
    return page


def series(chart: dict[str, Any]) -> list[tuple[int, str]]:
    return [(line["run"], line["series"]) for line in chart["lines"]]


EXPECTED = {
    "throughput": [(0, "accepted"), (1, "accepted"), (1, "tempfail"), (1, "permfail"),
                   (1, "error")],
    "latency": [(run, key) for run in (0, 1) for key in ("p50", "p90", "p99", "max")],
    "spectrum": [(run, kind) for run in (0, 1) for kind in ("connect", "reply", "total")],
}


def test_every_chart_renders_each_runs_series_without_error(
    chromium: None, real_page: Path
) -> None:
    rendered = browser.render_probe(real_page)
    probe = rendered.probe
    assert probe["errors"] == [] and rendered.console == []
    assert {chart["chart"]: series(chart) for chart in probe["charts"]} == EXPECTED
    for chart in probe["charts"]:
        assert chart["width"] > 400 and chart["height"] > 150, chart["chart"]
        assert chart["ticks"] >= 8  # tick labels and both axis titles
        for line in chart["lines"]:
            assert line["length"] > 100 and line["width"] > 100, (chart["chart"], line)
            # The style sheet applied: a colour of its own, and run 1 dashed.
            assert line["stroke"] not in ("none", "rgb(0, 0, 0)"), line
            assert (line["dash"] != "none") is (line["run"] == 1), line
    # A band a timeline interval (DURATION / INTERVAL of them, and a last one cut short).
    bands = {chart["chart"]: chart["bands"] for chart in probe["charts"]}
    assert bands["throughput"] == bands["latency"] >= round(DURATION / INTERVAL)
    assert bands["spectrum"] == 0
    assert probe["legends"] == [len(EXPECTED[name]) for name in EXPECTED]
    assert probe["background"] == "rgb(255, 255, 255)"  # the light theme: no preference


def test_a_page_that_asks_the_network_is_caught(chromium: None, tmp_path: Path) -> None:
    """What the test above relies on: a request, or markup the policy refuses, is seen."""
    page = two_runs(tmp_path)
    page.write_text(page.read_text().replace(
        "<main>", '<main><img src="http://192.0.2.1/x.png"><style>p{color:red}</style>'))
    rendered = browser.render_probe(page)
    assert "policy: img-src http://192.0.2.1/x.png" in rendered.probe["errors"]
    assert any("style-src" in error for error in rendered.probe["errors"])
    assert len(rendered.console) == 2  # both refusals logged on the console


def test_a_screenshot_of_the_page(chromium: None, real_page: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    browser.screenshot(real_page, png)
    assert browser.png_size(png) == browser.WINDOW
    assert png.stat().st_size > 50_000  # charts and tables, not a blank page
    keep = os.environ.get("QMQP_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(png, keep)


def test_the_dark_theme_where_the_reader_prefers_it(chromium: None, tmp_path: Path) -> None:
    page = two_runs(tmp_path)
    light = browser.render_probe(page).probe
    dark = browser.render_probe(page, "--force-dark-mode").probe
    assert dark["errors"] == []
    assert dark["background"] == "rgb(13, 17, 23)"
    light_strokes, dark_strokes = strokes(light), strokes(dark)
    assert len(light_strokes) == len(dark_strokes) == sum(map(len, EXPECTED.values()))
    assert all(a != b for a, b in zip(light_strokes, dark_strokes, strict=True))


def test_the_search_chart_renders_each_runs_series(chromium: None, tmp_path: Path) -> None:
    """Two --find-rate results: their searches overlaid, the answer's rules and the legend."""
    views = []
    for n, name in enumerate(("before.json", "after.json")):
        doc = document(3, seed=n)
        doc["find_rate"] = find_rate()
        views.append(view_of(doc, name))
    page = tmp_path / "report.html"
    page.write_text(render(views, generator="qmqp-report test"))
    rendered = browser.render_probe(page)
    probe = rendered.probe
    assert probe["errors"] == [] and rendered.console == []
    [search] = [chart for chart in probe["charts"] if chart["chart"] == "search"]
    assert series(search) == [(run, key) for run in (0, 1) for key in ("p50", "p99")]
    for line in search["lines"]:
        assert line["length"] > 100 and line["stroke"] not in ("none", "rgb(0, 0, 0)"), line
        assert (line["dash"] != "none") is (line["run"] == 1), line
    assert probe["legends"][-1] == 4 + 3  # the lines, then the three marker shapes


def strokes(probe: dict[str, Any]) -> list[str]:
    return [line["stroke"] for chart in probe["charts"] for line in chart["lines"]]
