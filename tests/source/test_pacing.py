"""Connect pacing: a few connects per round of trio's loop, in order, nobody stranded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

import qmqpsource.source.connector
from qmqpsource.source.pacing import PER_ROUND, UNPACED_SESSIONS, ConnectPacer
from tests.qmqp_server import qmqp_server
from tests.source_support import run_in_process


class Rounds(trio.abc.Instrument):
    """Counts rounds of trio's loop: each looks for I/O once."""

    def __init__(self) -> None:
        self.round = 0

    def after_io_wait(self, timeout: float) -> None:
        self.round += 1


async def take_turn(pacer: ConnectPacer) -> None:
    if not pacer.try_take():
        await pacer.take()


async def test_turns_per_round_are_bounded_and_everyone_gets_one() -> None:
    rounds = Rounds()
    trio.lowlevel.add_instrument(rounds)
    pacer = ConnectPacer(per_round=3)
    turns: list[int] = []  # the round of every turn taken

    async def session() -> None:
        await take_turn(pacer)
        turns.append(rounds.round)

    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pacer.run)
                async with trio.open_nursery() as sessions:
                    for _ in range(20):
                        sessions.start_soon(session)
                nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(rounds)
    assert len(turns) == 20
    per_round = {r: turns.count(r) for r in turns}
    assert max(per_round.values()) <= 2 * 3  # see ConnectPacer
    assert len(per_round) >= 20 // (2 * 3)


async def test_waiters_get_their_turns_in_the_order_they_came() -> None:
    pacer = ConnectPacer(per_round=2)
    order: list[int] = []
    assert pacer.try_take() and pacer.try_take() and not pacer.try_take()

    async def waiter(n: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await pacer.take()
        order.append(n)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for n in range(7):
                await nursery.start(waiter, n)  # parked one after another, in this order
                await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(pacer.run)
            while len(order) < 7:  # noqa: ASYNC110 - bounded by fail_after
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
    # Two per round: each pair may run in either order, the pairs may not.
    assert [sorted(order[i : i + 2]) for i in range(0, 7, 2)] == [[0, 1], [2, 3], [4, 5], [6]]


async def test_the_pacer_idles_without_waiters() -> None:
    pacer = ConnectPacer()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            # A pacer that looped on checkpoints would never let every task block.
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(PER_ROUND):
                assert pacer.try_take()
            assert not pacer.try_take()
            await pacer.take()  # the next round's first turn
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()


async def test_a_waiter_cancelled_in_the_queue_takes_no_turn() -> None:
    pacer = ConnectPacer(per_round=1)
    assert pacer.try_take()
    got: list[str] = []

    async def waiter(name: str) -> None:
        await pacer.take()
        got.append(name)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as gone:
                nursery.start_soon(waiter, "first")
                await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as inner:
                inner.start_soon(waiter, "cancelled")
                await trio.testing.wait_all_tasks_blocked()
                inner.cancel_scope.cancel()
            assert not gone.cancelled_caught
            nursery.start_soon(waiter, "last")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(pacer.run)
            while len(got) < 2:  # noqa: ASYNC110 - bounded by fail_after
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
    assert got == ["first", "last"]


def test_per_round_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectPacer(per_round=0)


@pytest.fixture
async def connects_per_round(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[int, int]]:
    """Count the runner's connects in each round of trio's loop."""
    rounds = Rounds()
    per_round: dict[int, int] = {}
    real_begin = qmqpsource.source.connector.begin_connect

    def begin(*args: Any) -> Any:
        per_round[rounds.round] = per_round.get(rounds.round, 0) + 1
        return real_begin(*args)

    monkeypatch.setattr("qmqpsource.source.runner.begin_connect", begin)
    trio.lowlevel.add_instrument(rounds)
    yield per_round
    trio.lowlevel.remove_instrument(rounds)


async def test_many_sessions_connect_at_most_twice_per_round_at_once(
    connects_per_round: dict[int, int],
) -> None:
    sessions = UNPACED_SESSIONS + 72
    async with qmqp_server(backlog=1024) as server:
        result, _, _ = await run_in_process(server.target, sessions=sessions, messages=600)
    assert result.stats.accepted == 600
    assert sum(connects_per_round.values()) == 600
    # PER_ROUND turns a round; those woken for theirs connect in the round after.
    assert max(connects_per_round.values()) <= 2 * PER_ROUND


async def test_up_to_unpaced_sessions_connect_without_pacing(
    connects_per_round: dict[int, int],
) -> None:
    async with qmqp_server(backlog=1024) as server:
        result, _, _ = await run_in_process(server.target, sessions=UNPACED_SESSIONS,
                                            messages=UNPACED_SESSIONS)
    assert result.stats.accepted == UNPACED_SESSIONS
    # Every session starts in the first round and connects at once.
    assert max(connects_per_round.values()) > 2 * PER_ROUND
