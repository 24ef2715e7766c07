"""--find-rate's search: which rate to try next, given how the steps so far went.

Pure and clock-free: the caller runs each step and tells the search its verdict.

Grow: from the start rate, double after every step that held, until one fails.
Narrow: then bisect between the highest rate that held and the lowest that failed,
until they are within TOLERANCE of each other. The answer is the highest rate that
held (None when even the first step failed). A step limited by the client's sessions
(Verdict.SESSIONS) says nothing of the server: the search stops there. At most
MAX_STEPS steps are run, whatever the bracket.
"""

from __future__ import annotations

import enum

__all__ = [
    "GROWTH", "MAX_STEPS", "SETTLE_MAX", "START_RATE", "TOLERANCE", "RateSearch", "Stop",
    "Verdict", "settle_seconds",
]

START_RATE = 10.0  # msg/s, without --rate
GROWTH = 2.0
# The search ends once (failed - held) / held is at most this.
TOLERANCE = 0.05
MAX_STEPS = 20
# Each step's settling run (not judged) before its judged one: a third of the step, at
# most this long.
SETTLE_MAX = 1.0


def settle_seconds(step: float) -> float:
    return min(SETTLE_MAX, step / 3)


class Verdict(enum.Enum):
    """How one step went."""

    HELD = "held"  # every check held at this rate
    FAILED = "failed"  # a check failed: the server did not keep up
    SESSIONS = "sessions"  # every session busy: -s, not the server, was the limit


class Stop(enum.Enum):
    """Why the search ended."""

    BRACKET = "bracket"  # held and failed rates within TOLERANCE
    STEP_CAP = "step cap"  # MAX_STEPS run
    SESSIONS = "sessions"  # a step limited by the sessions
    FIRST_FAILED = "first step failed"


class RateSearch:
    """Propose a rate (next_rate), run it, tell the verdict (record); until None."""

    def __init__(self, start: float = START_RATE, *, max_steps: int = MAX_STEPS,
                 tolerance: float = TOLERANCE, growth: float = GROWTH) -> None:
        if not start > 0 or max_steps < 1 or not tolerance > 0 or not growth > 1:
            raise ValueError("start, tolerance and max_steps positive, growth above 1")
        self.start = start
        self.max_steps = max_steps
        self.tolerance = tolerance
        self.growth = growth
        self.held: float | None = None  # the highest rate that held
        self.failed: float | None = None  # the lowest rate that failed
        self.steps = 0
        self.stop: Stop | None = None
        self._proposed: float | None = None

    @property
    def answer(self) -> float | None:
        """The highest rate at which every check held (None: none did)."""
        return self.held

    def next_rate(self) -> float | None:
        """The rate of the next step; None: the search is over (see ``stop``)."""
        if self._proposed is not None:
            return self._proposed  # asked again before record(): the same step
        if self.stop is None:
            self.stop = self._why_stop()
        if self.stop is not None:
            return None
        if self.failed is None:
            rate = self.start if self.held is None else self.held * self.growth
        else:
            assert self.held is not None
            rate = (self.held + self.failed) / 2
        self._proposed = rate
        return rate

    def record(self, verdict: Verdict) -> None:
        """The verdict of the step at the rate next_rate() proposed."""
        rate = self._proposed
        if rate is None:
            raise RuntimeError("record() without a step proposed by next_rate()")
        self._proposed = None
        self.steps += 1
        if verdict is Verdict.HELD:
            self.held = rate if self.held is None else max(self.held, rate)
        elif verdict is Verdict.FAILED:
            self.failed = rate if self.failed is None else min(self.failed, rate)
        else:
            self.stop = Stop.SESSIONS

    def _why_stop(self) -> Stop | None:
        if self.failed is not None:
            if self.held is None:
                return Stop.FIRST_FAILED
            if (self.failed - self.held) / self.held <= self.tolerance:
                return Stop.BRACKET
        if self.steps >= self.max_steps:
            return Stop.STEP_CAP
        return None
