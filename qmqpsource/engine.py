"""Many sessions multiplexed in one trio task, off one epoll set.

A trio task per session costs a trip through trio's scheduler (and two epoll_ctl calls)
for every wait: on loopback that was more than the rest of a message's Python path put
together. Here sessions are generators that yield what they wait for, and one trio
task drives them all: it polls its own epoll set without blocking while there is work,
hands control back to trio at least every millisecond, and when nothing is ready waits
on the epoll descriptor itself with trio's wait_readable, under a deadline (the next
timer or the next deadline scan).

Structured all the same: the engine runs inside its caller's task and nursery; closing
it (cancellation from outside, ``cancel()``, an error in a session) closes every
session generator, whose ``finally`` blocks close their sockets, before run() returns.

A session yields the waits of waits.py. Its ``Task.deadline`` (a perf_counter() time;
inf for none) bounds its waits of any kind: past it, the engine throws StepTimeout
into the generator.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import select
import time
from collections import deque
from collections.abc import Generator
from typing import TypeAlias

import trio

from qmqpsource.waits import GATE, PAUSE, READABLE, SLEEP, WRITABLE, Wait

__all__ = ["Engine", "Gate", "Session", "StepTimeout", "Task"]

Session: TypeAlias = Generator[Wait, None, None]

# How long, and for how many session steps at most, the engine may keep trio's other
# tasks (signals, progress) waiting.
CHECKPOINT_INTERVAL = 0.001
CHECKPOINT_STEPS = 64
# A timer due sooner than this is waited for in select(), blocking trio's other tasks
# for at most this long, because trio's own waits would wake up to 1 ms late.
SHORT_WAIT = 0.002
# Connection attempts whose slot goes back at once in one round of the loop (see
# Engine.release_connect).
CONNECTS_PER_ROUND = 16
# Deadlines are checked this often at most: a step's timeout fires up to this late.
SCAN_INTERVAL = 0.05

_perf_counter = time.perf_counter
_select = select.select
_IN = select.EPOLLIN | select.EPOLLONESHOT
_OUT = select.EPOLLOUT | select.EPOLLONESHOT

# Where a task is: what close() must undo.
_RUNNABLE = 0
_ON_FD = 1
_ON_TIMER = 2
_ON_GATE = 3
_DONE = 4


class StepTimeout(Exception):
    """Thrown into a session whose deadline passed while it waited."""


class Task:
    """One session generator and what it waits for."""

    __slots__ = ("deadline", "fd", "gate", "gen", "pausing", "place", "timer")

    def __init__(self, gen: Session) -> None:
        self.gen = gen
        self.deadline = math.inf
        self.place = _RUNNABLE
        self.fd = -1  # the descriptor waited on, while place is _ON_FD
        self.timer = 0  # the live timer entry's sequence number, while _ON_TIMER
        self.pausing = False  # a PAUSE, which wake_pauses() ends, while _ON_TIMER
        self.gate: Gate | None = None  # queued at, or handed a slot of (until it runs)


class Gate:
    """A FIFO of slots (connection attempts in flight); a freed slot goes to the next waiter."""

    __slots__ = ("_free", "_waiters", "size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("gate size must be positive")
        self.size = size
        self._free = size
        self._waiters: deque[Task] = deque()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now; nobody may jump the queue."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    def _queue(self, task: Task) -> None:
        self._waiters.append(task)

    def _leave(self, task: Task) -> None:
        self._waiters.remove(task)

    def _release(self) -> Task | None:
        """Give a slot back: to the next waiter (returned, now its holder) or to the pool."""
        if self._waiters:
            return self._waiters.popleft()
        self._free += 1
        return None


class Engine:
    """Drives session generators; see the module's docstring."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._tasks: set[Task] = set()
        self._ready: deque[Task] = deque()
        self._by_fd: dict[int, Task] = {}
        self._timers: list[tuple[float, int, Task]] = []
        self._after_poll: list[Gate] = []  # slots to give back once the engine has polled
        self._round_connects = 0  # connection attempts released since the last poll
        self._timer_seq = 0
        self._cancelled = False
        self._cancel_at = math.inf
        self._idle: trio.CancelScope | None = None
        self._steps = 0  # session steps since trio's other tasks last ran
        self._next_scan = _perf_counter() + SCAN_INTERVAL  # when deadlines are next checked

    # Called by sessions, synchronously, from inside a step.

    def release(self, gate: Gate) -> None:
        """Give back a slot of ``gate``; its next waiter, if any, runs next."""
        task = gate._release()
        if task is not None:
            # Runnable, and task.gate stays set until it runs: a task closed before
            # then passes the slot on (see _unpark).
            task.place = _RUNNABLE
            self._ready.append(task)

    def release_connect(self, gate: Gate) -> None:
        """Give back a connection attempt's slot of ``gate``: at once for the first
        CONNECTS_PER_ROUND of a round of the loop, after the next look for I/O for more.

        A loopback connect is complete when connect() returns, so hundreds of sessions
        could connect back to back between two polls, faster than the server accept()s:
        at -s 10000 its listen queue overflowed, dropped SYNs were sent again a second
        later, and the run stalled behind them. Postfix's event loop starts one attempt
        per round; a few per round keep the pace where that matters and cost nothing
        at -s 10, where a round rarely ends more messages than that.
        """
        if self._round_connects < CONNECTS_PER_ROUND:
            self._round_connects += 1
            self.release(gate)
        else:
            self._after_poll.append(gate)

    # Called from other trio tasks, or from sessions.

    def spawn(self, gen: Session) -> Task:
        task = Task(gen)
        self._tasks.add(task)
        self._ready.append(task)
        self._wake()
        return task

    def cancel(self) -> None:
        """Close every session once the step that is running, if any, is over."""
        self._cancelled = True
        self._wake()

    def cancel_at(self, when: float) -> None:
        """Close every session still there at perf_counter() time ``when``."""
        if when < self._cancel_at:
            self._cancel_at = when
            self._wake()

    def wake_pauses(self) -> None:
        """End every PAUSE now (the sessions look for themselves why)."""
        for task in self._tasks:
            if task.place == _ON_TIMER and task.pausing:
                task.place = _RUNNABLE
                self._ready.append(task)
        self._wake()

    def _wake(self) -> None:
        if self._idle is not None:
            self._idle.cancel()

    # The loop.

    async def run(self) -> None:
        """Run until every session has finished, or until cancelled (then close them all)."""
        try:
            await self._loop()
        finally:
            try:
                self._close_all()
            finally:
                self._epoll.close()

    async def _loop(self) -> None:
        # One cancel scope serves many idle waits: a scope per wait doubled its cost. Its
        # deadline is the next wake-up (timer, deadline scan, cancel_at); when that
        # fires, or _wake() cancels it, the scope ends and the loop opens a fresh one.
        while self._tasks and not self._finished():
            with trio.CancelScope() as self._idle:
                await self._serve()
            self._idle = None

    def _finished(self) -> bool:
        return self._cancelled or _perf_counter() >= self._cancel_at

    async def _serve(self) -> None:
        poll = self._epoll.poll
        ready = self._ready
        by_fd = self._by_fd
        resume = self._resume
        tasks = self._tasks
        scope = self._idle
        assert scope is not None
        scope_wake = math.inf  # the perf_counter() time the scope's deadline stands for
        yielded_at = _perf_counter()
        while tasks:
            while ready:
                task = ready.popleft()
                if task.place == _RUNNABLE:
                    task.gate = None  # a slot handed over is the task's own from now on
                    resume(task, None)
                if self._cancelled:
                    return
            now = _perf_counter()
            if self._cancelled or now >= self._cancel_at:
                return
            if self._timers and self._timers[0][0] <= now:
                self._fire_timers(now)
            if now >= self._next_scan:
                self._expire(now)
                self._next_scan = now + SCAN_INTERVAL
                if self._cancelled:
                    return
            if not by_fd:
                events = []
            elif (
                ready
                or self._after_poll
                or now - yielded_at >= CHECKPOINT_INTERVAL
                or (self._timers and self._timers[0][0] - now < SHORT_WAIT)
            ):
                events = poll(0)
            else:
                # Nothing else to do, and trio's other tasks can wait a little longer:
                # block in our own epoll for up to the rest of the interval. A local
                # server answers in tens of microseconds, and a trip through trio's
                # wait costs more than that (-s 1 is one such wait per message).
                events = poll(CHECKPOINT_INTERVAL)
            for fd, _ in events:
                woken = by_fd.pop(fd, None)
                if woken is not None:
                    woken.place = _RUNNABLE
                    resume(woken, None)
                    if self._cancelled:
                        return
            self._round_connects = 0
            if self._after_poll:
                for gate in self._after_poll:
                    self.release(gate)
                self._after_poll.clear()
            if events or ready:
                # Busy: still let trio's other tasks (signals, progress) run now and then.
                if self._steps >= CHECKPOINT_STEPS or now - yielded_at >= CHECKPOINT_INTERVAL:
                    await trio.lowlevel.checkpoint()
                    yielded_at = _perf_counter()
                    self._steps = 0
                continue
            if not tasks:
                return
            # Idle: sleep in trio until a descriptor is ready, a timer is due, the next
            # deadline scan, or another task calls spawn(), cancel() or wake_pauses().
            wake_at = min(self._next_scan, self._cancel_at)
            if self._timers:
                wake_at = min(wake_at, self._timers[0][0])
                if self._timers[0][0] - now < SHORT_WAIT:
                    # trio's (and epoll's) timeouts count whole milliseconds, rounded up:
                    # a --rate schedule would start every message up to 1 ms late. A wait
                    # this short blocks here, in select()'s microseconds, instead.
                    _select((self._epoll,), (), (), max(0.0, self._timers[0][0] - now))
                    continue
            if wake_at != scope_wake:
                scope.deadline = trio.current_time() + max(0.0, wake_at - now)
                scope_wake = wake_at
            await trio.lowlevel.wait_readable(self._epoll.fileno())
            yielded_at = _perf_counter()
            self._steps = 0

    def _resume(self, task: Task, error: BaseException | None) -> None:
        """Run one step of a session and file it under what it waits for next."""
        self._steps += 1
        try:
            if error is None:
                kind, arg = task.gen.send(None)
            else:
                kind, arg = task.gen.throw(error)
        except StopIteration:
            task.place = _DONE
            self._tasks.discard(task)
            return
        if kind in (READABLE, WRITABLE):
            flags = _IN if kind == READABLE else _OUT
            # Most waits are a new socket's first (and only) one: register, and only a
            # descriptor waited on before, still in the set, needs modify().
            try:
                self._epoll.register(arg, flags)
            except FileExistsError:
                self._epoll.modify(arg, flags)
            task.place = _ON_FD
            task.fd = arg
            self._by_fd[arg] = task
        elif kind in (SLEEP, PAUSE):
            self._timer_seq += 1
            task.timer = self._timer_seq
            task.pausing = kind == PAUSE
            task.place = _ON_TIMER
            heapq.heappush(self._timers, (arg, self._timer_seq, task))
        elif kind == GATE:
            task.gate = arg
            if arg.try_acquire():
                self._ready.append(task)  # resumes holding the slot
            else:
                task.place = _ON_GATE
                arg._queue(task)
        else:
            raise ValueError(f"a session yielded {kind!r}")

    def _fire_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, seq, task = heapq.heappop(timers)
            if task.place == _ON_TIMER and task.timer == seq:
                task.place = _RUNNABLE
                self._ready.append(task)

    def _expire(self, now: float) -> None:
        """Throw StepTimeout into every waiting session whose deadline has passed."""
        late = [t for t in self._tasks if t.deadline <= now and t.place != _RUNNABLE]
        for task in late:
            # An earlier one's step may have changed this one (a gate handed over).
            if task.place in (_RUNNABLE, _DONE) or task.deadline > now:
                continue
            self._unpark(task)
            task.deadline = math.inf
            self._resume(task, StepTimeout())
            if self._cancelled:
                return  # the others are closed, not timed out

    def _unpark(self, task: Task) -> None:
        """Take a waiting task off whatever it waits on (for a timeout, or to close it)."""
        place = task.place
        if place == _ON_FD:
            if self._by_fd.get(task.fd) is task:
                del self._by_fd[task.fd]
                # Disarm it too: an event nobody waits for would keep the epoll set
                # readable, and the idle wait would spin.
                with contextlib.suppress(OSError):
                    self._epoll.modify(task.fd, 0)
        elif place == _ON_GATE and task.gate is not None:
            task.gate._leave(task)
        elif place == _RUNNABLE and task.gate is not None:
            self.release(task.gate)  # handed a slot it will never use: pass it on
        task.gate = None
        task.place = _RUNNABLE

    def _close_all(self) -> None:
        """Close every session generator; their finally blocks close their sockets."""
        first: BaseException | None = None
        for gate in self._after_poll:  # no more rounds: slots still owed go back now
            self.release(gate)
        self._after_poll.clear()
        while self._tasks:
            task = self._tasks.pop()
            self._unpark(task)
            task.place = _DONE
            try:
                task.gen.close()
            except BaseException as exc:  # close the others all the same
                first = first or exc
        self._ready.clear()
        self._by_fd.clear()
        self._timers.clear()
        if first is not None:
            raise first
