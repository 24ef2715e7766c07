"""Misbehaviour on purpose: --drop, --hang, --tempfail, --reject and --delay, their checks,
and the draw that gives each well-formed request its fault and its delay.

One seeded random stream, drawn in the order requests arrive: the same --seed and the
same requests give the same answers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from qmqpsource.protocol import Status, encode_reply
from qmqpsource.values import MAX_SECONDS, ValueProblem

__all__ = [
    "DROP",
    "HANG",
    "NO_FAULT",
    "REJECT",
    "REJECT_REPLY",
    "TEMPFAIL",
    "TEMPFAIL_REPLY",
    "FaultDraw",
    "Faults",
    "check_delay",
    "check_rate",
]

# What a draw gives a request: one of the faults, in the order they are drawn, or none.
DROP, HANG, TEMPFAIL, REJECT, NO_FAULT = range(5)
TEMPFAIL_REPLY = encode_reply(Status.TEMPFAIL, b"4.3.0 Error: tempfail on purpose")
REJECT_REPLY = encode_reply(Status.PERMFAIL, b"5.7.1 Error: rejected on purpose")


def check_rate(name: str, value: float) -> float:
    """``value`` if it is a share of requests (0 to 1); ``name`` is its option."""
    if not 0.0 <= value <= 1.0:
        raise ValueProblem(f"{name} must be a rate between 0 and 1, not {value}")
    return value


def check_delay(low: float, high: float, given: str) -> tuple[float, float]:
    """The (min, max) seconds of --delay if they make one; ``given`` is what the user wrote."""
    if not all(math.isfinite(b) and b >= 0 for b in (low, high)) or low > high:
        raise ValueProblem(f"--delay wants SECONDS or MIN-MAX with 0 <= MIN <= MAX, not {given!r}")
    if high > MAX_SECONDS:
        raise ValueProblem(f"--delay must be at most {MAX_SECONDS:.0f} seconds, not {given!r}")
    return low, high


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose: rates are probabilities per valid request, drawn in this order."""

    drop: float = 0.0
    hang: float = 0.0
    tempfail: float = 0.0
    reject: float = 0.0
    delay_min: float = 0.0
    delay_max: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        # The one check of these values, the command's included: its words name the options.
        rates = (check_rate("--drop", self.drop), check_rate("--hang", self.hang),
                 check_rate("--tempfail", self.tempfail), check_rate("--reject", self.reject))
        if sum(rates) > 1.0 + 1e-9:
            raise ValueProblem("--drop, --hang, --tempfail and --reject add up to more than 1")
        given = f"{self.delay_min:g}-{self.delay_max:g}"
        check_delay(self.delay_min, self.delay_max, given)

    @property
    def any_rate(self) -> bool:
        return self.drop + self.hang + self.tempfail + self.reject > 0.0


class FaultDraw:
    """Each request's fault (DROP, HANG, TEMPFAIL, REJECT or NO_FAULT) and delay."""

    __slots__ = ("_delay_max", "_delay_min", "_faulty", "_random", "_thresholds")

    def __init__(self, faults: Faults) -> None:
        self._random = random.Random(faults.seed)
        self._faulty = faults.any_rate
        # Cumulative thresholds, in the order of DROP..REJECT.
        self._thresholds = (
            faults.drop,
            faults.drop + faults.hang,
            faults.drop + faults.hang + faults.tempfail,
            faults.drop + faults.hang + faults.tempfail + faults.reject,
        )
        self._delay_min = faults.delay_min
        self._delay_max = faults.delay_max

    def draw(self) -> tuple[int, float]:
        """The next request's fault and its delay in seconds, drawn in that order."""
        fault = self._fault() if self._faulty else NO_FAULT
        return fault, self._delay()

    def _fault(self) -> int:
        draw = self._random.random()
        for fault, threshold in enumerate(self._thresholds):
            if draw < threshold:
                return fault
        return NO_FAULT

    def _delay(self) -> float:
        if self._delay_max <= 0:
            return 0.0
        if self._delay_min == self._delay_max:
            return self._delay_min
        return self._random.uniform(self._delay_min, self._delay_max)
