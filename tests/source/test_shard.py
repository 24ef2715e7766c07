"""Shares of the work: exact totals, no sequence collisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmqpsource.source.shard import Shard, ShardError, parse_shard


@given(st.integers(0, 10**9), st.integers(1, 64))
def test_shares_add_up_and_differ_by_at_most_one(total: int, count: int) -> None:
    shares = [Shard(i, count).share(total) for i in range(count)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


@given(st.integers(1, 16), st.integers(0, 200))
def test_sequences_never_collide(count: int, per_shard: int) -> None:
    numbers = [Shard(i, count).sequence(k) for i in range(count) for k in range(per_shard)]
    assert len(set(numbers)) == len(numbers)
    assert sorted(numbers) == list(range(count * per_shard))


def test_parse() -> None:
    assert parse_shard("0/4") == Shard(0, 4)
    assert parse_shard(" 3/4 ") == Shard(3, 4)
    assert str(parse_shard("2/5")) == "2/5"
    for bad in ["4/4", "-1/4", "1/0", "a/b", "1", "1/2/3", ""]:
        with pytest.raises(ShardError):
            parse_shard(bad)


def test_sessions_never_zero() -> None:
    assert [Shard(i, 4).share_at_least_one(2) for i in range(4)] == [1, 1, 1, 1]
    assert Shard(1, 4).rate(100.0) == 25.0
