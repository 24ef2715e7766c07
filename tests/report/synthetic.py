"""Result documents with a timeline, made up: the report's tests before real runs have one.

The timeline follows the agreed schema qmqpsource.result/2 (``interval_s``, and per
interval ``offset_s``, ``duration_s``, ``counts``, ``latency_ms.total``); the rest is a
real Result's document, so that qmqp-report reads it as it reads any other.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime
from typing import Any

from qmqpsource.results import result
from qmqpsource.results.histogram import Histogram
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.source.config import SourceConfig

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _interval(n: int, rng: random.Random, rate: int, slow: float,
              failing: bool) -> tuple[dict[str, Any], list[tuple[Outcome, int]]]:
    sag = 1.0 - 0.3 * math.sin(n / 30) ** 2  # throughput that sags and recovers
    attempted = int(rate * sag / slow)
    failed = [rng.randrange(0, 4) if failing else 0 for _ in range(3)]
    outcomes = ([Outcome.TEMPFAIL] * failed[0] + [Outcome.PERMFAIL] * failed[1]
                + [Outcome.TIMEOUT] * failed[2])
    outcomes += [Outcome.ACCEPTED] * (attempted - len(outcomes))
    events = [(o, int(rng.lognormvariate(math.log(400 * slow), 0.5))) for o in outcomes]
    histogram = Histogram()
    for _, value in events:
        histogram.record(value)
    p50, p90, p99 = histogram.percentiles([50, 90, 99])
    return {
        "offset_s": float(n), "duration_s": 1.0,
        "counts": {"attempted": attempted, "accepted": attempted - sum(failed),
                   "tempfail": failed[0], "permfail": failed[1], "error": failed[2]},
        "latency_ms": {"total": {"count": attempted, "p50": p50 / 1000, "p90": p90 / 1000,
                                 "p99": p99 / 1000, "max": histogram.max / 1000,
                                 "hdr": histogram.encode()}},
    }, events


def document(intervals: int = 60, *, rate: int = 800, slow: float = 1.0,
             failing: bool = False, seed: int = 1) -> dict[str, Any]:
    """A run of ``intervals`` one-second intervals of about ``rate`` messages; ``slow``
    scales latency up and the rate down; ``failing`` adds a few failures of each kind."""
    rng = random.Random(seed)
    stats = RunStats(recipients_per_message=1, bytes_per_message=1024)
    timeline = []
    for n in range(intervals):
        entry, events = _interval(n, rng, rate, slow, failing)
        for outcome, value in events:
            stats.record(outcome, 0.0, value / 4e6, value / 1e6)
        timeline.append(entry)
    stats.begin()
    stats.finish()
    config = SourceConfig("127.0.0.1:6280", sessions=20, duration=float(intervals)).as_dict()
    made = result.from_stats(stats, config, tool_name="qmqp-source", tool_version="0.1.0")
    doc = dataclasses.replace(made, started_at=T0, elapsed_s=float(intervals)).to_dict()
    doc.update(interval_s=1.0, timeline=timeline)
    return doc
