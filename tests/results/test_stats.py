"""RunStats and the latency histograms: same layout and answers as the hdrhistogram package."""

from __future__ import annotations

from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from qmqpsource.results.histogram import (
    COUNTS_LEN,
    HIGHEST,
    LOWEST,
    SIGNIFICANT_FIGURES,
    Histogram,
    HistogramError,
    counts_index,
)
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import LATENCIES, RunStats

# Values up to the top of the counts list (about 38 hours of microseconds).
values = st.integers(min_value=0, max_value=(1 << 37) - 1)
in_range = st.integers(min_value=0, max_value=HIGHEST)


def hdr() -> Any:
    return HdrHistogram(LOWEST, HIGHEST, SIGNIFICANT_FIGURES)


def hdr_of(data: list[int]) -> Any:
    h = hdr()
    for v in data:
        h.record_value(v)
    return h


def test_layout_is_hdrhistograms() -> None:
    assert hdr().counts_len == COUNTS_LEN


@given(values)
def test_counts_index_is_hdrhistograms(value: int) -> None:
    assert counts_index(value) == hdr()._counts_index_for(value)


@settings(max_examples=50, deadline=None)
@given(st.lists(in_range, min_size=1, max_size=200))
def test_percentiles_max_min_mean_are_hdrhistograms(data: list[int]) -> None:
    ours = Histogram()
    for v in data:
        ours.record(v)
    theirs = hdr_of(data)
    assert ours.counts == list(theirs.counts)
    for p in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        assert ours.percentile(p) == theirs.get_value_at_percentile(p), p
    assert ours.max == theirs.get_max_value()
    assert ours.min == theirs.get_min_value()
    assert ours.mean == pytest.approx(theirs.get_mean_value())
    assert ours.count == len(data)


@settings(max_examples=30, deadline=None)
@given(st.lists(in_range, max_size=100))
def test_encode_decode_round_trip_and_hdrh_reads_it(data: list[int]) -> None:
    ours = Histogram()
    for v in data:
        ours.record(v)
    text = ours.encode()
    assert text.startswith("HISTF")
    assert Histogram.decode(text) == ours
    theirs = HdrHistogram.decode(text.encode())
    assert theirs.get_total_count() == len(data)
    if data:
        assert theirs.get_value_at_percentile(99.0) == ours.percentile(99.0)
    # And what hdrh encodes, we read.
    assert Histogram.decode(hdr_of(data).encode().decode()) == ours


@settings(max_examples=30, deadline=None)
@given(st.lists(in_range, max_size=60), st.lists(in_range, max_size=60))
def test_add_is_exact_merge_and_sub_undoes_it(a: list[int], b: list[int]) -> None:
    ha, hb, hab = Histogram(), Histogram(), Histogram()
    for v in a:
        ha.record(v)
        hab.record(v)
    for v in b:
        hb.record(v)
        hab.record(v)
    assert ha + hb == hab
    assert hab - ha == hb
    assert (ha + hb).count == len(a) + len(b)


def test_record_clamps_out_of_range_values() -> None:
    h = Histogram()
    h.record(-5)
    h.record(1 << 50)
    assert h.count == 2
    assert h.min == 0
    assert h.max == hdr_of([HIGHEST]).get_max_value()


@pytest.mark.parametrize(
    "text",
    ["", "not base64!", "SElTVEZBQUFBQUFB", HdrHistogram(1, 1000, 2).encode().decode()],
)
def test_decode_refuses_garbage_and_other_layouts(text: str) -> None:
    with pytest.raises(HistogramError):
        Histogram.decode(text)


def test_empty_histogram() -> None:
    h = Histogram()
    assert (h.count, h.max, h.min, h.mean) == (0, 0, 0, 0.0)
    assert h.percentiles([50.0, 99.0]) == [0, 0]
    assert Histogram.decode(h.encode()) == h


def reference(stats_values: list[tuple[Outcome, float, float | None, float]]) -> RunStats:
    """What record() must amount to, built with the checked Histogram.record."""
    ref = RunStats(3, 100)
    for outcome, started, connected, done in stats_values:
        ref._record(outcome, started, connected, done)
    return ref


times = st.floats(min_value=0.0, max_value=4000.0, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(Outcome)), times, times, times, st.booleans()),
        max_size=40,
    )
)
def test_record_fast_path_equals_general_path(
    events: list[tuple[Outcome, float, float, float, bool]],
) -> None:
    calls: list[tuple[Outcome, float, float | None, float]] = []
    for outcome, a, b, c, came_up in events:
        started, connected, done = sorted((a, b, c))
        calls.append((outcome, 1000.0 + started, 1000.0 + connected if came_up else None,
                      1000.0 + done))
    stats = RunStats(3, 100)
    for call in calls:
        stats.record(*call)
    ref = reference(calls)
    assert stats.counts == ref.counts
    for name in LATENCIES:
        assert stats.histograms()[name] == ref.histograms()[name], name
    assert (stats.accepted, stats.failed, stats.unconnected) == (
        ref.accepted, ref.failed, ref.unconnected
    )


def test_record_by_outcome() -> None:
    stats = RunStats(recipients_per_message=2, bytes_per_message=1000)
    t = 100.0
    stats.record(Outcome.ACCEPTED, t, t + 0.001, t + 0.003)  # 1 ms connect, 2 ms reply
    stats.record(Outcome.ACCEPTED, t, t + 0.001, t + 0.003)
    stats.record(Outcome.TEMPFAIL, t, t + 0.001, t + 0.002)
    stats.record(Outcome.PERMFAIL, t, t + 0.001, t + 0.002)
    stats.record(Outcome.REFUSED, t, None, t + 0.0005)
    stats.record(Outcome.TIMEOUT, t, t + 0.001, t + 0.2)
    assert stats.counts == {
        Outcome.ACCEPTED: 2, Outcome.TEMPFAIL: 1, Outcome.PERMFAIL: 1,
        Outcome.REFUSED: 1, Outcome.TIMEOUT: 1,
    }
    assert (stats.attempted, stats.accepted, stats.failed) == (6, 2, 4)
    # Every message that connected sent its request; the refused one did not.
    assert stats.connected == 5
    assert stats.recipients == 10
    assert stats.bytes_sent == 5000
    assert stats.total.count == 6
    assert stats.connect.count == 5
    assert stats.reply.count == 4  # K, K, Z, D: the timeout never got a reply
    assert stats.connect.percentile(50.0) == pytest.approx(1000, rel=0.01)
    assert stats.reply.max == pytest.approx(2000, rel=0.01)
    assert stats.total.max == pytest.approx(200_000, rel=0.01)


def test_times_beyond_the_range_are_clamped_not_lost() -> None:
    stats = RunStats(1, 1)
    stats.record(Outcome.ACCEPTED, 0.0, 1.0, 10 * 86_400.0)  # ten days
    assert stats.accepted == 1
    assert stats.total.count == stats.connect.count == stats.reply.count == 1
    assert stats.total.max == hdr_of([HIGHEST]).get_max_value()


def test_begin_finish_elapsed() -> None:
    stats = RunStats(1, 1)
    assert stats.elapsed == 0.0 and stats.started_at is None
    stats.begin()
    assert stats.started_at is not None and stats.started_at.tzinfo is not None
    assert stats.elapsed >= 0.0
    stats.finish()
    first = stats.elapsed
    assert stats.elapsed == first  # frozen once finished


def test_finish_without_begin_means_nothing_ran() -> None:
    stats = RunStats(1, 1)
    stats.finish()
    assert stats.started_at is not None
    assert stats.elapsed < 1.0
