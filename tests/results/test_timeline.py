"""The timeline: recording by interval, on given times and on trio's MockClock; JSON; merges."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qmqpsource.results import result, timeline
from qmqpsource.results.histogram import HIGHEST, MAX_TOTAL, Histogram, encode_sparse
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.results.timeline import COUNT_KEYS, Interval
from qmqpsource.source.config import SourceConfig
from tests.qmqp_server import qmqp_server
from tests.source_support import make_runner

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
CONFIG = SourceConfig("127.0.0.1:628").as_dict()
Event = tuple[Outcome, float, float | None, float]


def ok(done: float, latency: float = 0.002) -> Event:
    return (Outcome.ACCEPTED, done - latency, done - latency / 2, done)


def recorded(
    events: Sequence[Event], end: float, step: float = 1.0, started_at: datetime = T0
) -> result.Result:
    """The result of a run that starts at clock 0, has ``events`` and ends at ``end``."""
    stats = RunStats(1, 100, interval=step)
    stats.begin(now=0.0)
    for event in events:
        stats.record(*event)
    stats.finish(now=end)
    made = result.from_stats(stats, CONFIG, tool_name="qmqp-source", tool_version="0")
    return dataclasses.replace(made, started_at=started_at, elapsed_s=end)


def column(value: result.Result, key: str) -> list[int]:
    return [interval.counts[key] for interval in value.timeline]


def test_a_message_counts_in_the_interval_it_ended_in_and_a_stall_shows() -> None:
    events = [ok(0.1), ok(0.999), ok(1.0), ok(1.5), ok(4.2)]  # nothing ends in 2 s..4 s
    value = recorded(events, end=4.5)
    assert column(value, "accepted") == [2, 2, 0, 0, 1]
    assert [i.offset_s for i in value.timeline] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [i.duration_s for i in value.timeline] == [1.0, 1.0, 1.0, 1.0, 0.5]
    assert value.timeline[2].sparse == {} and value.timeline[2].latency_ms["total"]["max"] == 0
    assert value.interval_s == 1.0


def test_failures_count_by_kind_and_every_key_adds_up() -> None:
    events = [
        ok(0.2),
        (Outcome.TEMPFAIL, 0.1, 0.15, 0.3),
        (Outcome.REFUSED, 0.5, None, 0.5),
        (Outcome.PERMFAIL, 1.0, 1.1, 1.2),
        (Outcome.TIMEOUT, 0.0, 0.1, 1.9),
        ok(2.5),
    ]
    value = recorded(events, end=2.6)
    assert [dict(i.counts) for i in value.timeline] == [
        {"attempted": 3, "accepted": 1, "tempfail": 1, "permfail": 0, "error": 1},
        {"attempted": 2, "accepted": 0, "tempfail": 0, "permfail": 1, "error": 1},
        {"attempted": 1, "accepted": 1, "tempfail": 0, "permfail": 0, "error": 0},
    ]
    for key in COUNT_KEYS:
        assert sum(column(value, key)) == getattr(value.counts, key)
    # The interval histograms together are the run's total latency histogram.
    together = Histogram()
    for interval in value.timeline:
        together = together + interval.total
    assert together == value.latency["total"]


def test_the_interval_histogram_holds_that_intervals_latencies() -> None:
    value = recorded([ok(0.5, 0.004), ok(0.6, 0.004), ok(1.5, 0.250)], end=2.0)
    first, second = (i.latency_ms["total"] for i in value.timeline)
    assert (first["count"], second["count"]) == (2, 1)
    assert 3.9 <= first["p50"] <= first["max"] <= 4.1
    assert 249 <= second["p99"] <= second["max"] <= 251


def test_a_run_that_ends_on_a_boundary_has_no_empty_last_interval() -> None:
    assert len(recorded([ok(0.5)], end=2.0).timeline) == 2
    assert len(recorded([], end=0.0).timeline) == 1  # a run, however short, has one


@pytest.mark.parametrize("step", [0.25, 0.5, 2.0])
def test_steps_other_than_a_second(step: float) -> None:
    # Binary fractions: the boundaries are exact, so the expected buckets are too.
    events = [ok(t / 64, latency=1 / 1024) for t in range(1, 320, 3)]
    value = recorded(events, end=5.0, step=step)
    assert value.interval_s == step
    assert len(value.timeline) == math.ceil(5.0 / step)
    assert sum(column(value, "accepted")) == len(events)
    for interval in value.timeline:
        start = interval.offset_s
        expected = sum(1 for e in events if start <= e[3] < start + step)
        assert interval.counts["accepted"] == expected, start


def test_a_long_run_widens_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "MAX_INTERVALS", 10)
    value = recorded([ok(t + 0.5) for t in range(25)], end=25.0)
    assert value.interval_s == 3.0
    assert len(value.timeline) == 9
    assert column(value, "accepted") == [3] * 8 + [1]
    assert value.timeline[-1].duration_s == 1.0


async def test_recorded_on_trios_clock(autojump_clock: Any) -> None:
    # The server answers after 0.25 s (0.25 s + 2 s for the 6th): on MockClock the replies
    # come at exact times, and a stall of two empty intervals follows the 5th.
    async with qmqp_server(delay=lambda i: 2.25 if i == 5 else 0.25) as server:
        runner, _, _ = await make_runner(server.target, sessions=1, messages=10)
        stats = runner.stats = RunStats(1, 100, interval=1.0)
        stats.begin()
        run = await runner.run()
        stats.finish()
    assert run.failure is None and stats.accepted == 10
    step, intervals = stats.timeline()
    assert step == 1.0
    # Replies at 0.25 0.5 0.75 | 1.0 1.25 | (stall) | 3.5 3.75 | 4.0 4.25 4.5
    assert [i.counts["accepted"] for i in intervals] == [3, 2, 0, 2, 3]
    assert intervals[-1].duration_s == pytest.approx(0.5)


def test_json_round_trip_keeps_the_timeline() -> None:
    value = recorded([ok(0.5), (Outcome.RESET, 1.0, 1.1, 1.3), ok(3.2)], end=3.5, step=0.5)
    document = result.to_dict(value)
    assert document["interval_s"] == 0.5
    entry = document["timeline"][2]
    assert entry["offset_s"] == 1.0 and entry["duration_s"] == 0.5
    assert entry["counts"] == {"attempted": 1, "accepted": 0, "tempfail": 0, "permfail": 0,
                               "error": 1}
    assert set(entry["latency_ms"]["total"]) == {"count", "p50", "p90", "p99", "max", "hdr"}
    assert result.loads(json.dumps(document)) == value


def test_schema_1_files_are_read_with_no_timeline() -> None:
    document = result.to_dict(recorded([ok(0.5)], end=1.0))
    document["schema"] = "qmqpsource.result/1"
    del document["interval_s"], document["timeline"]
    old = result.from_dict(document)
    assert old.timeline == () and old.counts.accepted == 1
    # A merge with one of them has no timeline: that file's messages have no interval.
    merged = result.merge([old, recorded([ok(0.5)], end=1.0)], tool_name="t", tool_version="0")
    assert merged.timeline == () and result.to_dict(merged)["timeline"] == []
    assert result.to_dict(merged)["schema"] == "qmqpsource.result/2"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=HIGHEST), min_size=1, max_size=60))
def test_interval_percentiles_are_the_histograms(values: list[int]) -> None:
    histogram = Histogram()
    for v in values:
        histogram.record(v)
    interval = Interval.of(0.0, 1.0, {}, timeline.sparse_of(histogram))
    assert dict(interval.sparse) == timeline.sparse_of(histogram)
    percentiles = [0.0, 50.0, 90.0, 99.0, 100.0]
    assert interval.percentiles(percentiles) == histogram.percentiles(percentiles)
    assert interval.max_us == histogram.max
    assert interval.total == histogram


# -- merges: aligned on wall-clock time


def test_a_merge_aligns_intervals_on_wall_clock_time() -> None:
    a = recorded([ok(0.5), ok(1.5), ok(2.5)], end=3.0)
    # b started 1 s after a (as a host started a second late would): its first interval
    # is a's second.
    b = recorded([ok(0.5), ok(0.6), ok(1.5)], end=2.0, started_at=T0 + timedelta(seconds=1))
    merged = result.merge([a, b], tool_name="qmqp-report", tool_version="0")
    assert merged.started_at == T0
    assert column(merged, "accepted") == [1, 3, 2]
    assert [i.offset_s for i in merged.timeline] == [0.0, 1.0, 2.0]
    expected = a.timeline[1].total + b.timeline[0].total
    assert merged.timeline[1].total == expected  # histograms add exactly
    # Through JSON too, and in any order.
    again = result.merge([result.loads(json.dumps(result.to_dict(r))) for r in (b, a)],
                         tool_name="qmqp-report", tool_version="0")
    assert again.timeline == merged.timeline


def test_an_interval_goes_where_its_start_falls() -> None:
    a = recorded([ok(0.5)], end=1.0)
    # b started 0.6 s after a: its interval 0 starts at 0.6 (a's interval 0), its
    # interval 1 at 1.6 (interval 1), whole, not split. b ends at 2.1: so does the merge.
    b = recorded([ok(0.1), ok(0.9), ok(1.1)], end=1.5, started_at=T0 + timedelta(seconds=0.6))
    merged = result.merge([a, b], tool_name="qmqp-report", tool_version="0")
    assert column(merged, "accepted") == [3, 1, 0]
    assert merged.timeline[-1].duration_s == pytest.approx(0.1)


def test_different_steps_merge_on_the_largest() -> None:
    a = recorded([ok(t / 10) for t in range(1, 40)], end=4.0, step=0.5)
    b = recorded([ok(0.5), ok(2.5)], end=4.0, step=2.0)
    merged = result.merge([a, b], tool_name="qmqp-report", tool_version="0")
    assert merged.interval_s == 2.0
    assert column(merged, "accepted") == [19 + 1, 20 + 1]
    for key in COUNT_KEYS:
        assert sum(column(merged, key)) == getattr(merged.counts, key)


def test_runs_far_apart_merge_into_a_bounded_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "MAX_INTERVALS", 100)
    a = recorded([ok(0.5)], end=1.0)
    b = recorded([ok(0.5)], end=1.0, started_at=T0 + timedelta(days=1))
    merged = result.merge([a, b], tool_name="qmqp-report", tool_version="0")
    assert len(merged.timeline) <= 100
    assert merged.interval_s == 864.0 + 1.0  # a whole multiple of 1 s
    assert column(merged, "accepted")[0] == 1 and column(merged, "accepted")[-1] == 1


# -- bad timelines: one line each


def _bad(change: str) -> dict[str, Any]:
    value = recorded([ok(0.5), ok(1.5)], end=2.0)
    document: dict[str, Any] = json.loads(json.dumps(result.to_dict(value)))
    entry = document["timeline"][1]
    if change == "no interval_s":
        del document["interval_s"]
    elif change == "zero interval_s":
        document["interval_s"] = 0
    elif change == "timeline not a list":
        document["timeline"] = {}
    elif change == "entry not an object":
        document["timeline"][1] = 3
    elif change == "offset backwards":
        entry["offset_s"] = -0.0
        document["timeline"][0]["offset_s"] = 0.5
    elif change == "negative duration":
        entry["duration_s"] = -1
    elif change == "count not an int":
        entry["counts"]["accepted"] = "1"
    elif change == "attempted not the sum":
        entry["counts"]["attempted"] = 2
    elif change == "hdr not a histogram":
        entry["latency_ms"]["total"]["hdr"] = "HISTFAAA"
    elif change == "hdr count differs":
        entry["latency_ms"]["total"]["hdr"] = document["latency_ms"]["total"]["hdr"]
    elif change == "sums differ":
        entry["counts"] = {"attempted": 2, "accepted": 2, "tempfail": 0, "permfail": 0,
                           "error": 0}
        entry["latency_ms"]["total"]["hdr"] = document["latency_ms"]["total"]["hdr"]
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no interval_s", "interval_s: missing or not a number"),
        ("zero interval_s", "interval_s: not a positive number of seconds"),
        ("timeline not a list", "timeline: missing or not a list"),
        ("entry not an object", "timeline[1]: not an object"),
        ("offset backwards", "timeline[1].offset_s: before the interval it follows"),
        ("negative duration", "timeline[1].duration_s: not a duration"),
        ("count not an int", "timeline[1].counts.accepted: missing or not a count"),
        ("attempted not the sum", "timeline[1].counts.attempted is not the sum of the outcomes"),
        ("hdr not a histogram", "timeline[1].latency_ms.total.hdr: not an HdrHistogram"),
        ("hdr count differs", "timeline[1].latency_ms.total: count is not counts.attempted"),
        ("sums differ", "timeline: its counts do not add up to the result's counts"),
    ],
)
def test_bad_timelines_are_refused_in_one_line(change: str, message: str) -> None:
    with pytest.raises(result.ResultError) as caught:
        result.from_dict(_bad(change))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.integers(min_value=0, max_value=28671),
                       st.integers(min_value=1, max_value=MAX_TOTAL // 40), max_size=40))
@example({28671: MAX_TOTAL})  # the 9-byte varint, at the most a histogram holds
def test_sparse_encoding_is_hdrhs_own(sparse: dict[int, int]) -> None:
    dense = Histogram()
    for index, n in sparse.items():
        dense.counts[index] = n
    assert encode_sparse(sparse) == dense.encode()
    if all(n < 2**48 for n in sparse.values()):  # hdrh itself reads no larger counts back
        assert timeline.sparse_of(Histogram.decode(encode_sparse(sparse))) == sparse
