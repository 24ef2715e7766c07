"""--check expressions: parsed, or refused with one line; judged against a result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qmqpsource.results.checks import CheckError, judge, parse_check
from qmqpsource.results.histogram import Histogram
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.result import Result


def result(latencies_us: dict[str, list[int]], outcomes: dict[Outcome, int],
           elapsed: float = 2.0) -> Result:
    histograms = {}
    for name in ("connect", "reply", "total"):
        histogram = Histogram()
        for value in latencies_us.get(name, []):
            histogram.record(value)
        histograms[name] = histogram
    return Result(tool_name="qmqp-source", tool_version="0", config={},
                  started_at=datetime(2026, 12, 1, tzinfo=UTC), elapsed_s=elapsed,
                  outcomes={o: outcomes.get(o, 0) for o in Outcome}, recipients=0,
                  bytes_sent=0, latency=histograms)


# 100 totals of 1..100 ms, connects of 1 ms; 96 accepted, 2 tempfail, 1 permfail, 1 refused.
RUN = result(
    {"total": [ms * 1000 for ms in range(1, 101)], "connect": [1000] * 100},
    {Outcome.ACCEPTED: 96, Outcome.TEMPFAIL: 2, Outcome.PERMFAIL: 1, Outcome.REFUSED: 1},
)


@pytest.mark.parametrize(
    ("text", "value", "ok"),
    [
        ("p99<250ms", 99.0, True),
        ("p99<99ms", 99.0, False),
        ("p99<=99ms", 99.0, False),  # the summary shows 99.007: a bucket of 3 figures
        ("p99<=99.1ms", 99.0, True),
        ("total.p50<=50.1ms", 50.0, True),
        ("p90 < 0.05s", 90.0, False),
        ("max<100500us", 100.0, True),
        ("connect.max<1s", 1.0, True),
        ("connect.p999<1ms", 1.0, False),
        ("mean<60ms", 50.5, True),
        ("reply.max<1ms", 0.0, True),  # nothing recorded
        ("failed==4", 4, True),
        ("failed<4", 4, False),
        ("failed<=5%", 4.0, True),
        ("failed<0.1%", 4.0, False),
        ("tempfail==2", 2, True),
        ("permfail<1", 1, False),
        ("error==1", 1, True),
        ("rate>=50", 50.0, True),
        ("rate>50", 50.0, False),
    ],
)
def test_checks_measure_and_judge(text: str, value: float, ok: bool) -> None:
    [verdict] = judge([parse_check(text)], RUN)
    assert verdict.check == text
    assert verdict.value == pytest.approx(value, rel=0.002)
    assert verdict.ok is ok
    assert verdict.to_dict() == {"check": text, "value": verdict.value, "ok": ok}


def test_a_run_of_no_messages_has_no_share_of_failures() -> None:
    empty = result({}, {})
    verdicts = judge([parse_check("failed<1%"), parse_check("rate>=1")], empty)
    assert [(v.value, v.ok) for v in verdicts] == [(0.0, True), (0.0, False)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("p99", "expected NAME OP VALUE"),
        ("p99<", "expected NAME OP VALUE"),
        ("p99<250", "a duration needs a unit"),
        ("p99<250m", "a duration needs a unit"),
        ("p98<1s", "unknown 'p98'"),
        ("latency.p99<1s", "unknown 'latency.p99'"),
        ("p99>1s", "p99 takes < or <=, not >"),
        ("p99==1s", "p99 takes < or <=, not =="),
        ("failed>0", "failed takes == or < or <=, not >"),
        ("failed<1.5", "a count is a whole number"),
        ("failed<3ms", "a count, or a share in %"),
        ("rate<500", "rate takes >= or >, not <"),
        ("rate>=1.2.3", "is not a number"),
        ("accepted>=10", "unknown 'accepted'"),
    ],
)
def test_bad_checks_are_one_line_each(text: str, says: str) -> None:
    with pytest.raises(CheckError) as info:
        parse_check(text)
    message: Any = str(info.value)
    assert says in message and "\n" not in message
    assert message.startswith(f"--check {text!r}: ")
