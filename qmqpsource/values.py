"""The checks that every count and every number of seconds goes through, and their caps.

qmqp-source's and qmqp-sink's options, and the configs that both build, are checked
here: the same limits and the same words wherever a value comes from.
"""

from __future__ import annotations

import math

from qmqpsource.errors import ConfigError

__all__ = ["MAX_COUNT", "MAX_SECONDS", "ValueProblem", "count", "seconds"]

# Counts (-s -m -l -r -C --connect-limit, the sink's backlog...) beyond int64 are typos,
# and nothing downstream (JSON readers, HdrHistogram counts, C tools reading our results)
# takes them.
MAX_COUNT = 2**63 - 1
# Waits and timeouts (-w -R --timeout, the sink's -x --delay...): longer than a year is a
# typo, not a plan.
MAX_SECONDS = 365 * 86400.0


# The name that modules written before errors.py know ConfigError by.
ValueProblem = ConfigError


def count(name: str, value: int) -> int:
    """``value`` if it is a positive count within MAX_COUNT; ``name`` says whose it is."""
    if value <= 0:
        raise ValueProblem(f"{name} must be a positive number, not {value}")
    if value > MAX_COUNT:
        raise ValueProblem(f"{name} must be at most {MAX_COUNT}, not {value}")
    return value


def seconds(name: str, value: float) -> float:
    """``value`` if it is a positive, finite number of seconds within MAX_SECONDS."""
    if not math.isfinite(value) or value <= 0:
        raise ValueProblem(f"{name} must be a positive number of seconds, not {value}")
    if value > MAX_SECONDS:
        raise ValueProblem(f"{name} must be at most {MAX_SECONDS:.0f} seconds, not {value}")
    return value
