"""--find-rate's steps: the verdict of each (held, failed, sessions), its JSON, the
table's lines, and the find_rate field read back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from qmqpsource.results.checks import parse_check
from qmqpsource.results.findrate import judge_step, parse_find_rate, step_line, table
from qmqpsource.results.outcome import Outcome
from qmqpsource.source.ratesearch import Verdict
from tests.results.test_checks import result

P99 = [parse_check("p99<200ms")]
FAILED = [parse_check("failed==0")]


def step_result(*, total_ms: int, reply_ms: int, accepted: int = 100, failed: int = 0,
                behind: int = 0) -> Any:
    value = result({"total": [total_ms * 1000] * (accepted + failed),
                    "reply": [reply_ms * 1000] * (accepted + failed)},
                   {Outcome.ACCEPTED: accepted, Outcome.TEMPFAIL: failed})
    return dataclasses.replace(value, behind_schedule=behind)


def test_checks_held_at_the_rate_asked_is_held() -> None:
    step = judge_step(P99, 10.0, 10.0, step_result(total_ms=50, reply_ms=50))
    assert step.verdict is Verdict.HELD and step.ok
    assert step.achieved == 10.0
    assert [(v.check, v.ok) for v in step.checks] == [("p99<200ms", True)]
    assert step.checks[0].value == pytest.approx(50.0, rel=1e-3)


def test_a_check_that_fails_on_the_servers_time_is_failed() -> None:
    step = judge_step(P99, 10.0, 10.0, step_result(total_ms=500, reply_ms=400, behind=50))
    assert step.verdict is Verdict.FAILED and not step.ok


def test_behind_schedule_with_a_server_that_kept_up_is_sessions() -> None:
    # The total counts the wait for a free session; the server answered in 5 ms.
    step = judge_step(P99, 10.0, 10.0, step_result(total_ms=900, reply_ms=5, behind=60))
    assert step.verdict is Verdict.SESSIONS
    assert step.checks[0].ok is False  # the verdicts are the checks as given


def test_a_few_late_messages_are_not_the_sessions_limit() -> None:
    step = judge_step(P99, 10.0, 10.0, step_result(total_ms=900, reply_ms=5, behind=2))
    assert step.verdict is Verdict.FAILED


def test_too_few_messages_ended_is_not_held_even_if_the_checks_hold() -> None:
    # failed==0 says nothing of latency: 50 of the 100 asked, behind schedule, is -s's limit.
    value = step_result(total_ms=5, reply_ms=5, accepted=50, behind=40)
    assert judge_step(FAILED, 10.0, 10.0, value).verdict is Verdict.SESSIONS
    assert judge_step(FAILED, 10.0, 10.0, dataclasses.replace(value, behind_schedule=0)
                      ).verdict is Verdict.FAILED


@pytest.mark.parametrize(("checks", "verdict"), [(P99, Verdict.FAILED),
                                                   (FAILED, Verdict.FAILED),
                                                   ([parse_check("failed<5%")], Verdict.HELD)])
def test_failed_messages_fail_a_step_unless_a_check_allows_them(
    checks: list[Any], verdict: Verdict
) -> None:
    value = step_result(total_ms=5, reply_ms=5, accepted=98, failed=2)
    assert judge_step(checks, 10.0, 10.0, value).verdict is verdict


def test_step_json_and_line() -> None:
    step = judge_step(P99, 12.5, 8.0, step_result(total_ms=500, reply_ms=400, failed=3))
    value = step.to_dict()
    p99 = value["p99_ms"]
    assert p99 == pytest.approx(500.0, rel=1e-3)
    assert value == {
        "rate": 12.5, "achieved": 12.875, "ok": False, "verdict": "failed",
        "checks": [{"check": "p99<200ms", "value": p99, "ok": False}],
        "p50_ms": p99, "p99_ms": p99, "failed": 3, "behind_schedule": 0,
    }
    line = step_line(4, value)
    assert line.split() == ["4", "12.5", "12.9", f"{p99:.3f}", f"{p99:.3f}", "3", "FAILED:",
                            "p99<200ms"]
    assert step_line(1, {**value, "checks": []}).endswith("FAILED: failed messages\n")
    assert step_line(1, {**value, "checks": [], "failed": 0}).endswith(
        "FAILED: fell behind the rate\n")


def test_table_read_back_from_json() -> None:
    steps = [judge_step(P99, rate, 10.0, step_result(total_ms=ms, reply_ms=ms,
                                                     accepted=int(rate * 10))).to_dict()
             for rate, ms in ((10.0, 50), (20.0, 300), (15.0, 60))]
    find_rate = parse_find_rate({"find_rate": {"rate": 15.0, "stopped": "bracket",
                                               "steps": steps}})
    assert find_rate is not None
    text = table("qmqp-report", find_rate).splitlines()
    assert len(text) == 5 and text[0].startswith("step")
    assert [line.split()[-1] for line in text[1:4]] == ["held", "p99<200ms", "held"]
    assert text[-1] == ("qmqp-report: highest rate that met the checks: 15.0 msg/s "
                        "(3 steps, stopped: bracket)")


@pytest.mark.parametrize("bad", [[], {"steps": "x"}, {"rate": "fast", "steps": []},
                                 {"rate": 1, "steps": [{"rate": 1}]},
                                 {"rate": 1, "steps": [{"rate": 1, "achieved": 1,
                                                        "p99_ms": "slow"}]}])
def test_a_malformed_find_rate_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^find_rate"):
        parse_find_rate({"find_rate": bad})
    assert parse_find_rate({"schema": "x"}) is None


def test_a_server_that_slowed_down_under_the_load_failed_the_step() -> None:
    # Every session busy, each message 130 ms on the server: under 200 ms, but the server
    # took 10 ms at the rate that held, so it is at its limit, not the sessions.
    baseline = judge_step(P99, 10.0, 10.0, step_result(total_ms=10, reply_ms=10))
    assert baseline.ok
    busy = step_result(total_ms=900, reply_ms=130, behind=60)
    assert judge_step(P99, 10.0, 10.0, busy, baseline).verdict is Verdict.FAILED
    assert judge_step(P99, 10.0, 10.0, busy).verdict is Verdict.SESSIONS  # no baseline
    fast = step_result(total_ms=900, reply_ms=15, behind=60)
    assert judge_step(P99, 10.0, 10.0, fast, baseline).verdict is Verdict.SESSIONS


def test_server_time_is_the_reply_latency() -> None:
    # Connect latency counts from the scheduled start: it holds the wait for a session.
    value = result({"total": [300_000] * 100, "reply": [120_000] * 100,
                    "connect": [180_000] * 100}, {Outcome.ACCEPTED: 100})
    value = dataclasses.replace(value, behind_schedule=50)
    assert judge_step(P99, 10.0, 10.0, value).verdict is Verdict.SESSIONS
    assert judge_step([parse_check("p99<100ms")], 10.0, 10.0, value
                      ).verdict is Verdict.FAILED
