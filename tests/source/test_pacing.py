"""Connect pacing on trio's clock: a burst, then a rate; tokens back when connections close;
turns in order, every tick. All on MockClock (pytest-trio's autojump_clock), so the
times are exact and the machine's load does not matter.

Times and rates are powers of two where a test compares them exactly: their sums and
products are exact in floating point.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

import qmqpsource.source.connector
from qmqpsource.source.pacing import BURST, RATE, UNPACED_SESSIONS, ConnectPacer
from tests.qmqp_server import qmqp_server
from tests.source_support import run_in_process

STEP = 1 / 1024  # seconds: exact in binary


async def test_a_burst_at_once_then_the_rate(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1024, burst=4)
    assert [pacer.try_take() for _ in range(5)] == [True] * 4 + [False]
    await trio.sleep(3.5 * STEP)  # 3.5 tokens' time: 3 whole ones
    assert [pacer.try_take() for _ in range(4)] == [True] * 3 + [False]


async def test_tokens_never_pile_up_past_the_burst(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1024, burst=4)
    await trio.sleep(10)
    pacer.give_back()
    assert [pacer.try_take() for _ in range(5)] == [True] * 4 + [False]


async def test_a_token_given_back_is_taken_again_without_waiting(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1024, burst=4)
    assert all(pacer.try_take() for _ in range(4))
    pacer.give_back()
    pacer.give_back()
    # No time passes on MockClock here: only the two given back are there.
    assert [pacer.try_take() for _ in range(3)] == [True, True, False]


async def take_turns(pacer: ConnectPacer, count: int) -> list[float]:
    """``count`` sessions wait for a turn, in order; the trio time each got its turn."""
    turns = [math.nan] * count

    async def session(n: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not pacer.try_take():
            await pacer.take()
        turns[n] = trio.current_time()

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as sessions:
            for n in range(count):
                await sessions.start(session, n)
                await trio.testing.wait_all_tasks_blocked()  # parked before the next comes
            # No deadline yet, so no time has passed: the ticks start from here.
            nursery.start_soon(pacer.run)
        nursery.cancel_scope.cancel()
    return turns


async def test_waiters_get_turns_in_order_every_tick(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1024, burst=4, tick=2 * STEP)  # 2 tokens a tick
    start = trio.current_time()
    turns = await take_turns(pacer, 11)
    # Four at once (the burst), then two at each tick, first come first served.
    ticks = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert [turn - start for turn in turns] == [n * 2 * STEP for n in ticks]


async def test_a_tick_hands_out_no_more_than_the_burst(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1024, burst=2, tick=4 * STEP)  # 4 tokens' time a tick
    start = trio.current_time()
    turns = await take_turns(pacer, 6)
    assert [turn - start for turn in turns] == [n * 4 * STEP for n in [0, 0, 1, 1, 2, 2]]


async def test_tokens_given_back_go_to_those_waiting_first(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1 / 1024, burst=2, tick=STEP)  # time adds none here
    assert pacer.try_take() and pacer.try_take()
    got: list[float] = []

    async def waiter() -> None:
        await pacer.take()
        got.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        pacer.give_back()
        assert not pacer.try_take()  # one waits: the token is the waiter's
        await trio.sleep(10 * STEP)
        assert got == [start + STEP]  # at the next tick
        nursery.cancel_scope.cancel()


async def test_a_waiter_cancelled_in_the_queue_takes_no_token(autojump_clock: Any) -> None:
    pacer = ConnectPacer(rate=1 / 1024, burst=1, tick=STEP)
    assert pacer.try_take()
    got: list[str] = []

    async def waiter(name: str) -> None:
        await pacer.take()
        got.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        async with trio.open_nursery() as gone:
            gone.start_soon(waiter, "cancelled")
            await trio.testing.wait_all_tasks_blocked()
            gone.cancel_scope.cancel()
        nursery.start_soon(waiter, "last")
        await trio.testing.wait_all_tasks_blocked()
        pacer.give_back()
        await trio.sleep(10 * STEP)
        nursery.cancel_scope.cancel()
    assert got == ["last"]
    assert not pacer.try_take()  # "last" holds the one token there was


class TaskSteps(trio.abc.Instrument):
    """How many times the task of a given coroutine ran."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.name):
            self.steps += 1


@pytest.fixture
async def pacer_steps() -> AsyncIterator[TaskSteps]:
    steps = TaskSteps("ConnectPacer.run")
    trio.lowlevel.add_instrument(steps)
    yield steps
    trio.lowlevel.remove_instrument(steps)


async def test_the_pacer_ticks_only_while_sessions_wait(
    autojump_clock: Any, pacer_steps: TaskSteps
) -> None:
    pacer = ConnectPacer(rate=1024, burst=1, tick=STEP)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await trio.sleep(1)  # 1,024 ticks' time, no one waiting
        assert pacer_steps.steps == 1  # started, and waits to be wanted
        assert pacer.try_take()
        await pacer.take()  # the next tick's token
        await trio.sleep(1)
        assert pacer_steps.steps <= 4  # woken, a tick, back to waiting
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("options", "says"),
    [({"rate": 0}, "rate"), ({"rate": math.inf}, "rate"), ({"burst": 0}, "burst"),
     ({"tick": 0.0}, "tick")],
)
def test_parameters_out_of_bounds_are_refused(options: dict[str, float], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ConnectPacer(**options)  # type: ignore[arg-type]


@pytest.fixture
def connect_times(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The trio time of each of the runner's connects."""
    times: list[float] = []
    real_begin = qmqpsource.source.connector.begin_connect

    def begin(*args: Any) -> Any:
        times.append(trio.current_time())
        return real_begin(*args)

    monkeypatch.setattr("qmqpsource.source.runner.begin_connect", begin)
    return times


async def test_against_a_server_that_answers_late_connects_follow_the_rate(
    autojump_clock: Any, connect_times: list[float]
) -> None:
    sessions = UNPACED_SESSIONS + 72
    async with qmqp_server(delay=1.0, backlog=1024) as server:
        start = trio.current_time()
        result, _, _ = await run_in_process(server.target, sessions=sessions,
                                            messages=sessions)
    assert result.stats.accepted == sessions
    offsets = sorted(t - start for t in connect_times)
    assert offsets.count(0.0) == BURST
    for n, offset in enumerate(offsets, 1):
        assert n <= BURST + RATE * offset + 1e-6  # never ahead of the tokens there were
    # Not held to BURST at once: the server had every session's message before it
    # answered the first, as -s asks.
    assert offsets[-1] < 1.0
    assert server.max_pending == sessions


async def test_tokens_come_back_when_connections_close(autojump_clock: Any) -> None:
    # With tokens only from time, 2,000 messages would take (2000 - 64) / 5000 s.
    async with qmqp_server(backlog=1024) as server:
        start = trio.current_time()
        result, _, _ = await run_in_process(server.target, sessions=UNPACED_SESSIONS + 72,
                                            messages=2000)
        took = trio.current_time() - start
    assert result.stats.accepted == 2000
    assert took < (2000 - BURST) / RATE / 2


async def test_refused_connects_give_their_tokens_back(autojump_clock: Any) -> None:
    with trio.socket.socket() as unused:
        await unused.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{unused.getsockname()[1]}"  # bound, not listening: refused
        start = trio.current_time()
        result, _, _ = await run_in_process(target, sessions=UNPACED_SESSIONS + 72,
                                            messages=1000, keep_going=True)
        took = trio.current_time() - start
    assert result.stats.failed == 1000
    assert took < (1000 - BURST) / RATE / 2


async def test_up_to_unpaced_sessions_connect_at_once(
    autojump_clock: Any, connect_times: list[float]
) -> None:
    async with qmqp_server(delay=1.0, backlog=1024) as server:
        start = trio.current_time()
        result, _, _ = await run_in_process(server.target, sessions=UNPACED_SESSIONS,
                                            messages=UNPACED_SESSIONS)
    assert result.stats.accepted == UNPACED_SESSIONS
    assert [t - start for t in connect_times] == [0.0] * UNPACED_SESSIONS
