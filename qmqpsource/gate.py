"""A FIFO counting gate for connection attempts, cheaper than trio.CapacityLimiter.

Acquiring a free slot does not yield: the connect that follows always does,
and on the per-message path the limiter's own checkpoint was measurable.
Waiters are served in order; a released slot goes straight to the next one.
"""

from __future__ import annotations

import trio

__all__ = ["Gate"]


class Gate:
    __slots__ = ("_free", "_waiters", "size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("gate size must be positive")
        self.size = size
        self._free = size
        self._waiters = trio.lowlevel.ParkingLot()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now; never waits, never yields."""
        # Nobody may jump the queue: a free slot with waiters is already theirs.
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if not self.try_acquire():
            await self._waiters.park()

    def release(self) -> None:
        if self._waiters:
            self._waiters.unpark()  # hand the slot over; _free stays as it is
        else:
            self._free += 1
