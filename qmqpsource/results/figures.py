"""A result's figures, typed, as its JSON document has them: status, counts, throughput,
latency summaries.

Each value is the one the document shows (rates and milliseconds rounded to three
decimals), so that ``result.counts.accepted`` and ``result.to_dict()["counts"]["accepted"]``
never disagree. result.py makes them from a Result's outcomes and histograms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal, get_args

from qmqpsource.results.histogram import Histogram
from qmqpsource.results.outcome import Outcome

__all__ = ["PERCENTILES", "RUN_STATUSES", "Counts", "LatencySummary", "RunStatus", "Throughput"]

# How a run ended: every message it was asked for ended; a failure stopped it (a failed
# message without -A, a target that would not resolve...); a signal stopped it.
RunStatus = Literal["completed", "failed", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
# Percentile -> its field in a latency summary.
PERCENTILES = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p999"}


@dataclass(frozen=True, slots=True)
class Counts:
    """Messages by outcome: ``error`` is every one that got no reply (errors by cause are
    Result.errors); ``attempted`` is every message that ended, the sum of the others."""

    attempted: int
    accepted: int
    tempfail: int
    permfail: int
    error: int

    @classmethod
    def of(cls, outcomes: Mapping[Outcome, int]) -> Counts:
        error = sum(n for o, n in outcomes.items() if o.is_error)
        accepted, tempfail, permfail = (outcomes.get(o, 0) for o in (
            Outcome.ACCEPTED, Outcome.TEMPFAIL, Outcome.PERMFAIL))
        return cls(accepted + tempfail + permfail + error, accepted, tempfail, permfail, error)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Throughput:
    """Per second of the run's elapsed time. ``messages_per_s`` counts every message that
    ended (``attempted``), failures included, as it always has; ``accepted_per_s`` only
    those the server accepted: a server that fails every message fast has a high
    messages_per_s and an accepted_per_s of 0. Recipients and bytes are those sent."""

    messages_per_s: float
    accepted_per_s: float
    recipients_per_s: float
    bytes_per_s: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _ms(us: float) -> float:
    return round(us / 1000, 3)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """One latency (connect, reply or total) in milliseconds, as HdrHistogram defines its
    figures: ``count`` values, their ``mean``, percentiles and ``max``."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, histogram: Histogram) -> LatencySummary:
        p50, p90, p99, p999 = (_ms(v) for v in histogram.percentiles(list(PERCENTILES)))
        return cls(histogram.count, _ms(histogram.mean), p50, p90, p99, p999,
                   _ms(histogram.max))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
