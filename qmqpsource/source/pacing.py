"""How fast connection attempts may follow each other: tokens, on trio's clock.

A loopback connect is complete when connect() returns, so the connect limiter's token
(--connect-limit) goes back before the session ever waits, and thousands of sessions
(all of -s 10000 at the start, or those a server's stall held back) would connect
back to back. A server accepts them from a listen queue of fixed length (Postfix's
qmqp-sink: 1,024); what does not fit is dropped, and the kernel retries the dropped
connection a second later.

So a run of many sessions connects on tokens, BURST at most. A connection holds its
token until it is closed: by then the server has answered it or it has failed, and
either way it no longer sits in the server's listen queue. Against a server that
keeps up, tokens come back as fast as they go. Against one that stalls, no more than
BURST connections go out at once, and then RATE a second: those are for a server that
accepts at once and answers late, whose queue our open connections are not in, so
that -s still sets how many it gets at once. Sessions without a token wait their turn,
in the order they came, and get the tokens there are every TICK of trio's clock:
the same schedule however trio's scheduler runs, which tests drive on MockClock.

A queue can only overflow with more of our connections in flight than it holds, and no
more than -s are: runs of at most UNPACED_SESSIONS sessions are not paced at all.
"""

from __future__ import annotations

import math

import trio

__all__ = ["BURST", "RATE", "TICK", "UNPACED_SESSIONS", "ConnectPacer"]

# Tokens at most: half of UNPACED_SESSIONS, so that connections not yet answered
# cannot fill even a short queue on their own.
BURST = 64
# Tokens a second that time adds, up to BURST, answered or not: a server that does not
# answer still sees -s 10000 in 2 s. A stalled one must stall for (1,024 - BURST) / RATE
# = 0.19 s before our connections fill a queue of 1,024.
RATE = 5_000.0
# How often waiting sessions get the tokens there are: at most BURST a TICK (64,000
# connects a second), in batches rather than one round of trio's loop per turn.
TICK = 0.001
# Linux's SOMAXCONN before 5.4 and a common listen(2) backlog: no server queue in
# ordinary use is shorter, so this many connections cannot overflow one.
UNPACED_SESSIONS = 128


class ConnectPacer:
    """Tokens to connect: ``burst`` at most, each back when its connection closes
    (give_back()), and ``rate`` more a second from trio's clock.

    A session that finds none, or finds others waiting, waits in a trio ParkingLot,
    in FIFO order; the pacer's own task (run()) wakes as many as there are tokens
    every ``tick`` seconds while anyone waits, each with its token.
    """

    __slots__ = ("_burst", "_lot", "_rate", "_stamp", "_tick", "_tokens", "_wanted")

    def __init__(self, rate: float = RATE, burst: int = BURST, tick: float = TICK) -> None:
        if not 0 < rate < math.inf:
            raise ValueError("rate must be a positive number of connects a second")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if not 0 < tick < math.inf:
            raise ValueError("tick must be a positive number of seconds")
        self._rate = rate
        self._burst = float(burst)
        self._tick = tick
        self._tokens = float(burst)
        self._stamp = -math.inf  # trio time of _tokens: full, however long ago
        self._lot = trio.lowlevel.ParkingLot()
        self._wanted = trio.Event()  # set when a session waits and run() may be idle

    def _refill(self) -> float:
        """The tokens there are now, with those that time added since the last look."""
        now = trio.current_time()
        tokens = self._tokens + (now - self._stamp) * self._rate
        self._tokens = tokens = tokens if tokens < self._burst else self._burst
        self._stamp = now
        return tokens

    def try_take(self) -> bool:
        """Take a token at once if there is one and no one waits (no await: the hot path)."""
        if self._lot or self._refill() < 1:
            return False
        self._tokens -= 1
        return True

    async def take(self) -> None:
        """Wait for a token, after those already waiting (after try_take() failed)."""
        self._wanted.set()
        await self._lot.park()  # woken with the token already counted

    def give_back(self) -> None:
        """The token of a connection that is closed, or was never made. One not given
        back (a run stopped while its session waited for --connect-limit) time makes up."""
        tokens = self._tokens + 1
        self._tokens = tokens if tokens < self._burst else self._burst

    async def run(self) -> None:
        """Hand out tokens every tick while sessions wait; run in the sessions' nursery."""
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            while self._lot:
                await trio.sleep(self._tick)
                ready = int(self._refill())
                if ready:
                    self._tokens -= len(self._lot.unpark(count=ready))
