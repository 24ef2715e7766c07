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


# The README's worked example: (rate asked, achieved, p50 ms, p99 ms, verdict), in the
# order the search ran them (doubling, then bisecting back).
SEARCH = [(200.0, 200.0, 1.718, 6.351, "held"), (400.0, 400.0, 1.723, 6.967, "held"),
          (800.0, 800.0, 1.609, 11.767, "held"), (1600.0, 1600.0, 1.953, 29.423, "held"),
          (3200.0, 2251.4, 794.111, 1790.975, "failed"),
          (2400.0, 2228.0, 262.655, 1279.999, "failed"),
          (2000.0, 2000.0, 12.783, 1023.487, "failed"), (1800.0, 1800.0, 2.467, 20.079, "held"),
          (1900.0, 1900.0, 2.865, 43.455, "held"), (1950.0, 1950.0, 2.549, 41.183, "held")]


def find_rate(steps: list[tuple[float, float, float, float, str]] | None = None,
              rate: float | None = 1950.0, stopped: str = "bracket",
              check: str = "p99<200ms") -> dict[str, Any]:
    """A --find-rate search as its JSON field ``find_rate`` has it (README's example by
    default); the check of a step that did not hold failed."""
    return {"rate": rate, "stopped": stopped, "step_duration_s": 5.0, "settle_s": 1.0,
            "steps": [{"rate": asked, "achieved": achieved, "ok": verdict == "held",
                       "verdict": verdict,
                       "checks": [{"check": check, "value": p99, "ok": verdict == "held"}],
                       "p50_ms": p50, "p99_ms": p99, "failed": 0, "behind_schedule": 0}
                      for asked, achieved, p50, p99, verdict in (steps or SEARCH)]}
