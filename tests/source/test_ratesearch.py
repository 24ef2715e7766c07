"""--find-rate's search, without a network: a fake server of known capacity answers
each step, and the search must bracket it, stop, and cap its steps exactly."""

from __future__ import annotations

import pytest

from qmqpsource.source.ratesearch import MAX_STEPS, RateSearch, Stop, Verdict


def search_against(capacity: float, start: float = 10.0, *, sessions_limit: float = 1e300,
                   **options: float) -> tuple[RateSearch, list[float]]:
    """Run a search against a server that holds up to ``capacity`` msg/s, with sessions
    that cannot go past ``sessions_limit``; the search and the rates it asked for."""
    search = RateSearch(start, **options)  # type: ignore[arg-type]
    asked: list[float] = []
    while (rate := search.next_rate()) is not None:
        asked.append(rate)
        if rate > sessions_limit:
            search.record(Verdict.SESSIONS)
        else:
            search.record(Verdict.HELD if rate <= capacity else Verdict.FAILED)
    return search, asked


def test_grows_then_bisects_to_within_5_percent() -> None:
    search, asked = search_against(400.0, start=100.0)
    assert asked == [100, 200, 400, 800, 600, 500, 450, 425, 412.5]
    assert search.answer == 400.0
    assert search.failed == 412.5
    assert search.stop is Stop.BRACKET
    assert (search.failed - search.answer) / search.answer <= 0.05


@pytest.mark.parametrize("capacity", [11.0, 37.5, 99.0, 1234.0, 5e4])
def test_answer_is_the_highest_held_and_within_tolerance(capacity: float) -> None:
    search, asked = search_against(capacity)
    assert search.answer is not None and search.answer <= capacity
    assert search.failed is not None and search.failed > capacity
    assert (search.failed - search.answer) / search.answer <= 0.05
    assert search.answer == max(rate for rate in asked if rate <= capacity)
    assert search.stop is Stop.BRACKET and search.steps == len(asked) <= MAX_STEPS


def test_first_step_failed_has_no_answer() -> None:
    search, asked = search_against(5.0, start=10.0)
    assert asked == [10.0]
    assert search.answer is None and search.stop is Stop.FIRST_FAILED


def test_a_server_that_never_fails_ends_at_the_step_cap() -> None:
    search, asked = search_against(float("inf"), start=10.0)
    assert len(asked) == MAX_STEPS == 20
    assert asked[-1] == 10.0 * 2 ** 19 == search.answer
    assert search.stop is Stop.STEP_CAP
    assert search.next_rate() is None  # and stays over


def test_the_step_cap_also_ends_a_bisection() -> None:
    search, asked = search_against(1000.0, start=10.0, max_steps=9)
    assert len(asked) == 9 and search.stop is Stop.STEP_CAP
    assert asked[:8] == [10, 20, 40, 80, 160, 320, 640, 1280] and asked[8] == 960
    assert search.answer == 960


def test_sessions_stop_the_search_with_the_last_rate_that_held() -> None:
    search, asked = search_against(1e6, start=100.0, sessions_limit=1000.0)
    assert asked == [100, 200, 400, 800, 1600]
    assert search.answer == 800 and search.stop is Stop.SESSIONS
    assert search.next_rate() is None


def test_sessions_at_the_first_step_have_no_answer() -> None:
    search, asked = search_against(1e6, start=100.0, sessions_limit=50.0)
    assert asked == [100] and search.answer is None and search.stop is Stop.SESSIONS


def test_next_rate_twice_is_the_same_step_and_record_needs_one() -> None:
    search = RateSearch(50.0)
    assert search.next_rate() == search.next_rate() == 50.0
    search.record(Verdict.HELD)
    with pytest.raises(RuntimeError):
        search.record(Verdict.HELD)
    assert search.next_rate() == 100.0


@pytest.mark.parametrize("options", [{"start": 0.0}, {"start": -1.0}, {"max_steps": 0},
                                     {"tolerance": 0.0}, {"growth": 1.0}])
def test_refuses_a_search_that_would_not_end(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateSearch(**options)  # type: ignore[arg-type]
