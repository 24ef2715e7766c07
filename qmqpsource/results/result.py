"""A run's result, schema ``qmqpsource.result/2``: build, JSON, parse, exact merge.

The histograms' ``hdr`` strings are the source of truth: parsing recomputes every
percentile from them, and merging adds counts and histograms, so that results from
several processes or hosts combine exactly. ``elapsed_s`` of a merge spans from the
earliest start to the latest end; throughput is recomputed over that span.

Throughput's ``messages_per_s`` counts every message that ended (``attempted``),
failures included; ``accepted_per_s`` only those accepted (figures.Throughput).

Schema /2 adds the timeline (timeline.py): ``interval_s`` and ``timeline``. Files of
schema /1 are still read, with no timeline (an empty one). Each field of a document is
read and checked by document.py; the typed figures the API gives (counts, throughput,
latency_ms, status) are figures.py's; which results may be merged is parts.py's say.

No I/O here beyond ``read`` and ``write`` of the files given. json is imported only
by those, so that a run without --json does not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from qmqpsource.errors import ConfigError, ResultError
from qmqpsource.results import document
from qmqpsource.results.checks import Verdict, unjudged_failures
from qmqpsource.results.document import ERROR_CAUSES
from qmqpsource.results.figures import (
    PERCENTILES,
    RUN_STATUSES,
    Counts,
    LatencySummary,
    RunStatus,
    Throughput,
)
from qmqpsource.results.histogram import MAX_TOTAL, Histogram
from qmqpsource.results.identity import Shards, check_run_id, shards_from_json
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import LATENCIES, RunStats
from qmqpsource.results.timeline import DEFAULT_INTERVAL, Interval, merge_timelines
from qmqpsource.values import MAX_COUNT

__all__ = [
    "ERROR_CAUSES",
    "PERCENTILES",
    "SCHEMA",
    "SCHEMA_1",
    "SIZE_LIMIT",
    "STATUSES",
    "Result",
    "ResultError",
    "decode",
    "dumps",
    "from_dict",
    "from_stats",
    "loads",
    "merge",
    "read",
    "to_dict",
    "write",
]

SCHEMA = "qmqpsource.result/2"
# The schema before the timeline: still read.
SCHEMA_1 = "qmqpsource.result/1"
# A result is a few KiB (a merge of thousands of runs, a few MiB): a file larger than
# this is not one, and is not read further (/dev/zero would fill the memory).
SIZE_LIMIT = 64 * 1024 * 1024
STATUSES = RUN_STATUSES


@dataclass(frozen=True)
class Result:
    """One run, or several merged. ``outcomes`` holds every Outcome, zeros included."""

    tool_name: str
    tool_version: str
    config: dict[str, Any]
    started_at: datetime
    elapsed_s: float
    outcomes: dict[Outcome, int]
    recipients: int
    bytes_sent: int
    latency: dict[str, Histogram]
    status: RunStatus = "completed"
    failure: str | None = None
    runs: int = 1
    behind_schedule: int = 0
    cut_off: int = 0
    checks: tuple[Verdict, ...] = ()  # --check, judged against this result
    interval_s: float = DEFAULT_INTERVAL  # the timeline's step
    timeline: tuple[Interval, ...] = ()  # in order; empty: none (a schema /1 result)
    # The embedded sink's own counts (--embedded-sink), as its --json summary has them.
    sink: dict[str, Any] | None = None
    workers: int | None = None  # the processes that ran the load (--workers); None: one
    run_id: str | None = None  # the run this is (a part of): identity.py
    shards: Shards | None = None  # the shards of that run it holds; None: not known

    @property
    def attempted(self) -> int:
        return sum(self.outcomes.values())

    @property
    def errors(self) -> dict[str, int]:
        return {o.value: n for o, n in self.outcomes.items() if o.is_error}

    @property
    def error(self) -> int:
        return sum(self.errors.values())

    def rate(self, amount: int) -> float:
        return amount / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        """The run completed, no message failed that no check allowed, and every check
        held: what a CI job wants to know (the command line's exit status 0)."""
        return (self.status == "completed" and all(v.ok for v in self.checks)
                and unjudged_failures(self.checks, self.outcomes) == 0)

    # What the JSON document says, typed, for the Python API: result.counts.accepted.

    @property
    def counts(self) -> Counts:
        """Messages by outcome, as the JSON's ``counts``."""
        return Counts.of(self.outcomes)

    @property
    def throughput(self) -> Throughput:
        """Messages, recipients and bytes a second, as the JSON's ``throughput``."""
        return Throughput(
            messages_per_s=round(self.rate(self.attempted), 3),
            accepted_per_s=round(self.rate(self.outcomes[Outcome.ACCEPTED]), 3),
            recipients_per_s=round(self.rate(self.recipients), 3),
            bytes_per_s=round(self.rate(self.bytes_sent), 3),
        )

    @property
    def latency_ms(self) -> dict[str, LatencySummary]:
        """Each latency's summary by name (connect, reply, total: reply is missing from
        some results of schema /1), as the JSON's ``latency_ms`` without ``hdr``."""
        return {name: LatencySummary.of(h) for name, h in self.latency.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema qmqpsource.result), as a dict."""
        return to_dict(self)


def _all_outcomes(counts: Mapping[Outcome, int]) -> dict[Outcome, int]:
    return {o: int(counts.get(o, 0)) for o in Outcome}


def from_stats(
    stats: RunStats,
    config: Mapping[str, Any],
    *,
    tool_name: str,
    tool_version: str,
    status: RunStatus = "completed",
    failure: str | None = None,
) -> Result:
    """The result of a run that has finished (stats.finish() called)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    started_at = stats.started_at
    if started_at is None:
        raise ValueError("the run never began")
    interval_s, timeline = stats.timeline()
    return Result(
        tool_name=tool_name,
        tool_version=tool_version,
        config=dict(config),
        started_at=started_at,
        elapsed_s=stats.elapsed,
        outcomes=_all_outcomes(stats.counts),
        recipients=stats.recipients,
        bytes_sent=stats.bytes_sent,
        latency={name: h.copy() for name, h in stats.histograms().items()},
        status=status,
        failure=failure,
        behind_schedule=stats.behind_schedule,
        cut_off=stats.cut_off,
        interval_s=interval_s,
        timeline=timeline,
    )


def _latency_dict(histogram: Histogram) -> dict[str, Any]:
    return {**LatencySummary.of(histogram).to_dict(), "hdr": histogram.encode()}


def to_dict(result: Result) -> dict[str, Any]:
    """The JSON object of schema qmqpsource.result/2."""
    out = {
        **_summary_dict(result),
        "interval_s": round(result.interval_s, 6),
        "timeline": [interval.to_dict() for interval in result.timeline],
    }
    if result.run_id is not None:
        out["run_id"] = result.run_id
    if result.shards is not None:
        out["shards"] = result.shards.to_dict()
    if result.workers is not None:
        out["workers"] = result.workers
    if result.sink is not None:
        out["sink"] = result.sink
    return out


def _summary_dict(result: Result) -> dict[str, Any]:
    """The JSON object but the timeline (what schema /1 had)."""
    return {
        "schema": SCHEMA,
        "tool": {"name": result.tool_name, "version": result.tool_version},
        "config": result.config,
        "status": result.status,
        "failure": result.failure,
        "runs": result.runs,
        "started_at": result.started_at.isoformat(timespec="microseconds"),
        "elapsed_s": round(result.elapsed_s, 6),
        "counts": result.counts.to_dict(),
        "errors": result.errors,
        "recipients": result.recipients,
        "bytes_sent": result.bytes_sent,
        "behind_schedule": result.behind_schedule,
        "cut_off": result.cut_off,
        "throughput": result.throughput.to_dict(),
        "latency_ms": {name: _latency_dict(h) for name, h in result.latency.items()},
        "checks": [verdict.to_dict() for verdict in result.checks],
    }


def from_dict(obj: Any) -> Result:
    """Validate and read a parsed JSON object; percentiles are recomputed from ``hdr``.
    Each field is read and checked by document.py."""
    if not isinstance(obj, dict):
        raise ResultError("not a JSON object")
    schema = obj.get("schema")
    if schema not in (SCHEMA, SCHEMA_1):
        raise ResultError(f"schema is {schema!r}, not {SCHEMA!r} (nor {SCHEMA_1!r})")
    tool = document.get(obj, "tool", dict)
    started_at, elapsed = document.times(obj)
    counts = document.get(obj, "counts", dict)
    outcomes = document.outcomes(counts, document.get(obj, "errors", dict))
    failure = obj.get("failure")
    if failure is not None and not isinstance(failure, str):
        raise ResultError("failure: wrong type")
    runs = document.count(obj, "runs") if "runs" in obj else 1
    if runs < 1:
        raise ResultError("runs: not a positive count")
    interval_s = DEFAULT_INTERVAL
    timeline: tuple[Interval, ...] = ()  # schema /1: none
    if schema == SCHEMA:
        interval_s, timeline = document.timeline(obj, counts, started_at)
    return Result(
        tool_name=str(document.get(tool, "name", str, "tool.")),
        tool_version=str(document.get(tool, "version", str, "tool.")),
        config=dict(document.get(obj, "config", dict)),
        started_at=started_at,
        elapsed_s=elapsed,
        outcomes=outcomes,
        recipients=document.count(obj, "recipients"),
        bytes_sent=document.count(obj, "bytes_sent"),
        latency=document.latencies(document.get(obj, "latency_ms", dict),
                                   sum(outcomes.values())),
        status=document.status(obj),
        failure=failure,
        runs=runs,
        behind_schedule=document.count(obj, "behind_schedule") if "behind_schedule" in obj else 0,
        cut_off=document.count(obj, "cut_off") if "cut_off" in obj else 0,
        checks=document.verdicts(obj.get("checks", [])),
        interval_s=interval_s,
        timeline=timeline,
        run_id=_run_id(obj),
        shards=shards_from_json(obj["shards"]) if "shards" in obj else None,
    )


def _run_id(obj: Mapping[str, Any]) -> str | None:
    if "run_id" not in obj:
        return None
    try:
        return check_run_id(obj["run_id"])
    except ConfigError as exc:
        raise ResultError(str(exc)) from None


def _merge_config(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Options every run shares keep their value; where runs differ, the distinct values."""
    out: dict[str, Any] = {}
    for config in configs:
        for key in config:
            if key in out:
                continue
            values: list[Any] = []
            for other in configs:
                value = other.get(key)
                if value not in values:
                    values.append(value)
            out[key] = values[0] if len(values) == 1 else values
    return out


def _merge_status(results: Sequence[Result]) -> RunStatus:
    statuses = {r.status for r in results}
    worst: tuple[RunStatus, ...] = ("interrupted", "failed")
    for status in worst:
        if status in statuses:
            return status
    return "completed"


def merge(results: Sequence[Result], *, tool_name: str, tool_version: str) -> Result:
    """Several results as one: counts add, histograms merge, elapsed spans all the runs."""
    if not results:
        raise ValueError("nothing to merge")
    _refuse_overflow(results)
    start = min(r.started_at for r in results)
    try:
        end = max(r.started_at + timedelta(seconds=r.elapsed_s) for r in results)
    except OverflowError:
        raise ResultError("started_at plus elapsed_s is out of range") from None
    names = [n for n in LATENCIES if all(n in r.latency for r in results)]
    failures: list[str] = []
    elapsed = (end - start).total_seconds()
    interval_s, timeline = merge_timelines(
        ((r.started_at, r.interval_s, r.timeline) for r in results), start
    )
    for r in results:
        if r.failure is not None and r.failure not in failures:
            failures.append(r.failure)
    return Result(
        tool_name=tool_name,
        tool_version=tool_version,
        config=_merge_config([r.config for r in results]),
        started_at=start,
        elapsed_s=elapsed,
        outcomes={o: sum(r.outcomes[o] for r in results) for o in Outcome},
        recipients=sum(r.recipients for r in results),
        bytes_sent=sum(r.bytes_sent for r in results),
        latency={
            n: sum((r.latency[n] for r in results[1:]), results[0].latency[n].copy())
            for n in names
        },
        status=_merge_status(results),
        failure="; ".join(failures) or None,
        runs=sum(r.runs for r in results),
        behind_schedule=sum(r.behind_schedule for r in results),
        cut_off=sum(r.cut_off for r in results),
        interval_s=interval_s,
        timeline=timeline,
        run_id=_common({r.run_id for r in results}),
        shards=Shards.union(r.shards for r in results),
    )


def _common(values: set[str | None]) -> str | None:
    """The one value all parts share; None if they differ."""
    return values.pop() if len(values) == 1 else None


def _refuse_overflow(results: Sequence[Result]) -> None:
    """Counts that cannot be added are refused before they are: a merged histogram of
    more than MAX_TOTAL values made hdrh's encoder corrupt its heap (an abort), and the
    other counts stay within int64, as a reader takes them."""
    sums = [(f"latency_ms.{name}", sum(r.latency[name].count for r in results
                                       if name in r.latency), MAX_TOTAL)
            for name in LATENCIES]
    sums += [(name, sum(getattr(r, name) for r in results), MAX_COUNT)
             for name in ("recipients", "bytes_sent", "runs", "behind_schedule", "cut_off")]
    for name, total, limit in sums:
        if total > limit:
            raise ResultError(f"merged, {name} would count {total}, more than {limit}")


def dumps(result: Result, extra: Mapping[str, Any] | None = None) -> str:
    """``result`` as the text of one JSON document (``extra``: more keys). NaN and
    Infinity are never written (JSON has neither): a ResultError."""
    import json

    try:
        text = json.dumps({**to_dict(result), **(extra or {})}, indent=2, allow_nan=False)
    except ValueError as exc:
        raise ResultError(f"not written: {exc}") from None
    return text + "\n"


def write(result: Result, file: IO[str], extra: Mapping[str, Any] | None = None) -> None:
    """Write ``result`` as one JSON document to an open text file (``extra``: more keys)."""
    file.write(dumps(result, extra))
    file.flush()


def read(path: str) -> Result:
    """Read one result file; any problem (unreadable, too large, not JSON, bad schema) is
    a ResultError. A FIFO is read until its writer closes it (at once if it has none)."""
    from qmqpsource.infile import InputError, read_limited

    try:
        data = read_limited(path, SIZE_LIMIT)
    except InputError as exc:
        raise ResultError(str(exc)) from None
    return decode(data)


def decode(data: bytes) -> Result:
    """Parse one result from the bytes of a file; problems are ResultErrors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultError("not UTF-8 text") from None
    return loads(text)


def loads(text: str) -> Result:
    """Parse one result from JSON text; problems are ResultErrors."""
    import json

    if not text.strip():
        raise ResultError("empty: not a result")  # a FIFO with no writer reads so
    try:
        obj = document.parse_json(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ResultError("not JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits, say
        raise ResultError(f"not JSON: {str(exc).split(';')[0]}") from None
    return from_dict(obj)
