"""Result documents with a timeline, made up: the report's tests before real runs have one.

The timeline follows the agreed schema qmqpsource.result/2 (``interval_s``, and per
interval ``offset_s``, ``duration_s``, ``counts``, ``latency_ms.total``); the rest is a
real Result's document, so that qmqp-report reads it as it reads any other.
"""

from __future__ import annotations

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


def _interval(n: int, rng: random.Random, slow: float, failing: bool) -> tuple[dict[str, Any],
                                                                               list[int]]:
    sag = 1.0 - 0.3 * math.sin(n / 30) ** 2  # throughput that sags and recovers
    attempted = int(800 * sag / slow)
    tempfail = rng.randrange(0, 8) if failing else 0
    latencies = [int(rng.lognormvariate(math.log(400 * slow), 0.5)) for _ in range(attempted)]
    histogram = Histogram()
    for value in latencies:
        histogram.record(value)
    p50, p90, p99 = histogram.percentiles([50, 90, 99])
    return {
        "offset_s": float(n), "duration_s": 1.0,
        "counts": {"attempted": attempted, "accepted": attempted - tempfail,
                   "tempfail": tempfail, "permfail": 0, "error": 0},
        "latency_ms": {"total": {"count": attempted, "p50": p50 / 1000, "p90": p90 / 1000,
                                 "p99": p99 / 1000, "max": histogram.max / 1000,
                                 "hdr": ""}},
    }, latencies


def document(intervals: int = 60, *, slow: float = 1.0, failing: bool = False,
             seed: int = 1, hdr: bool = False) -> dict[str, Any]:
    """A run of ``intervals`` one-second intervals; ``slow`` scales latency up and rate down.
    ``hdr``: keep each interval's histogram (as a real /2 result does), else leave it empty."""
    rng = random.Random(seed)
    stats = RunStats(recipients_per_message=1, bytes_per_message=1024)
    timeline = []
    for n in range(intervals):
        entry, latencies = _interval(n, rng, slow, failing)
        tempfail = entry["counts"]["tempfail"]
        for i, value in enumerate(latencies):
            outcome = Outcome.TEMPFAIL if i < tempfail else Outcome.ACCEPTED
            stats.record(outcome, 0.0, value / 4e6, value / 1e6)
        if hdr:
            histogram = Histogram()
            for value in latencies:
                histogram.record(value)
            entry["latency_ms"]["total"]["hdr"] = histogram.encode()
        else:
            del entry["latency_ms"]["total"]["hdr"]
        timeline.append(entry)
    stats.begin()
    stats.finish()
    config = SourceConfig("127.0.0.1:6280", sessions=20, duration=float(intervals)).as_dict()
    made = result.from_stats(stats, config, tool_name="qmqp-source", tool_version="0.1.0")
    doc = made.to_dict()
    doc.update(started_at=T0.isoformat(), elapsed_s=float(intervals), interval_s=1.0,
               timeline=timeline)
    doc["throughput"]["messages_per_s"] = doc["counts"]["attempted"] / intervals
    return doc
