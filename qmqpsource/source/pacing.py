"""How fast connection attempts may follow each other: a few per round of trio's loop.

A loopback connect is complete when connect() returns, so the connect limiter's token
(--connect-limit) goes back before the session ever waits, and thousands of sessions
woken by one batch of replies would connect back to back without trio looking for I/O
in between. Against a server with a short listen queue (Postfix's qmqp-sink: 1,024)
that overflowed the queue at -s 10000 in about half the runs, and the kernel retried
the dropped connections a second later. So, once a round has had PER_ROUND connects,
the next connect waits for the next round of trio's loop, as Postfix's waits for its
event loop.

A queue can only overflow with more of our connections in flight than it holds, and no
more than -s are: runs of at most UNPACED_SESSIONS sessions are not paced at all.
"""

from __future__ import annotations

import trio

__all__ = ["PER_ROUND", "UNPACED_SESSIONS", "ConnectPacer"]

# Connects allowed in one round of trio's loop. The engine this replaced measured 16
# as enough to keep -s 10000 from overflowing the queue of Postfix's qmqp-sink.
PER_ROUND = 16
# Linux's SOMAXCONN before 5.4 and a common listen(2) backlog: no server queue in
# ordinary use is shorter, so this many connections cannot overflow one.
UNPACED_SESSIONS = 128


class ConnectPacer:
    """At most ``per_round`` turns to connect handed out per round of trio's loop.

    Sessions that find the turns spent wait in a trio ParkingLot, in FIFO order; the
    pacer's own task (run()) gives out ``per_round`` turns each round, first to those
    waiting, whom it wakes. A woken session connects in the round after, so a round
    may see up to twice ``per_round`` connects, never more.
    """

    __slots__ = ("_left", "_lot", "_per_round", "_wanted")

    def __init__(self, per_round: int = PER_ROUND) -> None:
        if per_round < 1:
            raise ValueError("per_round must be at least 1")
        self._per_round = per_round
        self._left = per_round
        self._lot = trio.lowlevel.ParkingLot()
        self._wanted = trio.Event()  # set when a session waits and run() may be idle

    def try_take(self) -> bool:
        """Take a connect at once if this round has one left (no await: the hot path)."""
        if self._left > 0:
            self._left -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a turn in a later round (after try_take() failed)."""
        self._wanted.set()
        await self._lot.park()  # woken with the turn already counted

    async def run(self) -> None:
        """Give out each round's turns while sessions wait; run in the sessions' nursery."""
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            while True:
                await trio.lowlevel.checkpoint()  # one round: trio polls for I/O first
                woken = len(self._lot.unpark(count=self._per_round))
                self._left = self._per_round - woken
                if not self._lot:
                    break
