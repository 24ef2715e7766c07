"""--check expressions: parsed, or refused with one line; judged against a result."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from qmqpsource.results.checks import (
    Check,
    CheckError,
    Verdict,
    judge,
    parse_check,
    unjudged_failures,
)
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
        ("rate>=48", 48.0, True),  # 96 accepted in 2 s: the failures do not count
        ("rate>=50", 48.0, False),  # as they did (100 ended in 2 s)
        ("rate>48", 48.0, False),
        ("rate>=48/s", 48.0, True),
        ("rate >= 49 msg/s", 48.0, False),
        ("p95<95.1ms", 95.0, True),
        ("p98<1s", 98.0, True),
        ("p99.9<1s", 100.0, True),
        ("total.p99.99<100ms", 100.0, False),
        ("p9999<=101ms", 100.0, True),
        ("p0<1.1ms", 1.0, True),
        ("p100<100ms", 100.0, False),
        ("p12.5<13.1ms", 13.0, True),
        ("connect.p99.9<=1.001ms", 1.0, True),
        ("reply.p95<1us", 0.0, True),  # nothing recorded
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
        (".p99<5ms", "unknown latency '': connect, reply or total"),
        ("latency.p99<1s", "unknown latency 'latency'"),
        ("total.<1s", "unknown latency figure ''"),
        ("total.p9x<1s", "unknown latency figure 'p9x'"),
        ("connect.rate<1ms", "unknown latency figure 'rate'"),
        ("p9x<1s", "unknown 'p9x'"),
        ("p101<1s", "p101: a percentile is from p0 to p100"),
        ("p100.5<1s", "p100.5: a percentile is from p0 to p100"),
        ("p950<1s", "p950: a percentile is from p0 to p100"),
        ("p99<" + "9" * 400 + "ms", "the limit is not a finite number"),
        ("rate>=500/m", "rate is in messages a second"),
        ("p99>1s", "p99 takes < or <=, not >"),
        ("p99==1s", "p99 takes < or <=, not =="),
        ("failed>0", "failed takes == or < or <=, not >"),
        ("failed<1.5", "a count is a whole number"),
        ("failed<3ms", "a count, or a share in %"),
        ("rate<500", "rate takes >= or >, not <"),
        ("rate>=1.2.3", "is not a number"),
        ("accepted>=10", "unknown 'accepted'"),
        ("failed<=-1%", "a limit is a number of 0 or more"),
        ("p99 < -5ms", "a limit is a number of 0 or more"),
        ("failed<=101%", "a share is from 0% to 100%"),
        ("p99<1e400ms", "(digits and a point: no exponent)"),
    ],
)
def test_bad_checks_are_one_line_each(text: str, says: str) -> None:
    with pytest.raises(CheckError) as info:
        parse_check(text)
    message: Any = str(info.value)
    assert says in message and "\n" not in message
    assert message.startswith(f"--check {text!r}: ")


@pytest.mark.parametrize(
    ("check", "says"),
    [
        (lambda: Check("p99<1ms", "latency", "p99", "<", 1.0), "unknown latency 'p99'"),
        (lambda: Check("x", "latency", "total.p99", ">", 1.0), "p99 takes < or <=, not >"),
        (lambda: Check("x", "outcome", "accepted", "==", 1.0), "unknown 'accepted'"),
        (lambda: Check("x", "outcome", "rate", "==", 1.0), "unknown 'rate'"),
        (lambda: Check("x", "rate", "rate", ">=", math.nan), "not a finite number"),
        (lambda: Check("x", "speed", "rate", ">=", 1.0), "unknown kind 'speed'"),
        (lambda: Check("x", "outcome", "failed", "<", 1.5), "a count is a whole number"),
    ],
    ids=["no prefix", "op", "outcome", "outcome named rate", "nan", "kind", "count"],
)
def test_a_check_made_by_hand_is_refused_unless_judge_can_judge_it(
    check: Callable[[], Check], says: str
) -> None:
    with pytest.raises(CheckError) as info:
        check()
    assert says in str(info.value) and info.value.field == "checks"


def test_a_latency_the_result_has_not_is_one_line() -> None:
    old = dataclasses.replace(RUN, latency={k: v for k, v in RUN.latency.items()
                                            if k != "reply"})
    with pytest.raises(CheckError) as info:
        judge([parse_check("reply.p99<5ms")], old)
    assert str(info.value) == ("--check 'reply.p99<5ms': the result has no reply latency "
                               "to judge")


@pytest.mark.parametrize(
    ("texts", "unjudged"),
    [
        ((), 4),
        (("p99<1s",), 4),  # a latency check judges no failure
        (("tempfail==2",), 2),  # the permfail and the refused connection are left
        (("tempfail==2", "permfail<=1"), 1),
        (("error==1",), 3),
        (("tempfail<5%", "permfail<5%", "error<5%"), 0),
        (("failed<=4",), 0),
        (("failed<1",), 0),  # judged (and failed): the check, not their number, decides
    ],
)
def test_unjudged_failures_are_those_no_check_is_about(
    texts: tuple[str, ...], unjudged: int
) -> None:
    checks = [parse_check(text) for text in texts]
    assert unjudged_failures(checks, RUN.outcomes) == unjudged
    # A verdict read back from a file stands for the check it judged.
    assert unjudged_failures(judge(checks, RUN), RUN.outcomes) == unjudged


def test_a_verdict_this_version_cannot_parse_judges_nothing() -> None:
    assert unjudged_failures([Verdict("failed<<1", 0.0, True)], RUN.outcomes) == 4


def with_checks(value: Result, *texts: str) -> Result:
    return dataclasses.replace(value, checks=tuple(judge([parse_check(t) for t in texts], value)))


def test_result_ok_is_completed_no_unjudged_failure_and_every_check_held() -> None:
    clean = result({"total": [1000]}, {Outcome.ACCEPTED: 1})
    assert clean.ok and with_checks(clean, "p99<1s").ok
    assert not with_checks(clean, "p99<1us").ok  # a check failed
    assert not dataclasses.replace(clean, status="interrupted").ok
    assert not dataclasses.replace(clean, status="failed").ok
    assert not RUN.ok  # 4 failures, no check about them
    assert not with_checks(RUN, "tempfail<=2", "permfail<=1").ok  # the refused one is left
    assert with_checks(RUN, "failed<5%").ok
    assert not with_checks(RUN, "failed<1%").ok


def test_a_check_made_by_hand_with_a_whole_number_limit_is_judged() -> None:
    [verdict] = judge([Check("failed<=4", "outcome", "failed", "<=", 4)], RUN)
    assert (verdict.value, verdict.ok) == (4.0, True)
