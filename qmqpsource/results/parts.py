"""Whether results are parts of one run, which a merge adds up; or runs of their own.

A merge of two unrelated runs prints a rate that neither had: its elapsed time spans
both, and whatever lies between. So qmqp-report merges only the parts of one run: the
shards of a --shard I/N run (hosts) and of --workers (processes), and merges of them.
Those differ in their shares (SHARE_KEYS: -s, -m, --rate, the shard's index and count)
and in what they print (OUTPUT_KEYS: -c, -v), never in anything that shapes the load
(the target, -l, -r, --duration...); and they ran together: no gap of more than
GAP_ALLOWED in time between them (shards of one --start-at start within milliseconds of
each other, and a small one may end before the last has started); and, where they say,
the same run id (identity.py). not_one_run() is that decision, in one place.

The same run given twice (a file and its copy), or a shard held by two files, would
count messages twice: same_run_twice() finds them, whatever the files' names.
missing_shards() names the shards of a run that a merge lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from qmqpsource.results.result import Result

__all__ = [
    "GAP_ALLOWED", "OUTPUT_KEYS", "SHARE_KEYS", "missing_shards", "not_one_run", "same_content",
    "same_run_twice",
]

# Config keys in which the parts of one run differ: their shares of the whole.
SHARE_KEYS = frozenset({"sessions", "messages", "rate", "shard_index", "shard_count"})
# A gap in time that parts of one run may leave between them: --start-at's own leeway.
GAP_ALLOWED = timedelta(seconds=1)
# The shards named in a line, at most.
_SHOWN = 10
# Config keys that change what a part prints, not the load it puts on the server.
OUTPUT_KEYS = frozenset({"counter", "verbose"})
_MISSING = object()

Named = Sequence[tuple[str, Result]]  # (the file's name as given, its result)


def not_one_run(named: Named) -> str | None:
    """Why ``named`` are not the parts of one run, in one line naming the files and how
    they differ; None when they are (or when there is only one)."""
    return _run_ids_differ(named) or _config_differs(named) or _gap_in_time(named)


def _run_ids_differ(named: Named) -> str | None:
    """Two results that both say which run they are, and say different ones."""
    ided = [(name, value) for name, value in named if value.run_id is not None]
    for name, value in ided[1:]:
        if value.run_id != ided[0][1].run_id:
            return (f"{name}: not a part of the same run as {ided[0][0]}: its run id is "
                    f"{value.run_id}, {ided[0][0]}'s {ided[0][1].run_id} (the shards of "
                    "one run share one --run-id, or one --start-at)")
    return None


def _config_differs(named: Named) -> str | None:
    first_name, first = named[0]
    for name, other in named[1:]:
        for key in sorted(set(first.config) | set(other.config)):
            if key in SHARE_KEYS or key in OUTPUT_KEYS:
                continue
            mine, theirs = first.config.get(key, _MISSING), other.config.get(key, _MISSING)
            if mine != theirs:
                return (f"{name}: not a part of the same run as {first_name}: its "
                        f"config.{key} is {_shown(theirs)}, {first_name}'s {_shown(mine)}")
    return None


def _shown(value: Any) -> str:
    return "missing" if value is _MISSING else repr(value)


def _gap_in_time(named: Named) -> str | None:
    """The first run that started after every run before it (by start) had ended."""
    runs = sorted(named, key=lambda item: item[1].started_at)
    last_name, last = runs[0]
    end = last.started_at + timedelta(seconds=last.elapsed_s)
    for name, run in runs[1:]:
        if run.started_at > end + GAP_ALLOWED:
            gap = (run.started_at - end).total_seconds()
            return (f"{name}: not a part of the same run as {last_name}: it started "
                    f"{gap:.3f} s after {last_name} ended (the parts of a run overlap in "
                    "time, or leave at most a second between them)")
        run_end = run.started_at + timedelta(seconds=run.elapsed_s)
        if run_end > end:
            last_name, end = name, run_end
    return None


def same_run_twice(named: Named) -> str | None:
    """A result given twice, found by content (start, elapsed time, config, counts), or a
    shard of a run held by two files, in one line; None if there is none."""
    return _content_twice(named) or _shard_twice(named)


def _shard_twice(named: Named) -> str | None:
    held: dict[tuple[str | None, int, int], str] = {}
    for name, value in named:
        if value.shards is None:
            continue
        for index in value.shards.indices:
            key = (value.run_id, value.shards.count, index)
            if key in held:
                return (f"{name}: shard {index} of {value.shards.count} is in {held[key]} "
                        "too: its messages would count twice")
            held[key] = name
    return None


def missing_shards(merged: Result) -> str | None:
    """The shards of its run that a merge lacks, in one line; None: it has them all (or
    does not say)."""
    shards = merged.shards
    if shards is None or not shards.missing:
        return None
    missing = ", ".join(map(str, shards.missing[:_SHOWN]))
    more = f" and {len(shards.missing) - _SHOWN} more" if len(shards.missing) > _SHOWN else ""
    are = "are" if len(shards.missing) > 1 else "is"
    return (f"shard{'s' if len(shards.missing) > 1 else ''} {missing}{more} of {shards.count} "
            f"{are} missing: the merge holds {len(shards.indices)} of them")


def same_content(named: Named, why: str = "its runs would count twice") -> str | None:
    """A result given twice, by content: the first in one line ending in ``why``."""
    return _content_twice(named, why)


def _content_twice(named: Named, why: str = "its runs would count twice") -> str | None:
    seen: dict[tuple[Any, ...], str] = {}
    for name, value in named:
        key = (value.started_at, value.elapsed_s, repr(sorted(value.config.items())),
               tuple(sorted((o.value, n) for o, n in value.outcomes.items())),
               repr(sorted(value.latency_ms.items())))  # a copy has the same latencies too
        if key in seen:
            return (f"{name}: the same run as {seen[key]} (same start, length, config, "
                    f"counts and latencies): {why}")
        seen[key] = name
    return None
