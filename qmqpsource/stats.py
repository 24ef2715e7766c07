"""Per-message outcomes and timings of one run."""

from __future__ import annotations

from collections import Counter

from qmqpsource.outcome import Outcome

__all__ = ["RunStats"]


class RunStats:
    """Counts by outcome. ``record`` is on the per-message path: keep it cheap."""

    def __init__(self, recipients_per_message: int, bytes_per_message: int) -> None:
        self.recipients_per_message = recipients_per_message
        self.bytes_per_message = bytes_per_message
        self.counts: Counter[Outcome] = Counter()

    def record(
        self, outcome: Outcome, started: float, connected: float | None, done: float
    ) -> None:
        """One message ended; times are time.perf_counter() values (connected None: never)."""
        self.counts[outcome] += 1

    @property
    def attempted(self) -> int:
        return sum(self.counts.values())

    @property
    def accepted(self) -> int:
        return self.counts[Outcome.ACCEPTED]

    @property
    def failed(self) -> int:
        return self.attempted - self.accepted
