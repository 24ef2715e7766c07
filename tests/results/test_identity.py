"""Which run a result is, and which of its shards it holds: run ids and shard sets, read,
written and merged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from qmqpsource.errors import ConfigError, ResultError
from qmqpsource.results import result
from qmqpsource.results.identity import Shards, check_run_id, default_run_id, shards_from_json
from tests.cli.test_report import run_a


def test_the_default_run_id_is_the_start_and_the_shard_count() -> None:
    start = datetime(2026, 12, 6, 4, 15, 0, 999_000, tzinfo=timezone(timedelta(hours=1)))
    assert default_run_id(start, 8) == "20261206T031500Z-8"
    assert default_run_id(start, 1, agreed=False) == "20261206T031500.999000Z-1"


@pytest.mark.parametrize("text", ["", "a b", "-x", "x/y", "é", "x" * 129, "a\n"])
def test_a_run_id_is_a_plain_name(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_run_id(text)
    assert error.value.field == "run_id" and "\n" not in str(error.value)


def test_run_ids_that_are_plain_names_are_taken() -> None:
    name = "nightly-2026.12.06_shard:load@eu+1"
    assert check_run_id(name) == name


def test_shards_in_json_round_trip_and_bad_ones_are_one_line() -> None:
    value = dataclasses.replace(run_a(), run_id="R1", shards=Shards(8, (3,)))
    document = value.to_dict()
    assert document["run_id"] == "R1" and document["shards"] == {"count": 8, "indices": [3]}
    again = result.from_dict(document)
    assert (again.run_id, again.shards) == ("R1", Shards(8, (3,)))
    bads: list[object] = [{"count": 0, "indices": []}, {"count": 2, "indices": [2]},
                          {"count": 2, "indices": [1, 1]}, {"count": True, "indices": []}, []]
    for bad in bads:
        with pytest.raises(ResultError):
            shards_from_json(bad)
    with pytest.raises(ResultError, match="run_id must be"):
        result.from_dict({**document, "run_id": "a b"})


def test_a_result_of_before_run_ids_has_none() -> None:
    document = run_a().to_dict()
    assert "run_id" not in document and "shards" not in document
    assert result.from_dict(document).shards is None


def test_a_merge_holds_the_union_of_its_parts_shards() -> None:
    a = dataclasses.replace(run_a(), run_id="R", shards=Shards(4, (0,)))
    b = dataclasses.replace(run_a(), run_id="R", shards=Shards(4, (3,)),
                            started_at=datetime(2026, 1, 1, tzinfo=UTC))
    merged = result.merge([a, b], tool_name="t", tool_version="1")
    assert (merged.run_id, merged.shards) == ("R", Shards(4, (0, 3)))
    other = dataclasses.replace(b, run_id="S", shards=Shards(8, (3,)))
    mixed = result.merge([a, other], tool_name="t", tool_version="1")
    assert (mixed.run_id, mixed.shards) == (None, None)
