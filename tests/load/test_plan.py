"""plan.py: which configs a qmqp-source command runs, in how many processes, for its options."""

from __future__ import annotations

from typing import Any

import pytest

from qmqpsource.load.plan import RunPlan, plan_run, share_of
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.shard import Shard
from qmqpsource.values import MAX_COUNT

WHOLE = Shard(0, 1)


def run(**options: Any) -> SourceConfig:
    return SourceConfig("127.0.0.1:628", **options)


def shape(plan: RunPlan) -> list[tuple[int, int, float | None, str]]:
    """Each config's sessions, messages, rate and shard."""
    return [(c.sessions, c.messages, c.rate, f"{c.shard_index}/{c.shard_count}")
            for c in plan.configs]


def test_one_process_runs_the_whole_run() -> None:
    whole = run(sessions=3, messages=10, rate=5.0)
    assert plan_run(whole, WHOLE, 1) == RunPlan((whole,))


def test_a_shard_runs_its_share_of_messages_sessions_and_rate() -> None:
    plan = plan_run(run(sessions=8, messages=10, rate=100.0), Shard(1, 4), 1)
    assert not plan.workers and plan.budget is None
    assert shape(plan) == [(2, 3, 25.0, "1/4")]  # 10 = 3 + 3 + 2 + 2


def test_a_shard_keeps_one_session_however_few() -> None:
    assert shape(plan_run(run(sessions=1, messages=10), Shard(3, 4), 1)) == [(1, 2, None, "3/4")]


def test_an_empty_share_runs_nothing() -> None:
    # -m 3 --shard 3/4: the first three shards have a message each, the fourth none.
    assert share_of(run(messages=3), Shard(3, 4)) is None
    assert plan_run(run(messages=3), Shard(3, 4), 4) == RunPlan(())


def test_a_run_without_a_count_is_not_divided() -> None:
    # --duration without -m: every share runs until the clock ends it.
    whole = run(sessions=4, messages=MAX_COUNT, duration=5.0)
    assert shape(plan_run(whole, Shard(1, 2), 1)) == [(2, MAX_COUNT, None, "1/2")]


def test_workers_take_so_many_messages_from_one_budget() -> None:
    # -s 4 -m 101 --workers 2: the sessions are shared, the messages budgeted.
    plan = plan_run(run(sessions=4, messages=101), WHOLE, 2)
    assert plan.workers and plan.budget == 101
    assert shape(plan) == [(2, 101, None, "0/1"), (2, 101, None, "0/1")]


def test_workers_in_a_shard_number_as_the_shard_does() -> None:
    plan = plan_run(run(sessions=4, messages=101), Shard(1, 2), 2)
    assert plan.budget == 50
    assert shape(plan) == [(1, 50, None, "1/2"), (1, 50, None, "1/2")]


@pytest.mark.parametrize(
    ("sessions", "messages", "workers", "expected"),
    [(2, 4, 4, 2 * [(1, 4, None, "0/1")]),  # no more workers than sessions
     (8, 3, 4, [(3, 3, None, "0/1"), (3, 3, None, "0/1"), (2, 3, None, "0/1")]),  # nor messages
     (1, 4, 4, [(1, 4, None, "0/1")])],  # one left: still run as --workers
)
def test_workers_are_no_more_than_sessions_and_messages(
    sessions: int, messages: int, workers: int, expected: list[tuple[int, int, None, str]]
) -> None:
    plan = plan_run(run(sessions=sessions, messages=messages), WHOLE, workers)
    assert plan.workers
    assert shape(plan) == expected


def test_workers_at_a_rate_are_finer_shards() -> None:
    plan = plan_run(run(sessions=2, messages=20, rate=400.0), WHOLE, 2)
    assert plan.workers and plan.budget is None
    assert shape(plan) == [(1, 10, 200.0, "0/2"), (1, 10, 200.0, "1/2")]


def test_workers_in_a_shard_at_a_rate_interleave_with_the_other_hosts() -> None:
    plan = plan_run(run(sessions=8, messages=40, rate=80.0), Shard(1, 2), 2)
    assert shape(plan) == [(2, 10, 20.0, "1/4"), (2, 10, 20.0, "3/4")]


def test_workers_for_a_time_are_shards_without_a_count() -> None:
    plan = plan_run(run(sessions=4, messages=MAX_COUNT, duration=5.0), WHOLE, 2)
    assert plan.budget is None
    assert shape(plan) == [(2, MAX_COUNT, None, "0/2"), (2, MAX_COUNT, None, "1/2")]


def test_workers_whose_share_is_empty_are_left_out() -> None:
    # -m 3 --rate 10 -s 4 --workers 4: the fourth share has no message.
    plan = plan_run(run(sessions=4, messages=3, rate=10.0), WHOLE, 4)
    assert shape(plan) == [(1, 1, 2.5, "0/4"), (1, 1, 2.5, "1/4"), (1, 1, 2.5, "2/4")]


def test_a_share_keeps_every_other_option() -> None:
    whole = run(sessions=4, messages=8, length=500, keep_going=True, fixed_delay=0.5)
    for config in plan_run(whole, WHOLE, 2).configs + plan_run(whole, Shard(0, 2), 1).configs:
        assert (config.length, config.keep_going, config.fixed_delay) == (500, True, 0.5)
