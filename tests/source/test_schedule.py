"""Delays, deadlines, --rate schedules, --duration and stopping, on trio's clock.

Every test here runs under pytest-trio's ``autojump_clock`` (trio.testing.MockClock
with autojump_threshold=0): whenever every task waits, the clock jumps to the next
deadline. A 20 s timeout then takes no real time, nothing depends on how loaded the
machine is, and the times below are exact. The servers are in-process trio tasks, so
the clock only jumps when no byte is on its way.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
import trio.testing

from qmqpsource.results.outcome import Outcome
from qmqpsource.source.runner import DEADLINE_SLACK
from tests.qmqp_server import ServerState, never_reply, qmqp_server, read_request
from tests.source_support import make_runner
from tests.source_support import run_in_process as run

EXACT = 1e-9
MANY = 10**9  # -m for runs that --duration or a stop ends


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_fixed_delay_spaces_a_sessions_messages(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=1, messages=4, fixed_delay=0.25)
    assert result.stats.accepted == 4
    assert gaps(server.accept_times) == pytest.approx([0.25] * 3, abs=EXACT)


async def test_random_delay_is_what_was_drawn(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[float] = []
    real_uniform = random.Random.uniform

    def spy(self: random.Random, a: float, b: float) -> float:
        value = real_uniform(self, a, b)
        drawn.append(value)
        return value

    monkeypatch.setattr(random.Random, "uniform", spy)
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=1, messages=5, random_delay=3.0)
    assert result.stats.accepted == 5
    assert len(drawn) == 4  # no pause after the session's last message
    assert all(0 <= d <= 3.0 for d in drawn)
    assert gaps(server.accept_times) == pytest.approx(drawn, abs=EXACT)


async def test_a_step_times_out_after_timeout_seconds(autojump_clock: Any) -> None:
    async with qmqp_server(never_reply) as server:
        start = trio.current_time()
        result, _, _ = await run(server.target, sessions=1, messages=1, timeout=20.0)
        took = trio.current_time() - start
    assert result.failure == "timeout while receiving server reply"
    assert result.stats.counts == {Outcome.TIMEOUT: 1}
    assert took == pytest.approx(20.0, abs=EXACT)


async def test_deadlines_may_fire_at_most_the_slack_early(autojump_clock: Any) -> None:
    # The deadline moves only when it would move by more than the slack: a message that
    # comes right after an answered one may get slightly less than --timeout, never more.
    replies = iter([0.0])

    async def one_answer(stream: trio.SocketStream, state: ServerState) -> None:
        await read_request(stream)
        if next(replies, None) is not None:
            await stream.send_all(b"3:Kok,")
            return
        await trio.sleep_forever()

    async with qmqp_server(one_answer) as server:
        start = trio.current_time()
        result, _, _ = await run(server.target, sessions=1, messages=2, timeout=20.0)
        took = trio.current_time() - start
    assert result.failure == "timeout while receiving server reply"
    assert result.stats.accepted == 1
    assert 20.0 - DEADLINE_SLACK - EXACT <= took <= 20.0 + EXACT


async def test_timeouts_under_keep_going_count_and_the_session_goes_on(
    autojump_clock: Any,
) -> None:
    async with qmqp_server(never_reply) as server:
        start = trio.current_time()
        result, _, _ = await run(server.target, sessions=2, messages=5, timeout=5.0,
                                 keep_going=True)
        took = trio.current_time() - start
    assert result.failure is None
    assert result.stats.counts == {Outcome.TIMEOUT: 5}
    assert server.connections == 5
    assert took == pytest.approx(15.0, abs=EXACT)  # one session did three, one after another


async def test_each_step_has_its_own_deadline_and_pauses_have_none(autojump_clock: Any) -> None:
    # Each reply takes most of the timeout, and the pause between messages is longer than
    # it: only a deadline that restarts per step and stops during pauses lets these pass.
    async with qmqp_server(delay=0.5) as server:
        result, _, _ = await run(server.target, sessions=1, messages=3, timeout=0.6,
                                 fixed_delay=0.8)
    assert result.failure is None
    assert result.stats.accepted == 3
    assert gaps(server.accept_times) == pytest.approx([1.3, 1.3], abs=EXACT)


async def test_rate_starts_messages_on_the_schedule(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=4, messages=40, rate=40.0)
    assert result.stats.accepted == 40
    assert result.stats.behind_schedule == 0
    start = server.accept_times[0]
    assert [t - start for t in server.accept_times] == pytest.approx(
        [n / 40 for n in range(40)], abs=EXACT
    )


async def test_rate_latency_runs_from_the_schedule_when_the_server_is_slow(
    autojump_clock: Any,
) -> None:
    # One session, 20/s scheduled, each message taking 0.2 s: message n is scheduled at
    # 0.05 n but can start only at 0.2 n, so its latency is 0.2 + 0.15 n, not 0.2.
    async with qmqp_server(delay=0.2) as server:
        result, _, _ = await run(server.target, sessions=1, messages=8, rate=20.0)
    stats = result.stats
    assert stats.accepted == 8
    assert stats.behind_schedule == 7
    assert 1_250_000 <= stats.total.max <= 1_250_000 * 1.001  # n = 7, in microseconds
    assert 200_000 <= stats.reply.max <= 200_000 * 1.001  # the server's own 0.2 s
    assert gaps(server.accept_times) == pytest.approx([0.2] * 7, abs=EXACT)


async def test_duration_ends_the_run_and_lets_messages_in_flight_finish(
    autojump_clock: Any,
) -> None:
    # Two sessions, 0.05 s a message, 0.6 s: each starts messages at 0, 0.05, ... 0.55.
    async with qmqp_server(delay=0.05) as server:
        start = trio.current_time()
        result, _, _ = await run(server.target, sessions=2, messages=MANY, duration=0.6)
        took = trio.current_time() - start
    assert result.stats.accepted == 24 == len(server.requests)
    assert result.stats.cut_off == 0
    assert took == pytest.approx(0.6, abs=EXACT)


async def test_duration_with_rate_schedules_only_inside_the_run(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=4, messages=MANY, rate=40.0,
                                 duration=1.0)
    assert result.stats.accepted == 40  # 0, 1/40, ... 39/40: the 41st would be at 1.0


async def test_duration_ends_a_pause(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        start = trio.current_time()
        result, _, _ = await run(server.target, sessions=2, messages=MANY, duration=1.0,
                                 fixed_delay=100.0)
        took = trio.current_time() - start
    assert result.stats.accepted == 2
    assert took == pytest.approx(1.0, abs=EXACT)


async def stop_when_all_sent(
    server: ServerState, sessions: int, stop: Any, stopped_at: list[float]
) -> None:
    while server.connections < sessions:  # noqa: ASYNC110 - virtual time: no real polling
        await trio.sleep(0.001)
    stopped_at.append(trio.current_time())
    stop()


async def run_and_stop(server: ServerState, sessions: int, how: str, **options: Any) -> tuple[
    Any, float
]:
    """Run; stop it (runner.stop(2.0) or runner.abort()) once every session has sent.
    The result, and how long the run went on after the stop (trio time)."""
    runner, _, _ = await make_runner(server.target, sessions=sessions, messages=MANY,
                                     **options)
    stop = (lambda: runner.stop(2.0)) if how == "stop" else runner.abort
    stopped_at: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_all_sent, server, sessions, stop, stopped_at)
        with trio.fail_after(30):
            result = await runner.run()
    return result, trio.current_time() - stopped_at[0]


@pytest.mark.parametrize("how", ["stop", "abort"])
async def test_stopping_cuts_messages_in_flight(autojump_clock: Any, how: str) -> None:
    async with qmqp_server(never_reply) as server:
        result, took = await run_and_stop(server, 3, how)
    assert result.stats.cut_off == 3
    assert result.stats.attempted == 0
    assert server.connections == 3  # nothing started after the stop
    assert took == pytest.approx(2.0 if how == "stop" else 0.0, abs=EXACT)


async def test_a_stop_lets_messages_in_flight_finish_within_the_grace(
    autojump_clock: Any,
) -> None:
    async with qmqp_server(delay=1.5) as server:
        result, took = await run_and_stop(server, 3, "stop")
    assert result.stats.accepted == 3
    assert result.stats.cut_off == 0
    assert took == pytest.approx(1.5, abs=0.01)


async def test_a_stop_ends_pauses_at_once(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        result, took = await run_and_stop(server, 2, "stop", fixed_delay=100.0)
    assert result.stats.accepted == 2
    assert took == pytest.approx(0.0, abs=EXACT)


async def test_a_stop_before_the_run_starts_nothing(autojump_clock: Any) -> None:
    async with qmqp_server() as server:
        runner, _, _ = await make_runner(server.target, sessions=2, messages=10)
        runner.stop(2.0)
        result = await runner.run()
    assert result.stats.attempted == 0
    assert server.connections == 0


async def test_a_timeout_while_others_run_is_one_failure_and_ends_the_run(
    autojump_clock: Any,
) -> None:
    # The first session's message never gets a reply; the others' do, 1 s each, so
    # that they are in flight when the timeout cancels the run: they are cut off.
    async def second_is_silent(stream: trio.SocketStream, state: ServerState) -> None:
        await read_request(stream)
        state.raw.append(b"")
        if len(state.raw) == 1:
            await trio.sleep_forever()
        await trio.sleep(1.0)
        await stream.send_all(b"3:Kok,")

    async with qmqp_server(second_is_silent) as server:
        result, _, _ = await run(server.target, sessions=3, messages=MANY, timeout=10.5)
    assert result.failure == "timeout while receiving server reply"
    assert result.stats.counts[Outcome.TIMEOUT] == 1
    assert result.stats.accepted == 20  # two sessions, one a second, for 10 s
    assert result.stats.cut_off == 2
