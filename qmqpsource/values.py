"""The checks that every value of a config goes through: its type, its bounds, its caps.

SourceConfig, SinkConfig and Faults check each of their fields here, under the field's
own name (``sessions must be at least 1, not 0``); the commands then say their option
instead (cli/common.py's option_words). Each check returns the value as the config
keeps it (an int given for seconds as a float, a path as a str), or raises
errors.ConfigError, one line, whose ``field`` is the name checked when that name is a
field's (an identifier; ``--interval`` is an option, and leaves ``field`` None).
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Container, Sequence
from typing import Any, TypeVar

from qmqpsource.errors import ConfigError

__all__ = [
    "MAX_COUNT",
    "MAX_SECONDS",
    "ValueProblem",
    "check_fields",
    "count",
    "flag",
    "member",
    "number",
    "path",
    "problem",
    "seconds",
    "share",
    "text",
    "whole",
]

# Counts (-s -m -l -r -C --connect-limit, the sink's backlog...) beyond int64 are typos,
# and nothing downstream (JSON readers, HdrHistogram counts, C tools reading our results)
# takes them.
MAX_COUNT = 2**63 - 1
# Waits and timeouts (-w -R --timeout, the sink's -x --delay...): longer than a year is a
# typo, not a plan.
MAX_SECONDS = 365 * 86400.0

# The name that modules written before errors.py know ConfigError by.
ValueProblem = ConfigError

_Member = TypeVar("_Member", bound=enum.Enum)
Check = Callable[[str, Any], Any]


def problem(name: str, words: str) -> ConfigError:
    """``NAME WORDS`` as a ConfigError, whose field is ``name`` if that is a field's."""
    return ConfigError(f"{name} {words}", field=name if name.isidentifier() else None)


def whole(name: str, value: object) -> int:
    """``value`` if it is an int; a bool (True is 1 to Python), float or str is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem(name, f"must be a whole number, not {value!r}")
    return int(value)


def number(name: str, value: object, what: str = "a number") -> float:
    """``value`` as a float, if it is an int or a float (not a bool, not a str)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem(name, f"must be {what}, not {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int past 1e308: no finite float, so out of every bound
        return math.inf


def count(name: str, value: object, least: int = 1) -> int:
    """``value`` if it is a whole number from ``least`` to MAX_COUNT."""
    checked = whole(name, value)
    if checked < least:
        raise problem(name, f"must be at least {least}, not {checked}")
    if checked > MAX_COUNT:
        raise problem(name, f"must be at most {MAX_COUNT}, not {checked}")
    return checked


def seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a finite number of seconds within MAX_SECONDS: positive, or with
    ``zero`` also 0."""
    checked = number(name, value, "a number of seconds")
    if math.isnan(checked) or checked < 0 or (checked == 0 and not zero):
        least = "0 or a positive" if zero else "a positive"
        raise problem(name, f"must be {least} number of seconds, not {value}")
    if checked > MAX_SECONDS:  # infinity too
        raise problem(name, f"must be at most {MAX_SECONDS:.0f} seconds, not {value}")
    return checked


def share(name: str, value: object) -> float:
    """``value`` if it is a share of requests, from 0 to 1."""
    checked = number(name, value, "a rate between 0 and 1")
    if not 0.0 <= checked <= 1.0:
        raise problem(name, f"must be a rate between 0 and 1, not {value}")
    return checked


def flag(name: str, value: object) -> bool:
    """``value`` if it is a bool: 0, 1 or "no" would be read as whatever they seem."""
    if not isinstance(value, bool):
        raise problem(name, f"must be True or False, not {value!r}")
    return value


def text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise problem(name, f"must be a str, not {value!r}")
    return value


def address(name: str, value: object) -> str:
    """``value`` if it is a target or an endpoint: text, and not empty ("missing NAME",
    as the commands have always said of a missing operand)."""
    checked = text(name, value)
    if not checked:
        raise ConfigError(f"missing {name}", field=name)
    return checked


def path(name: str, value: object) -> str:
    """``value`` if it is a path (str or os.PathLike), as a str: configs stay JSON-able."""
    if isinstance(value, os.PathLike):
        value = os.fsdecode(value)  # a bytes path too: as the file system names it
    if not isinstance(value, str):
        raise problem(name, f"must be a path (str or os.PathLike), not {value!r}")
    if not value:
        raise problem(name, "must be a path, not ''")  # '' would be the current folder
    if "\0" in value:
        raise problem(name, f"must be a path, without NUL: {value!r}")  # no file has one
    return value


def member(name: str, value: object, of: type[_Member]) -> _Member:
    """``value`` if it is a member of the enum ``of``."""
    if not isinstance(value, of):
        names = ", ".join(f"{of.__name__}.{each.name}" for each in of)
        raise problem(name, f"must be one of {names}, not {value!r}")
    return value


def check_fields(
    config: object, checks: Sequence[tuple[str, Check]], optional: Container[str] = ()
) -> None:
    """Check the fields of a frozen dataclass in order, each kept as its check returns it;
    a field in ``optional`` may be None."""
    for name, check in checks:
        value = getattr(config, name)
        if value is None and name in optional:
            continue
        kept = check(name, value)
        if kept is not value:
            object.__setattr__(config, name, kept)  # frozen: set here, at its birth only
