"""Which run a result belongs to: its run id, and the shards of that run it holds.

Shards of one load on several hosts (--shard I/N) carry the same run id (--run-id, or the
default made from the start time and the shard count: shards started together with
--start-at agree on it) and each its own index; a merge holds the union of its parts'
indices. qmqp-report merges the shards of one run only, and names the shards missing
from a merge or given twice (parts.py).

JSON: ``"run_id": "20261206T031500Z-8"``, ``"shards": {"count": 8, "indices": [3]}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qmqpsource.errors import ConfigError, ResultError

__all__ = ["MAX_RUN_ID", "Shards", "check_run_id", "default_run_id", "shards_from_json"]

# A run id is a name for people and file names: short, and nothing a shell or a path
# would take apart.
MAX_RUN_ID = 128
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]*")


def check_run_id(text: str, field: str = "run_id") -> str:
    """``text`` if it can be a run id; ConfigError naming ``field`` if not."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_RUN_ID or not _RUN_ID.fullmatch(
            text) or not text.isascii():
        raise ConfigError(f"{field} must be 1 to {MAX_RUN_ID} letters, digits and . _ : @ + - "
                          f"(starting with a letter or digit), not {text!r}", field=field)
    return text


def default_run_id(start: datetime, shard_count: int, *, agreed: bool = True) -> str:
    """The run id of a run that was given none: its start (UTC) and its number of shards.
    An ``agreed`` start (--start-at, which shards share) to the second, as in
    ``20261206T031500Z-8``; a run's own start to the microsecond, so that two runs
    started in the same second are two runs (``20261206T031500.250113Z-1``)."""
    when = start.astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%S}{'' if agreed else f'.{when:%f}'}Z-{shard_count}"


@dataclass(frozen=True, slots=True)
class Shards:
    """Shards ``indices`` (sorted, each once) of a run of ``count`` shards."""

    count: int
    indices: tuple[int, ...]

    @classmethod
    def one(cls, index: int, count: int) -> Shards:
        return cls(count, (index,))

    @property
    def missing(self) -> tuple[int, ...]:
        held = set(self.indices)
        return tuple(i for i in range(self.count) if i not in held)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "indices": list(self.indices)}

    @classmethod
    def union(cls, parts: Iterable[Shards | None]) -> Shards | None:
        """The shards a merge of ``parts`` holds; None where any part's are unknown or
        the parts are of runs of different shard counts."""
        known = list(parts)
        if not known or any(p is None for p in known):
            return None
        counts = {p.count for p in known if p is not None}
        if len(counts) != 1:
            return None
        indices = sorted({i for p in known if p is not None for i in p.indices})
        return cls(counts.pop(), tuple(indices))


def shards_from_json(obj: Any) -> Shards:
    """A result document's ``shards``, checked; ResultError with one line if malformed."""
    if not isinstance(obj, dict):
        raise ResultError("shards: not an object")
    count, indices = obj.get("count"), obj.get("indices")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= 1 << 20:
        raise ResultError("shards.count: not a number of shards")
    if not isinstance(indices, list) or len(indices) > count or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in indices):
        raise ResultError("shards.indices: not a list of shard indices below shards.count")
    if len(set(indices)) != len(indices):
        raise ResultError("shards.indices: an index given twice")
    return Shards(count, tuple(sorted(indices)))
