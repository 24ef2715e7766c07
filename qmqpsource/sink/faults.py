"""Misbehaviour on purpose: --drop, --hang, --tempfail, --reject and --delay, their checks,
and the draw that gives each well-formed request its fault and its delay.

One seeded random stream, drawn in the order requests arrive: the same --seed and the
same requests give the same answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

from qmqpsource import values
from qmqpsource.errors import ConfigError
from qmqpsource.protocol import Status, encode_reply

__all__ = [
    "DROP",
    "HANG",
    "NO_FAULT",
    "RATES",
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


# The faults' rates, in the order they are drawn.
RATES = ("drop", "hang", "tempfail", "reject")
_DELAY = partial(values.seconds, zero=True)
_CHECKS: tuple[tuple[str, values.Check], ...] = (
    *((name, values.share) for name in RATES),
    ("delay_min", _DELAY),
    ("delay_max", _DELAY),
    ("seed", values.whole),
)


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
        # The one check of these values, the command's included: errors name the fields.
        values.check_fields(self, _CHECKS, optional={"seed"})
        if sum(getattr(self, name) for name in RATES) > 1.0 + 1e-9:
            raise ConfigError("drop, hang, tempfail and reject add up to more than 1")
        if self.delay_min > self.delay_max:
            raise ConfigError(f"delay_min must be at most delay_max, not "
                              f"{self.delay_min:g} > {self.delay_max:g}")

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


def check_rate(name: str, value: object) -> float:
    """``value`` if it is a share of requests (0 to 1): Faults' check of each rate."""
    return values.share(name, value)


def check_delay(low: float, high: float) -> tuple[float, float]:
    """The (min, max) seconds to wait before replying, as Faults checks them."""
    faults = Faults(delay_min=low, delay_max=high)
    return faults.delay_min, faults.delay_max
