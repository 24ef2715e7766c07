"""Live progress: when the bar shows, what it and the --interval lines say."""

from __future__ import annotations

import io
import re
from functools import partial

import pytest
import trio
import trio.testing

from qmqpsource.cli.progress import IntervalLines, bar_wanted, run_progress
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("quiet", "counter", "verbose", "tty", "wanted"),
    [
        (False, False, 0, True, True),
        (False, False, 0, False, False),
        (True, False, 0, True, False),
        (False, True, 0, True, False),
        (False, False, 1, True, False),
    ],
)
def test_bar_only_on_a_terminal_and_not_with_q_c_v(
    quiet: bool, counter: bool, verbose: int, tty: bool, wanted: bool
) -> None:
    stream = Terminal() if tty else io.StringIO()
    assert bar_wanted(quiet=quiet, counter=counter, verbose=verbose, stream=stream) is wanted


def record(stats: RunStats, outcome: Outcome, seconds: float, n: int = 1) -> None:
    for _ in range(n):
        stats.record(outcome, 10.0, 10.0, 10.0 + seconds)


def test_interval_lines_report_each_interval_alone() -> None:
    stats = RunStats(1, 100)
    stats.begin()
    lines = IntervalLines(stats)
    record(stats, Outcome.ACCEPTED, 0.001, 98)
    record(stats, Outcome.TEMPFAIL, 0.5, 2)
    first = lines.line()
    match = re.match(
        r"^qmqp-source: \d+\.\d s: 100 messages, \d+\.\d msg/s, 2 failed, p99 (\d+\.\d{3}) ms$",
        first,
    )
    assert match, first
    assert 499 <= float(match.group(1)) <= 501  # the two slow ones are the top 2%
    # The next interval knows nothing of the slow ones.
    record(stats, Outcome.ACCEPTED, 0.002, 10)
    second = lines.line()
    assert " 10 messages, " in second and " 0 failed, " in second
    assert re.search(r"p99 (1\.999|2\.000) ms$", second), second  # float times, whole us
    assert lines.line().endswith(" 0 messages, 0.0 msg/s, 0 failed, p99 -")


async def test_interval_lines_without_a_bar(autojump_clock: trio.testing.MockClock) -> None:
    stats = RunStats(1, 100)
    stats.begin()
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_progress, stats, 10, bar=False, interval=0.05, err=out))
        for _ in range(5):
            record(stats, Outcome.ACCEPTED, 0.001)
            await trio.sleep(0.03)
        nursery.cancel_scope.cancel()
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("qmqp-source: ") for line in lines)
    assert sum(int(line.split()[3]) for line in lines) <= 5


async def test_nothing_to_show_returns_at_once() -> None:
    stats = RunStats(1, 100)
    out = io.StringIO()
    with trio.fail_after(5):
        await run_progress(stats, 10, bar=False, interval=None, err=out)
    assert out.getvalue() == ""


async def test_bar_shows_done_total_rate_failures_and_interval_lines(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Virtual time: the bar's redraws (every 0.25 s) and the interval line (at 0.3 s) come
    # at their times between the loop's sleeps however loaded the machine is. A fixed
    # terminal: rich reads its width and kind from the environment (a narrow one crops
    # the "N/40" column; TERM=dumb draws no bar at all).
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERM", "xterm")
    stats = RunStats(1, 100)
    stats.begin()
    out = Terminal()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_progress, stats, 40, bar=True, interval=0.3, err=out))
        for _ in range(8):
            record(stats, Outcome.ACCEPTED, 0.001, 3)
            record(stats, Outcome.REFUSED, 0.001)
            await trio.sleep(0.06)
        nursery.cancel_scope.cancel()
    text = out.getvalue()
    assert re.search(r"\b\d+/40\b", text), text
    assert " msg/s" in text and " failed" in text
    assert "qmqp-source" in text
    # The interval line went above the bar, whole.
    assert re.search(r"qmqp-source: \d+\.\d s: \d+ messages, ", text), text
