"""--start-at and --run-id in the library: a load starts when told (its target up before),
a stop during the wait ends it before it began, and its result says which run and shard
it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from qmqpsource import SourceConfig
from qmqpsource.api import LoadControl, run_load
from qmqpsource.errors import ConfigError
from qmqpsource.results.identity import Shards
from tests.qmqp_server import qmqp_server


async def test_a_load_starts_at_its_start_time(autojump_clock: Any) -> None:
    # trio's clock jumps through the wait: the first connection comes the wait later.
    async with qmqp_server() as server:
        began = trio.current_time()
        at = datetime.now(UTC) + timedelta(seconds=30)
        result = await run_load(SourceConfig(target=server.target, messages=3), start_at=at)
    assert server.accept_times[0] - began >= 29.9
    assert result.to_dict()["counts"]["accepted"] == 3
    assert result.run_id == f"{at:%Y%m%dT%H%M%SZ}-1"  # shards started together agree on it


async def test_a_stop_during_the_wait_ends_the_load_before_it_began(
    autojump_clock: Any,
) -> None:
    control = LoadControl()
    async with qmqp_server() as server, trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, control, 5.0)
        result = await run_load(SourceConfig(target=server.target, messages=3),
                                start_at=datetime.now(UTC) + timedelta(hours=1),
                                control=control)
    assert result.status == "interrupted" and result.attempted == 0
    assert server.connections == 0


async def _stop_after(control: LoadControl, seconds: float) -> None:
    await trio.sleep(seconds)
    control.stop()


@pytest.mark.parametrize(("at", "says"), [
    (datetime.now(UTC) - timedelta(seconds=5), "s in the past"),
    (datetime.now(UTC) + timedelta(days=400), "more than a year ahead"),
    (datetime(2030, 1, 1), "with its UTC offset"),  # naive: no offset
])
async def test_start_times_that_make_no_start_are_refused(at: datetime, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as error:
        await run_load(SourceConfig(target="127.0.0.1:1"), start_at=at)
    assert error.value.field == "start_at"


async def test_a_shards_result_says_its_run_and_its_shard() -> None:
    async with qmqp_server() as server:
        config = SourceConfig(target=server.target, messages=10, sessions=4, shard_index=2,
                              shard_count=5)
        result = await run_load(config, run_id="nightly-7", workers=2)
    assert result.run_id == "nightly-7" and result.shards == Shards(5, (2,))
    assert result.to_dict()["shards"] == {"count": 5, "indices": [2]}
    assert result.attempted == 2  # shard 2 of 5 of ten messages
    with pytest.raises(ConfigError, match="run_id must be"):
        await run_load(config, run_id="two words")
