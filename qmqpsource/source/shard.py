"""Splitting one run's work into N equal shares: for --shard I/N and for --workers.

Pure arithmetic, no I/O. Shares differ by at most one; sequence numbers are
interleaved (shard I numbers its k-th message I + N*k), so shards never collide
whether or not the total is known in advance (a --duration run has none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qmqpsource.errors import ConfigError
from qmqpsource.values import MAX_COUNT

__all__ = ["Shard", "ShardError", "parse_shard"]


class ShardError(ConfigError):
    """A --shard value that is not I/N with 0 <= I < N."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Share ``index`` (from 0) of ``count`` equal shares."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardError(f"shard {self.index}/{self.count}: need 0 <= I < N")
        if self.count > MAX_COUNT:  # as a config's shard_count: a count fits in int64
            raise ShardError(f"shard {self.index}/{self.count}: N must be at most {MAX_COUNT}")

    def share(self, total: int) -> int:
        """This shard's part of ``total`` whole units; the first ``total % N`` get one more."""
        base, extra = divmod(total, self.count)
        return base + (1 if self.index < extra else 0)

    def share_at_least_one(self, total: int) -> int:
        """As share(), but never zero: a shard with work needs one session to do it."""
        return max(1, self.share(total))

    def rate(self, total: float) -> float:
        return total / self.count

    def sequence(self, k: int) -> int:
        """The run-wide sequence number of this shard's k-th message (k from 0)."""
        return self.index + self.count * k

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``I/N``, I counted from 0 (as Kubernetes' JOB_COMPLETION_INDEX is)."""
    # [0-9], not \d: \d takes every script's digits (Arabic-Indic ones), which int() reads.
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text.strip())  # compiled only with --shard
    if match is None:
        raise ShardError(f"--shard wants I/N (e.g. 0/4), not {text!r}")
    return Shard(int(match.group(1)), int(match.group(2)))
