"""Which results are the parts of one run (merged), and which are runs of their own."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from qmqpsource.results import result
from qmqpsource.results.identity import Shards
from qmqpsource.results.parts import missing_shards, not_one_run, same_run_twice
from qmqpsource.results.result import Result
from tests.cli.test_report import T0, run_a


def part(start: float = 0.0, elapsed: float = 2.0, /, **config: object) -> Result:
    value = run_a()
    return dataclasses.replace(value, started_at=T0 + timedelta(seconds=start),
                               elapsed_s=elapsed, config={**value.config, **config})


def test_the_shards_of_one_run_are_one_run() -> None:
    # --shard 0/2 and 1/2, each with --workers 2: their shares differ, and what they print.
    a = part(0.0, shard_index=[0, 2], shard_count=4, sessions=[3, 2], messages=50, rate=None)
    b = part(0.4, shard_index=[1, 3], shard_count=4, sessions=2, messages=49, rate=None,
             counter=True, verbose=1)
    assert not_one_run([("a.json", a), ("b.json", b)]) is None
    assert not_one_run([("a.json", a)]) is None


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [("target", "127.0.0.1:6280", "config.target is '127.0.0.1:6280', a.json's "
                                  "'127.0.0.1:628'"),
     ("length", 100, "config.length is 100, a.json's 1024"),
     ("keep_going", True, "config.keep_going is True, a.json's False"),
     ("duration", [10.0, 20.0], "config.duration is [10.0, 20.0], a.json's None")],
)
def test_runs_of_other_targets_or_options_are_not(key: str, value: object, says: str) -> None:
    named = [("a.json", part()), ("b.json", part(1.0)), ("c.json", part(0.5, **{key: value}))]
    assert not_one_run(named) == f"c.json: not a part of the same run as a.json: its {says}"


def test_an_option_only_one_of_them_has_is_a_difference() -> None:
    newer = part(**{"new_option": 1})
    assert not_one_run([("a.json", part()), ("b.json", newer)]) == (
        "b.json: not a part of the same run as a.json: its config.new_option is 1, "
        "a.json's missing")


def test_runs_apart_in_time_are_not() -> None:
    named = [("c.json", part(5.5, 1.0)), ("a.json", part(0.0, 2.0)), ("b.json", part(1.0, 2.5))]
    # Sorted by start: a (0-2), b (1-3.5) overlap; c starts 2 s after the last of them ended.
    assert not_one_run(named) == (
        "c.json: not a part of the same run as b.json: it started 2.000 s after b.json ended "
        "(the parts of a run overlap in time, or leave at most a second between them)")


@pytest.mark.parametrize("gap", [0.0004, 0.5, 1.0])
def test_shards_a_moment_apart_are_one(gap: float) -> None:
    # Shards of one --start-at start within milliseconds; a small one may end first.
    named = [("a.json", part(0.0, 0.002)), ("b.json", part(0.002 + gap, 0.003))]
    assert not_one_run(named) is None


def test_a_gap_just_past_a_second_is_one_too_many() -> None:
    named = [("a.json", part(0.0, 0.5)), ("b.json", part(1.502, 0.5))]
    assert not_one_run(named) is not None


@pytest.mark.parametrize("starts", [[0.0, 1.5, 3.0], [0.0, 2.0], [0.0, 0.0]])
def test_runs_that_leave_no_gap_between_them_are_one(starts: list[float]) -> None:
    named = [(f"{n}.json", part(start, 2.0)) for n, start in enumerate(starts)]
    assert not_one_run(named) is None


def test_the_same_run_twice_is_found_by_content() -> None:
    a, b = part(0.0), part(0.5)
    assert same_run_twice([("a.json", a), ("b.json", b)]) is None
    copy = dataclasses.replace(a, tool_name="qmqp-report", checks=())  # a copy, re-written
    assert same_run_twice([("a.json", a), ("b.json", b), ("copy.json", copy)]) == (
        "copy.json: the same run as a.json (same start, length, config, counts and latencies): "
        "its runs would count twice")


def shard(index: int, count: int = 4, run_id: str | None = "R1", start: float = 0.0) -> Result:
    return dataclasses.replace(part(start, shard_index=index, shard_count=count),
                               run_id=run_id, shards=Shards.one(index, count))


def test_shards_of_other_runs_are_not_one_run() -> None:
    named = [("a.json", shard(0)), ("b.json", shard(1, run_id="R2"))]
    assert not_one_run(named) == ("b.json: not a part of the same run as a.json: its run id "
                                  "is R2, a.json's R1 (the shards of one run share one "
                                  "--run-id, or one --start-at)")
    # A file that says no run (written before run ids) does not stand in the way.
    assert not_one_run([("a.json", shard(0)), ("b.json", shard(1, run_id=None))]) is None


def test_a_shard_held_by_two_files_counts_twice() -> None:
    merged = dataclasses.replace(shard(0), shards=Shards(4, (0, 1, 2)))
    named = [("merged.json", merged), ("b.json", shard(2, start=0.5))]
    assert same_run_twice(named) == ("b.json: shard 2 of 4 is in merged.json too: its messages "
                                     "would count twice")
    assert same_run_twice([("a.json", shard(0)), ("b.json", shard(1))]) is None
    # The same index of another run, or of a run of another count, is another shard.
    for other in (shard(0, run_id="R2", start=1), shard(0, count=8, start=1)):
        assert same_run_twice([("a.json", shard(0)), ("b.json", other)]) is None


def test_the_shards_a_merge_lacks_are_named() -> None:
    merged = result.merge([shard(0), shard(2, start=0.5)], tool_name="t", tool_version="1")
    assert merged.shards == Shards(4, (0, 2)) and merged.run_id == "R1"
    assert missing_shards(merged) == "shards 1, 3 of 4 are missing: the merge holds 2 of them"
    one_short = dataclasses.replace(merged, shards=Shards(count=3, indices=(0, 2)))
    assert missing_shards(one_short) == "shard 1 of 3 is missing: the merge holds 2 of them"
    whole = result.merge([shard(i, start=i / 10) for i in range(4)], tool_name="t",
                         tool_version="1")
    assert missing_shards(whole) is None
    many = dataclasses.replace(whole, shards=Shards(30, (0,)))
    assert missing_shards(many) == ("shards 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 19 more of 30 are "
                                    "missing: the merge holds 1 of them")
