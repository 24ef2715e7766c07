"""When a load starts (--start-at), and which run its result says it is (--run-id).

Shards of one load on several hosts start when their pods or shells happen to: given
one --start-at, they start together, to the clocks' agreement, and their timelines line
up in a merge. Each waits with its target (and workers) already up, so that what it
sends starts on time; a stop during the wait ends the load before it begins.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from qmqpsource.errors import ConfigError
from qmqpsource.load.control import LoadControl
from qmqpsource.results.identity import check_run_id, default_run_id
from qmqpsource.values import MAX_SECONDS

__all__ = ["LATE_TOLERANCE", "NOW", "Start", "parse_start_at", "start_of"]

# A start this far in the past is taken as now (clocks and a slow start-up); further, it
# is a mistake (a time written for yesterday, a shard started far too late).
LATE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Start:
    """A load's start: when (None: at once), and the run id it was given (None: the
    default, from the start and the shard count)."""

    at: datetime | None
    run_id: str | None

    def run_id_of(self, started: datetime, shard_count: int) -> str:
        """The run id of a load that began at ``started``: the one given, else one made
        of --start-at (on which shards started together agree), else of ``started``."""
        if self.run_id is not None:
            return self.run_id
        if self.at is not None:
            return default_run_id(self.at, shard_count)
        return default_run_id(started, shard_count, agreed=False)

    async def wait(self, control: LoadControl | None) -> None:
        """Until the start time (at once without one, or once it is past); a stop or an
        abort of ``control`` ends the wait early."""
        if self.at is None:
            return
        delay = (self.at - datetime.now(UTC)).total_seconds()
        if delay <= 0:
            return
        waiting = _Waiting()
        attached = control.attach(waiting) if control is not None else contextlib.nullcontext()
        with attached, waiting.scope:
            await trio.sleep(delay)


# At once, with the default run id.
NOW = Start(None, None)


class _Waiting:
    """The wait for a start, as a control stops it."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()

    def stop(self, grace: float) -> None:
        self.scope.cancel()

    def abort(self) -> None:
        self.scope.cancel()


def start_of(at: datetime | None, run_id: str | None) -> Start:
    """A checked Start: ConfigError for a time without a UTC offset, past by more than
    LATE_TOLERANCE, or more than a year ahead; or a run id that cannot be one."""
    if run_id is not None:
        check_run_id(run_id)
    if at is not None:
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ConfigError(f"start_at must be a time with its UTC offset, not {at!r}",
                              field="start_at")
        ahead = (at - datetime.now(UTC)).total_seconds()
        if ahead < -LATE_TOLERANCE:
            raise ConfigError(f"start_at {at.isoformat()} is {-ahead:.1f} s in the past",
                              field="start_at")
        if ahead > MAX_SECONDS:
            raise ConfigError(f"start_at {at.isoformat()} is more than a year ahead",
                              field="start_at")
    return Start(at, run_id)


def parse_start_at(text: str) -> datetime:
    """--start-at's TIME: an RFC 3339 time with its UTC offset (``2026-12-06T03:30:00Z``,
    ``...+01:00``), or seconds since the epoch (``1796528400``, ``1796528400.5``)."""
    plain = text.strip()
    if plain and plain.isascii() and plain.replace(".", "", 1).isdigit():
        try:
            return datetime.fromtimestamp(float(plain), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    else:
        try:
            at = datetime.fromisoformat(plain)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None and "T" in plain.upper():
            return at
    raise ConfigError(f"start_at wants an RFC 3339 time with its offset "
                      f"(2026-12-06T03:30:00Z) or epoch seconds, not {text!r}",
                      field="start_at")
