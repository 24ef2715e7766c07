"""The async API under a loop that is not trio: one line that says it needs trio; the
sync API inside trio, or given no SourceConfig: one line too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import trio

from qmqpsource import (
    SinkConfig,
    SourceConfig,
    find_rate,
    find_rate_sync,
    open_sink,
    run_load,
    run_load_sync,
)
from qmqpsource.errors import ConfigError, QmqpsourceError, TrioRequiredError

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


@pytest.mark.parametrize(("function", "instead"),
                         [("run_load_sync", "run_load"), ("find_rate_sync", "find_rate")])
def test_a_sync_function_inside_trio_says_to_await_the_async_one(
    function: str, instead: str
) -> None:
    # Before: trio's "Attempted to call run() from inside a run()".
    calls: dict[str, Callable[[], object]] = {
        "run_load_sync": lambda: run_load_sync(CONFIG),
        "find_rate_sync": lambda: find_rate_sync(CONFIG, checks=["p99<1s"]),
    }
    sync = calls[function]

    async def main() -> None:
        sync()

    with pytest.raises(TrioRequiredError) as raised:
        trio.run(main)
    assert str(raised.value) == (f"{function} runs a trio loop of its own, and was called "
                                 f"inside one: await {instead} instead")


@pytest.mark.parametrize("given", [{"target": "127.0.0.1:9"}, None, "127.0.0.1:9"])
def test_a_config_that_is_no_source_config_is_one_line(given: object) -> None:
    # Before: AttributeError: ... has no attribute 'shard_index'.
    calls: list[Callable[[], object]] = [
        lambda: run_load_sync(given),  # type: ignore[arg-type]
        lambda: find_rate_sync(given, checks=["p99<1s"]),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ConfigError) as raised:
            call()
        assert str(raised.value) == (
            f"config must be a SourceConfig, not {type(given).__name__}")
