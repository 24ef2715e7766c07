"""The async API under a loop that is not trio: one line that says it needs trio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from qmqpsource import SinkConfig, SourceConfig, find_rate, open_sink, run_load
from qmqpsource.errors import QmqpsourceError, TrioRequiredError

# Nothing listens there: no call below may get as far as connecting.
CONFIG = SourceConfig(target="127.0.0.1:9", messages=1)


async def sink_block() -> None:
    async with open_sink(SinkConfig(endpoint="127.0.0.1:0")):
        raise AssertionError("the sink started under asyncio")


CALLS: dict[str, Callable[[], Awaitable[object]]] = {
    "run_load": lambda: run_load(CONFIG),
    "find_rate": lambda: find_rate(CONFIG, checks=["p99<1s"]),
    "open_sink": sink_block,
}


@pytest.mark.parametrize("function", sorted(CALLS))
def test_under_asyncio_the_error_says_it_needs_trio(function: str) -> None:
    async def main() -> None:
        await CALLS[function]()

    with pytest.raises(TrioRequiredError) as raised:
        asyncio.run(main())
    text = str(raised.value)
    assert text.startswith(f"{function} needs trio, and was called under asyncio: ")
    # What to use instead, for this function: its own sync form, or the sync fixture.
    instead = {"run_load": "run_load_sync", "find_rate": "find_rate_sync",
               "open_sink": "qmqp_sink_sync"}[function]
    assert instead in text
    assert "\n" not in text
    assert isinstance(raised.value, QmqpsourceError)


def test_outside_any_loop_it_says_outside_trio() -> None:
    coroutine = run_load(CONFIG)  # driven by hand, as no loop at all would
    with pytest.raises(TrioRequiredError, match=r"^run_load needs trio, and was called outside"):
        coroutine.send(None)
