"""Whether results are parts of one run, which a merge adds up; or runs of their own.

A merge of two unrelated runs prints a rate that neither had: its elapsed time spans
both, and whatever lies between. So qmqp-report merges only the parts of one run: the
shards of a --shard I/N run (hosts) and of --workers (processes), and merges of them.
Those differ in their shares (SHARE_KEYS: -s, -m, --rate, the shard's index and count)
and in what they print (OUTPUT_KEYS: -c, -v), never in anything that shapes the load
(the target, -l, -r, --duration...); and they ran together: no gap in time between
them. not_one_run() is that decision, in one place (issue 24 adds a run id to it).

The same run given twice (a file and its copy) would count its messages twice:
same_run_twice() finds it by content, whatever the files' names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from qmqpsource.results.result import Result

__all__ = ["OUTPUT_KEYS", "SHARE_KEYS", "not_one_run", "same_run_twice"]

# Config keys in which the parts of one run differ: their shares of the whole.
SHARE_KEYS = frozenset({"sessions", "messages", "rate", "shard_index", "shard_count"})
# Config keys that change what a part prints, not the load it puts on the server.
OUTPUT_KEYS = frozenset({"counter", "verbose"})
_MISSING = object()

Named = Sequence[tuple[str, Result]]  # (the file's name as given, its result)


def not_one_run(named: Named) -> str | None:
    """Why ``named`` are not the parts of one run, in one line naming the files and how
    they differ; None when they are (or when there is only one)."""
    return _config_differs(named) or _gap_in_time(named)


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
        if run.started_at > end:
            gap = (run.started_at - end).total_seconds()
            return (f"{name}: not a part of the same run as {last_name}: it started "
                    f"{gap:.3f} s after {last_name} ended (the parts of a run overlap in time)")
        run_end = run.started_at + timedelta(seconds=run.elapsed_s)
        if run_end > end:
            last_name, end = name, run_end
    return None


def same_run_twice(named: Named) -> str | None:
    """A result given twice, found by content (start, elapsed time, config, counts), in
    one line; None if there is none."""
    seen: dict[tuple[Any, ...], str] = {}
    for name, value in named:
        key = (value.started_at, value.elapsed_s, repr(sorted(value.config.items())),
               tuple(sorted((o.value, n) for o, n in value.outcomes.items())))
        if key in seen:
            return (f"{name}: the same run as {seen[key]} (same start, length, config and "
                    "counts): its runs would count twice")
        seen[key] = name
    return None
