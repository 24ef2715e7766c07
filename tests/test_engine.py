"""The engine itself: waits, deadlines, pauses, gates, cancellation, fairness to trio.

Only socketpairs; every run bounded by trio.fail_after; no timing is asserted beyond
"not earlier than" (a wait never ends before its time) and step/checkpoint counts.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from qmqpsource.engine import (
    CHECKPOINT_STEPS,
    CONNECTS_PER_ROUND,
    SCAN_INTERVAL,
    Engine,
    Gate,
    Session,
    StepTimeout,
)
from qmqpsource.waits import GATE, PAUSE, READABLE, SLEEP, WRITABLE, Steps, drive

# Every run in this file ends well inside this; a hang fails the test instead.
LIMIT = 3.0
# A time no test reaches: a wait on it ends only by a deadline, a wake-up or a close.
FAR = 60.0

Pair = tuple[socket.socket, socket.socket]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def socketpair() -> Pair:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@pytest.fixture
def pairs() -> Iterator[Callable[[], Pair]]:
    """Non-blocking socketpairs, closed when the test is over."""
    made: list[socket.socket] = []

    def make() -> Pair:
        a, b = socketpair()
        made.extend((a, b))
        return a, b

    yield make
    for sock in made:
        sock.close()


def fill(sock: socket.socket) -> None:
    """Send until the send buffer is full."""
    chunk = bytes(65536)
    try:
        while True:
            sock.send(chunk)
    except BlockingIOError:
        pass
    assert not select.select([], [sock], [], 0)[1]


def drain(sock: socket.socket) -> int:
    """Read everything there is; how many bytes."""
    total = 0
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return total
            total += len(data)
    except BlockingIOError:
        return total


def later(delay: float) -> float:
    return time.perf_counter() + delay


# -- descriptors ---------------------------------------------------------------------------


def endless_wait(kind: str, sock: socket.socket, gate: Gate) -> Session:
    """One wait of the named kind that does not end by itself (the gate is held)."""
    if kind == "readable":
        yield READABLE, sock.fileno()
    elif kind == "writable":
        fill(sock)
        yield WRITABLE, sock.fileno()
    elif kind == "sleep":
        yield SLEEP, later(FAR)
    elif kind == "pause":
        yield PAUSE, later(FAR)
    else:
        yield GATE, gate


async def test_readable_resumes_only_once_the_peer_writes(pairs: Callable[[], Pair]) -> None:
    a, b = pairs()
    engine = Engine()
    events: list[str] = []

    def reader() -> Session:
        yield READABLE, a.fileno()
        events.append("resumed")
        events.append(a.recv(16).decode())

    async def writer() -> None:
        await trio.sleep(0.02)  # the engine sits idle on its epoll set meanwhile
        events.append("written")
        b.send(b"data")

    engine.spawn(reader())
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await engine.run()
    assert events == ["written", "resumed", "data"]


async def test_writable_on_a_full_buffer_resumes_once_the_peer_drains(
    pairs: Callable[[], Pair],
) -> None:
    a, b = pairs()
    engine = Engine()
    events: list[str] = []

    def writer() -> Session:
        fill(b)
        yield WRITABLE, b.fileno()
        events.append("resumed")
        assert b.send(b"more") == 4

    async def drainer() -> None:
        await trio.sleep(0.02)
        assert drain(a) > 0
        events.append("drained")

    engine.spawn(writer())
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drainer)
            await engine.run()
    assert events == ["drained", "resumed"]
    assert a.recv(16) == b"more"


async def test_many_sessions_on_socketpairs_all_complete() -> None:
    before = open_fds()
    engine = Engine()
    done: list[str] = []

    def echo(a: socket.socket) -> Session:
        try:
            yield READABLE, a.fileno()
            data = a.recv(64)
            yield WRITABLE, a.fileno()
            a.send(data.upper())
            done.append("echo")
        finally:
            a.close()

    def client(b: socket.socket, i: int) -> Session:
        try:
            yield SLEEP, later(0.001 * (i % 7))
            yield WRITABLE, b.fileno()
            b.send(b"m%d" % i)
            yield READABLE, b.fileno()
            assert b.recv(64) == b"M%d" % i
            done.append("client")
        finally:
            b.close()

    for i in range(200):
        a, b = socketpair()
        engine.spawn(echo(a))
        engine.spawn(client(b, i))
    with trio.fail_after(LIMIT):
        await engine.run()
    assert sorted(done) == ["client"] * 200 + ["echo"] * 200
    assert open_fds() == before  # the sockets and the engine's epoll descriptor


async def test_spawn_from_another_task_while_running(pairs: Callable[[], Pair]) -> None:
    a, b = pairs()
    engine = Engine()
    log: list[str] = []

    def reader() -> Session:
        yield READABLE, a.fileno()
        log.append(a.recv(16).decode())

    def writer() -> Session:
        yield WRITABLE, b.fileno()
        b.send(b"late")

    async def spawn_later() -> None:
        await trio.sleep(0.01)  # the engine is idle on its one fd wait by now
        engine.spawn(writer())

    engine.spawn(reader())
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spawn_later)
            await engine.run()
    assert log == ["late"]


# -- timers --------------------------------------------------------------------------------


async def test_sleep_resumes_no_earlier_than_its_time_and_timers_fire_in_order() -> None:
    engine = Engine()
    t0 = time.perf_counter()
    resumed: list[tuple[str, float, float]] = []

    def sleeper(name: str, when: float) -> Session:
        yield SLEEP, when
        resumed.append((name, when, time.perf_counter()))

    offsets = {"d": 0.04, "past": -1.0, "c": 0.03, "a": 0.01, "now": 0.0, "b": 0.02}
    for name, offset in offsets.items():
        engine.spawn(sleeper(name, t0 + offset))
    with trio.fail_after(LIMIT):
        await engine.run()
    assert [name for name, _, _ in resumed] == ["past", "now", "a", "b", "c", "d"]
    for name, when, at in resumed:
        assert at >= when, name


async def test_wake_pauses_ends_pauses_early_but_not_sleeps() -> None:
    engine = Engine()
    t0 = time.perf_counter()
    parked = trio.Event()
    started = 0
    log: list[tuple[str, float]] = []

    def park() -> None:
        nonlocal started
        started += 1
        if started == 3:
            parked.set()

    def far_pause() -> Session:
        park()
        yield PAUSE, t0 + FAR
        log.append(("far pause", time.perf_counter()))

    def near_pause() -> Session:
        park()
        yield PAUSE, t0 + 0.03
        log.append(("near pause", time.perf_counter()))
        # Woken early or not, the pause's own timer must not end this sleep early.
        yield SLEEP, t0 + 0.08
        log.append(("sleep after pause", time.perf_counter()))

    def sleeper() -> Session:
        park()
        yield SLEEP, t0 + 0.05
        log.append(("sleep", time.perf_counter()))

    for session in (far_pause(), near_pause(), sleeper()):
        engine.spawn(session)

    async def stopper() -> None:
        await parked.wait()
        engine.wake_pauses()

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stopper)
            await engine.run()
    at = dict(log)
    assert set(at) == {"far pause", "near pause", "sleep", "sleep after pause"}
    assert at["far pause"] < t0 + FAR
    assert at["far pause"] < at["sleep"]
    assert at["sleep"] >= t0 + 0.05
    assert at["sleep after pause"] >= t0 + 0.08
    assert [name for name, _ in log].count("near pause") == 1


# -- deadlines -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["readable", "writable", "sleep", "pause", "gate"])
async def test_a_passed_deadline_throws_step_timeout_into_any_wait(
    kind: str, pairs: Callable[[], Pair]
) -> None:
    a, _ = pairs()
    gate = Gate(1)
    assert gate.try_acquire()  # held by the test: a GATE wait cannot end by itself
    engine = Engine()
    log: list[str] = []
    caught_at: list[float] = []

    def session() -> Session:
        try:
            yield from endless_wait(kind, a, gate)
            log.append("resumed")
        except StepTimeout:
            caught_at.append(time.perf_counter())
            log.append("timeout")
        if kind == "gate":
            # The waiter left the queue: the slot the test gives back goes to the pool.
            engine.release(gate)
            log.append(f"free slot: {gate.try_acquire()}")
        # The deadline is spent: this wait spans a deadline scan and ends by itself.
        yield SLEEP, later(1.5 * SCAN_INTERVAL)
        log.append("finished")

    task = engine.spawn(session())
    deadline = task.deadline = later(0.01)
    with trio.fail_after(LIMIT):
        await engine.run()
    expected = ["timeout", "finished"]
    if kind == "gate":
        expected.insert(1, "free slot: True")
    assert log == expected
    assert caught_at[0] >= deadline
    assert task.deadline == math.inf


async def test_a_timed_out_fd_wait_is_dropped(pairs: Callable[[], Pair]) -> None:
    a, b = pairs()
    signal, signal_peer = pairs()
    c, c_peer = pairs()
    engine = Engine()
    log: list[str] = []

    def victim() -> Session:
        try:
            yield READABLE, a.fileno()
            log.append("resumed on a")
        except StepTimeout:
            log.append("timeout")
        signal_peer.send(b"!")
        while True:
            yield READABLE, c.fileno()
            try:
                log.append(c.recv(16).decode())
                return
            except BlockingIOError:
                log.append("resumed with nothing on c")

    def helper() -> Session:
        yield READABLE, signal.fileno()
        b.send(b"late")  # a is ready now: nobody may be resumed for it
        log.append("wrote a")
        yield SLEEP, later(0.02)  # the engine polls a few times meanwhile
        c_peer.send(b"c")

    engine.spawn(victim()).deadline = later(0.01)
    engine.spawn(helper())
    with trio.fail_after(LIMIT):
        await engine.run()
    assert log == ["timeout", "wrote a", "c"]


# -- gates ---------------------------------------------------------------------------------


def test_gate_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Gate(0)


async def test_gate_hands_slots_over_in_fifo_order_and_nobody_jumps_the_queue() -> None:
    engine = Engine()
    gate = Gate(2)
    order: list[str] = []
    jumped: list[str] = []

    def holder(name: str) -> Session:
        assert gate.try_acquire()
        yield SLEEP, time.perf_counter()  # the waiters queue meanwhile
        engine.release(gate)  # to the queue's head, not to the pool
        if gate.try_acquire():
            jumped.append(name)

    def waiter(name: str) -> Session:
        yield GATE, gate
        order.append(name)
        if gate.try_acquire():
            jumped.append(name)
        yield SLEEP, time.perf_counter()
        engine.release(gate)

    def latecomer(name: str) -> Session:
        # Tries again and again while waiters queue and slots are handed over: as long
        # as two waiters have not had their turn yet, no slot may be taken.
        while len(order) < len(names) - 1:
            if gate.try_acquire():
                jumped.append(name)
                engine.release(gate)
            yield SLEEP, time.perf_counter()

    engine.spawn(holder("h1"))
    engine.spawn(holder("h2"))
    names = [f"w{i}" for i in range(8)]
    for name in names:
        engine.spawn(waiter(name))
    engine.spawn(latecomer("late"))
    with trio.fail_after(LIMIT):
        await engine.run()
    assert order == names
    assert jumped == []
    # Every slot is back in the pool.
    assert gate.try_acquire() and gate.try_acquire() and not gate.try_acquire()


async def test_waiters_closed_while_queued_do_not_swallow_a_slot() -> None:
    gate = Gate(1)
    engine = Engine()
    exits: list[str] = []

    def holder() -> Session:
        assert gate.try_acquire()
        yield SLEEP, later(FAR)

    def waiter(name: str) -> Session:
        try:
            yield GATE, gate
            exits.append(f"{name} resumed")
        except GeneratorExit:
            exits.append(f"{name} closed")
            raise

    def canceller() -> Session:
        yield SLEEP, time.perf_counter()  # after everyone else queued
        engine.cancel()

    engine.spawn(holder())
    engine.spawn(waiter("w1"))
    engine.spawn(waiter("w2"))
    engine.spawn(canceller())
    with trio.fail_after(LIMIT):
        await engine.run()
    assert sorted(exits) == ["w1 closed", "w2 closed"]

    # The holder's slot, given back later (by another engine), goes to the pool: the
    # closed waiters are no longer queued for it.
    after = Engine()
    free: list[bool] = []

    def release() -> Session:
        after.release(gate)
        free.append(gate.try_acquire())
        yield SLEEP, time.perf_counter()

    after.spawn(release())
    with trio.fail_after(LIMIT):
        await after.run()
    assert free == [True]


async def test_a_slot_handed_to_a_waiter_closed_before_it_ran_is_not_lost() -> None:
    gate = Gate(1)
    engine = Engine()
    log: list[str] = []

    def holder() -> Session:
        assert gate.try_acquire()
        yield SLEEP, time.perf_counter()  # the waiter queues meanwhile
        # As Runner._deliver does on a failed connect: release, then cancel the run.
        engine.release(gate)
        engine.cancel()
        yield SLEEP, later(FAR)

    def waiter() -> Session:
        yield GATE, gate
        log.append("waiter holds the slot")
        try:
            yield SLEEP, later(FAR)
        finally:
            engine.release(gate)

    engine.spawn(holder())
    engine.spawn(waiter())
    with trio.fail_after(LIMIT):
        await engine.run()
    assert log == []
    assert gate.try_acquire()  # nobody holds it any more


async def test_a_gate_wait_on_a_free_gate_resumes_at_once() -> None:
    engine = Engine()
    gate = Gate(1)
    log: list[str] = []

    def session() -> Session:
        yield GATE, gate
        log.append("holds the slot")
        engine.release(gate)

    engine.spawn(session())
    with trio.move_on_after(0.2):
        await engine.run()
    assert log == ["holds the slot"]


# -- closing -------------------------------------------------------------------------------

KINDS = ("readable", "writable", "sleep", "pause", "holder", "gated", "busy")


class Zoo:
    """Sessions in flight on every kind of wait, one of them busy; each owns a socketpair."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = Gate(1)
        self.exits: dict[str, str] = {}
        self.finals: dict[str, float] = {}
        self.parked = trio.Event()
        for kind in KINDS:
            engine.spawn(self._session(kind))

    def _session(self, kind: str) -> Session:
        a, b = socketpair()
        try:
            yield from self._wait(kind, a, b)
        except GeneratorExit:
            self.exits[kind] = "GeneratorExit"
            raise
        except BaseException as exc:
            self.exits[kind] = type(exc).__name__
            raise
        else:
            self.exits[kind] = "returned"
        finally:
            a.close()
            b.close()
            self.finals[kind] = time.perf_counter()

    def _wait(self, kind: str, a: socket.socket, b: socket.socket) -> Session:
        if kind in ("readable", "writable", "sleep", "pause"):
            yield from endless_wait(kind, a, self.gate)
        elif kind == "holder":
            assert self.gate.try_acquire()
            yield SLEEP, later(FAR)
        elif kind == "gated":
            yield GATE, self.gate
        else:
            self.parked.set()  # spawned last: every other one waits by now
            while True:
                a.send(b"p")
                yield READABLE, b.fileno()
                assert b.recv(1) == b"p"

    def assert_all_closed(self) -> None:
        assert self.exits == dict.fromkeys(KINDS, "GeneratorExit")
        assert set(self.finals) == set(KINDS)


@pytest.mark.parametrize("stop", ["cancel in a step", "cancel", "cancel_at", "trio"])
async def test_every_way_of_stopping_closes_every_session(stop: str) -> None:
    before = open_fds()
    engine = Engine()
    zoo = Zoo(engine)
    cancel_at: list[float] = []
    extra: list[str] = []

    def canceller() -> Session:
        try:
            yield SLEEP, time.perf_counter()
            engine.cancel()
            extra.append("cancelled")
            yield SLEEP, later(FAR)
        except GeneratorExit:
            extra.append("GeneratorExit")
            raise

    async def from_outside() -> None:
        await zoo.parked.wait()
        if stop == "cancel":
            engine.cancel()
        else:
            cancel_at.append(later(0.02))
            engine.cancel_at(cancel_at[0])

    with trio.fail_after(LIMIT):
        if stop == "cancel in a step":
            engine.spawn(canceller())
            await engine.run()
            assert extra == ["cancelled", "GeneratorExit"]
        elif stop == "trio":
            with trio.move_on_after(0.05) as scope:
                await engine.run()
            assert scope.cancelled_caught
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(from_outside)
                await engine.run()
    zoo.assert_all_closed()
    if cancel_at:
        assert min(zoo.finals.values()) >= cancel_at[0]
    assert open_fds() == before


async def test_an_exception_in_a_session_propagates_and_closes_the_others() -> None:
    before = open_fds()
    engine = Engine()
    zoo = Zoo(engine)

    def boom() -> Session:
        yield SLEEP, time.perf_counter()
        raise RuntimeError("boom")

    engine.spawn(boom())
    with trio.fail_after(LIMIT), pytest.raises(RuntimeError, match="boom"):
        await engine.run()
    zoo.assert_all_closed()
    assert open_fds() == before


@pytest.mark.parametrize("kind", [5, 99])
async def test_an_unknown_wait_makes_run_raise_value_error(kind: int) -> None:
    before = open_fds()
    engine = Engine()
    zoo = Zoo(engine)

    def bad() -> Session:
        yield SLEEP, time.perf_counter()
        yield kind, None

    engine.spawn(bad())
    with trio.fail_after(LIMIT), pytest.raises(ValueError, match="yielded"):
        await engine.run()
    zoo.assert_all_closed()
    assert open_fds() == before


async def test_a_negative_wait_kind_is_rejected(pairs: Callable[[], Pair]) -> None:
    a, _ = pairs()
    engine = Engine()

    def bad() -> Session:
        yield -1, a.fileno()

    engine.spawn(bad())
    with trio.fail_after(LIMIT), pytest.raises(ValueError):
        await engine.run()


async def test_no_session_steps_after_cancel_from_another_task() -> None:
    engine = Engine()
    parked = trio.Event()
    log: list[str] = []

    def pauser() -> Session:
        try:
            parked.set()
            yield PAUSE, later(FAR)
            log.append("stepped after cancel()")
            yield SLEEP, later(FAR)
        except GeneratorExit:
            log.append("GeneratorExit")
            raise

    engine.spawn(pauser())
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.run)
            await parked.wait()
            engine.wake_pauses()
            engine.cancel()
    assert log == ["GeneratorExit"]


async def test_no_session_starts_after_cancel_before_run() -> None:
    engine = Engine()
    log: list[str] = []

    def session() -> Session:
        log.append("started")
        yield SLEEP, time.perf_counter()

    engine.spawn(session())
    engine.cancel()
    with trio.fail_after(LIMIT):
        await engine.run()
    assert log == []


async def test_no_session_steps_after_a_timed_out_session_cancels(
    pairs: Callable[[], Pair],
) -> None:
    engine = Engine()
    c, c_peer = pairs()
    log: list[str] = []

    def late(fd: int) -> Session:
        try:
            yield READABLE, fd
        except StepTimeout:
            log.append("StepTimeout")
            c_peer.send(b"x")  # the bystander's descriptor is ready now
            engine.cancel()  # as Runner._failed does
            yield SLEEP, later(FAR)
        except GeneratorExit:
            log.append("GeneratorExit")
            raise

    def bystander() -> Session:
        try:
            yield READABLE, c.fileno()
            log.append("bystander stepped")
            yield SLEEP, later(FAR)
        except GeneratorExit:
            log.append("GeneratorExit")
            raise

    deadline = later(0.01)
    for _ in range(2):
        a, _ = pairs()
        engine.spawn(late(a.fileno())).deadline = deadline
    engine.spawn(bystander())
    with trio.fail_after(LIMIT):
        await engine.run()
    assert sorted(log) == ["GeneratorExit", "GeneratorExit", "StepTimeout"]


# -- fairness to trio ------------------------------------------------------------------------


async def test_other_trio_tasks_run_while_the_engine_is_busy() -> None:
    engine = Engine()
    rounds = 500
    steps = 0
    ticks = 0
    socks: list[socket.socket] = []

    def ping(a: socket.socket) -> Session:
        nonlocal steps
        for _ in range(rounds):
            a.send(b"x")
            yield READABLE, a.fileno()
            steps += 1
            assert a.recv(1) == b"y"

    def pong(b: socket.socket) -> Session:
        nonlocal steps
        for _ in range(rounds):
            yield READABLE, b.fileno()
            steps += 1
            assert b.recv(1) == b"x"
            b.send(b"y")

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    try:
        for _ in range(4):
            a, b = socketpair()
            socks.extend((a, b))
            engine.spawn(ping(a))
            engine.spawn(pong(b))
        with trio.fail_after(LIMIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await engine.run()
                nursery.cancel_scope.cancel()
    finally:
        for sock in socks:
            sock.close()
    assert steps == 2 * 4 * rounds
    # The engine hands control back at least every CHECKPOINT_STEPS steps (plus the few
    # one pass over the ready descriptors may add).
    assert ticks >= steps // (2 * CHECKPOINT_STEPS)


async def test_a_dropped_fd_wait_does_not_make_the_idle_engine_spin(
    pairs: Callable[[], Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pairs()
    engine = Engine()
    idle_waits = 0
    real_wait_readable = trio.lowlevel.wait_readable

    async def counting_wait_readable(fd: Any) -> None:
        nonlocal idle_waits
        idle_waits += 1
        await real_wait_readable(fd)

    monkeypatch.setattr(trio.lowlevel, "wait_readable", counting_wait_readable)

    def session() -> Session:
        with contextlib.suppress(StepTimeout):
            yield READABLE, a.fileno()
        b.send(b"late")  # the dropped wait's descriptor is ready now
        yield SLEEP, later(4 * SCAN_INTERVAL)

    engine.spawn(session()).deadline = later(0.01)
    with trio.fail_after(LIMIT):
        await engine.run()
    # Idle, the engine wakes for its timer and its deadline scans: a handful of times.
    assert idle_waits < 50


# -- descriptors reused --------------------------------------------------------------------


async def test_a_descriptor_number_reused_after_close() -> None:
    engine = Engine()
    log: list[str] = []
    roles: dict[str, socket.socket] = {}
    spare: list[socket.socket] = []
    reused = trio.Event()

    def session() -> Session:
        a, b = socketpair()
        b.send(b"1")
        yield READABLE, a.fileno()  # a's number is in the epoll set now
        assert a.recv(1) == b"1"
        old = a.fileno()
        # The engine is not told: closing takes the file out of its epoll set.
        a.close()
        b.close()
        while True:  # the lowest free number comes first: it is a's (or lower, once)
            c, d = socketpair()
            spare.extend((c, d))
            if old in (c.fileno(), d.fileno()):
                break
        roles["new"], roles["peer"] = (c, d) if c.fileno() == old else (d, c)
        new = roles["new"]
        assert new.fileno() == old
        reused.set()
        yield WRITABLE, new.fileno()
        log.append("writable")
        yield READABLE, new.fileno()
        log.append(new.recv(16).decode())

    async def writer() -> None:
        await reused.wait()
        await trio.sleep(0.01)
        log.append("written")
        roles["peer"].send(b"2")

    engine.spawn(session())
    try:
        with trio.fail_after(LIMIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                await engine.run()
    finally:
        for sock in spare:
            sock.close()
    assert log == ["writable", "written", "2"]


# -- drive() ---------------------------------------------------------------------------------


async def test_drive_runs_a_generator_and_returns_its_value(pairs: Callable[[], Pair]) -> None:
    a, b = pairs()
    log: list[str] = []

    def steps() -> Steps[str]:
        try:
            yield SLEEP, later(0.001)
            yield PAUSE, time.perf_counter()
            yield WRITABLE, a.fileno()
            yield READABLE, a.fileno()
            return a.recv(16).decode()
        finally:
            log.append("finally")

    async def writer() -> None:
        await trio.sleep(0.02)
        log.append("written")
        b.send(b"value")

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            assert await drive(steps()) == "value"
    assert log == ["written", "finally"]


@pytest.mark.parametrize("kind", [READABLE, SLEEP])
async def test_drive_closes_the_generator_when_cancelled(
    kind: int, pairs: Callable[[], Pair]
) -> None:
    a, _ = pairs()
    log: list[str] = []

    def steps() -> Steps[None]:
        try:
            yield (kind, a.fileno() if kind == READABLE else later(FAR))
            log.append("resumed")
        except GeneratorExit:
            log.append("GeneratorExit")
            raise
        finally:
            log.append("finally")

    with trio.fail_after(LIMIT):
        with trio.move_on_after(0.02) as scope:
            await drive(steps())
    assert scope.cancelled_caught
    assert log == ["GeneratorExit", "finally"]


async def test_drive_refuses_a_gate_and_closes_the_generator() -> None:
    log: list[str] = []

    def steps() -> Steps[None]:
        try:
            yield GATE, Gate(1)
        finally:
            log.append("finally")

    with trio.fail_after(LIMIT), pytest.raises(ValueError, match="cannot wait"):
        await drive(steps())
    assert log == ["finally"]


async def test_connection_slots_go_back_at_once_only_a_few_per_round() -> None:
    """release_connect hands a slot on at once CONNECTS_PER_ROUND times per round of
    the loop; the next waiter gets it once the engine has polled (seen I/O ready)."""
    engine = Engine()
    gate = Gate(1)
    log: list[tuple[str, int]] = []
    count = CONNECTS_PER_ROUND + 3
    pairs = [socket.socketpair() for _ in range(count)]
    for _, writer in pairs:
        writer.send(b"x")  # so each reader is readable: its wait ends at the next poll

    def attempt(n: int) -> Session:
        yield GATE, gate
        log.append(("connected", n))
        engine.release_connect(gate)
        yield READABLE, pairs[n][0].fileno()
        log.append(("polled", n))

    with contextlib.ExitStack() as stack:
        for reader, writer in pairs:
            stack.enter_context(reader)
            stack.enter_context(writer)
        for n in range(count):
            engine.spawn(attempt(n))
        with trio.fail_after(LIMIT):
            await engine.run()
    connected = [n for kind, n in log if kind == "connected"]
    assert sorted(connected) == list(range(count))
    first_poll = next(i for i, (kind, _) in enumerate(log) if kind == "polled")
    # Before any poll: the free slot's holder, then the CONNECTS_PER_ROUND it handed on.
    assert [kind for kind, _ in log[:first_poll]] == ["connected"] * (CONNECTS_PER_ROUND + 1)
