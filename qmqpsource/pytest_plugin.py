"""The pytest plugin (entry point ``pytest11``): a qmqp-sink for a test, in the test's trio loop.

    async def test_takes_load(qmqp_sink):
        result = await run_load(SourceConfig(target=qmqp_sink.address, sessions=4, messages=50))
        assert result.counts.accepted == 50

``qmqp_sink`` is a RunningSink on a free loopback port, configured by the test's
``@pytest.mark.qmqp_sink(...)`` marker if it has one; ``qmqp_sink_factory`` starts
more, each configured by its call. Both take a SinkConfig and/or its options by name,
the fault rates and ``seed`` of Faults among them (``tempfail=0.1``), and stop their
sinks at the end of the test. They are async fixtures: they need pytest-trio, and a
trio test (``@pytest.mark.trio``, or ``trio_mode = true``).

``qmqp_sink_sync`` and ``qmqp_sink_sync_factory`` are the same for plain, synchronous
tests (no trio, no pytest-trio): each sink runs in a thread with a trio loop of its
own, so the test may call run_load_sync against it, and is stopped and its thread
joined when the test ends, failed or not.

pytest loads this module in every session of every project where qmqpsource is
installed: it imports nothing but pytest, and trio and the sink only when a test asks
for one of its fixtures. Its one hook registers the marker; it has no autouse fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    import trio

    from qmqpsource.api import RunningSink
    from qmqpsource.sink.config import SinkConfig
    from qmqpsource.sink_thread import SinkThread

__all__ = ["SinkFactory", "SyncSinkFactory", "sink_config"]

MARKER = (
    "qmqp_sink(config=None, **options): the SinkConfig of the qmqp_sink fixture, and/or its "
    "options by name (tempfail=0.1, reject=..., drop=..., hang=..., delay=..., seed=..., "
    "maildir=..., timeout=...)"
)
# Where the plugin's sinks listen unless told: a free port on loopback.
LOOPBACK = "127.0.0.1:0"


class SinkFactory(Protocol):
    """``qmqp_sink_factory``: ``await qmqp_sink_factory(tempfail=0.5)`` starts a sink."""

    async def __call__(
        self, config: SinkConfig | None = None, /, **options: Any
    ) -> RunningSink: ...


class SyncSinkFactory(Protocol):
    """``qmqp_sink_sync_factory``: ``qmqp_sink_sync_factory(tempfail=0.5)`` starts a sink."""

    def __call__(self, config: SinkConfig | None = None, /, **options: Any) -> RunningSink: ...


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def sink_config(config: SinkConfig | None = None, /, **options: Any) -> SinkConfig:
    """``config`` (by default one on a free loopback port) with ``options`` replaced: the
    fields of SinkConfig, and those of Faults (``tempfail``, ``seed``...); ``delay`` is
    seconds or a (min, max) pair; ``maildir`` may be a Path."""
    import dataclasses
    import os

    from qmqpsource.sink.config import SinkConfig
    from qmqpsource.sink.faults import Faults

    base = config if config is not None else SinkConfig(endpoint=LOOPBACK)
    if "delay" in options:
        delay = options.pop("delay")
        options["delay_min"], options["delay_max"] = (
            tuple(delay) if isinstance(delay, tuple | list) else (delay, delay))
    if options.get("maildir") is not None:
        options["maildir"] = os.fspath(options["maildir"])
    fault_names = {field.name for field in dataclasses.fields(Faults)}
    sink_names = {field.name for field in dataclasses.fields(SinkConfig)}
    unknown = sorted(set(options) - fault_names - sink_names)
    if unknown:
        known = ", ".join(sorted(fault_names | sink_names | {"delay"}))
        raise TypeError(f"qmqp_sink: no option {', '.join(unknown)}; the options are {known}")
    faults = {name: options.pop(name) for name in fault_names & set(options)}
    if faults:
        options["faults"] = dataclasses.replace(options.get("faults", base.faults), **faults)
    return dataclasses.replace(base, **options)


class _Factory:
    """Starts sinks in the fixture's nursery: they run until the test ends."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    async def __call__(self, config: SinkConfig | None = None, /, **options: Any) -> RunningSink:
        running: RunningSink = await self._nursery.start(_serve, sink_config(config, **options))
        return running


async def _serve(config: SinkConfig, *, task_status: trio.TaskStatus[RunningSink]) -> None:
    import trio

    from qmqpsource.api import open_sink

    async with open_sink(config) as sink:
        task_status.started(sink)
        await trio.sleep_forever()  # until the test ends: the fixture cancels its nursery


@pytest.fixture
def _qmqp_trio_test(request: pytest.FixtureRequest) -> None:
    """Before the async fixtures: a clear word where they cannot run."""
    if not request.config.pluginmanager.hasplugin("trio"):
        pytest.fail("qmqp_sink and qmqp_sink_factory need pytest-trio: "
                    "pip install pytest-trio", pytrace=False)
    if request.node.get_closest_marker("trio") is None:
        pytest.fail("qmqp_sink and qmqp_sink_factory are for trio tests: an async test "
                    "marked @pytest.mark.trio, or trio_mode = true in pytest's "
                    "configuration; a plain test has qmqp_sink_sync", pytrace=False)


@pytest.fixture
async def qmqp_sink_factory(_qmqp_trio_test: None) -> AsyncIterator[SinkFactory]:
    """Start a qmqp-sink: ``await qmqp_sink_factory(config=None, **options)``; every one
    stops at the end of the test. Options as the ``qmqp_sink`` marker's."""
    import trio

    async with trio.open_nursery() as nursery:
        yield _Factory(nursery)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def qmqp_sink(
    qmqp_sink_factory: SinkFactory, request: pytest.FixtureRequest
) -> RunningSink:
    """A running qmqp-sink on a free loopback port (``.address``, ``.stats``), configured
    by the test's ``@pytest.mark.qmqp_sink(...)`` marker, if any."""
    marker = request.node.get_closest_marker("qmqp_sink")
    if marker is None:
        return await qmqp_sink_factory()
    return await qmqp_sink_factory(*marker.args, **marker.kwargs)


class _SyncFactory:
    """Starts sinks, each in a thread of its own; stop() stops every one."""

    def __init__(self) -> None:
        self._sinks: list[SinkThread] = []

    def __call__(self, config: SinkConfig | None = None, /, **options: Any) -> RunningSink:
        from qmqpsource.errors import QmqpsourceError
        from qmqpsource.sink import SinkError
        from qmqpsource.sink_thread import SinkThread

        # The test fails with the one line, outside the except: no chained traceback.
        try:
            sink = SinkThread(sink_config(config, **options))
        except (TypeError, ValueError) as exc:
            failure = f"qmqp_sink_sync: {exc}"
        else:
            try:
                running = sink.start()
            except (QmqpsourceError, SinkError, OSError) as exc:
                failure = f"qmqp_sink_sync: the sink did not start: {exc}"
            else:
                self._sinks.append(sink)
                return running
        pytest.fail(failure, pytrace=False)

    def stop(self) -> None:
        """Stop every sink, even when one fails; then raise the first failure."""
        sinks, self._sinks = self._sinks, []
        failures: list[BaseException] = []
        for sink in sinks:
            try:
                sink.stop()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


@pytest.fixture
def qmqp_sink_sync_factory() -> Iterator[SyncSinkFactory]:
    """Start a qmqp-sink from a synchronous test: ``qmqp_sink_sync_factory(config=None,
    **options)``, in a thread with a trio loop of its own; every one stops at the end of
    the test. Options as the ``qmqp_sink`` marker's."""
    factory = _SyncFactory()
    yield factory
    factory.stop()


@pytest.fixture
def qmqp_sink_sync(
    qmqp_sink_sync_factory: SyncSinkFactory, request: pytest.FixtureRequest
) -> RunningSink:
    """``qmqp_sink`` for a synchronous test: a running qmqp-sink on a free loopback port
    (``.address``, ``.stats``), configured by the test's ``@pytest.mark.qmqp_sink(...)``
    marker, if any, in a thread of its own. run_load_sync puts a load on it."""
    marker = request.node.get_closest_marker("qmqp_sink")
    if marker is None:
        return qmqp_sink_sync_factory()
    return qmqp_sink_sync_factory(*marker.args, **marker.kwargs)
