"""The library layer runs every load the command line runs, from the caller's trio loop:
worker processes, an embedded sink, a graceful stop with the result so far, a rate
search over workers; and it prints nothing."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

import pytest
import trio

from qmqpsource import SinkConfig, SourceConfig, open_sink
from qmqpsource.api import EMBEDDED_TARGET, LoadControl, find_rate, run_load
from qmqpsource.errors import ConfigError, RunError
from qmqpsource.load.channel import Kind
from qmqpsource.load.job import encode_job
from qmqpsource.load.workers import spawn_pool
from qmqpsource.source.request import SEQ_HEADER
from tests.qmqp_server import accepting_after, qmqp_server

LIMIT = 60  # seconds for any one load here: a hang fails the test, not the suite


def counts(document: dict[str, Any]) -> dict[str, int]:
    value: dict[str, int] = document["counts"]
    return value


async def test_workers_from_the_api_merge_exactly() -> None:
    async with qmqp_server() as server:
        config = SourceConfig(target=server.target, sessions=4, messages=101,
                              unique_message_id=True)
        with trio.fail_after(LIMIT):
            result = await run_load(config, workers=2, checks=["failed==0"])
    document = result.to_dict()
    assert (document["workers"], document["runs"]) == (2, 2)
    assert counts(document)["accepted"] == 101 == len(server.requests)
    seqs = sorted(int(re.search(rb"^%s: (\d+)$" % SEQ_HEADER.encode(), r.message,
                                re.M).group(1))  # type: ignore[union-attr]
                  for r in server.requests)
    assert seqs == list(range(101))  # the workers' shares never collide
    assert [v.ok for v in result.checks] == [True]


async def test_an_embedded_sink_from_the_api() -> None:
    config = SourceConfig(target=EMBEDDED_TARGET, sessions=4, messages=60, keep_going=True)
    with trio.fail_after(LIMIT):
        result = await run_load(config, embedded_sink=["--tempfail", "0.3", "--seed", "5"])
    document = result.to_dict()
    assert result.sink is not None and document["sink"] == result.sink
    assert result.sink["replies"]["Z"] == counts(document)["tempfail"] > 0
    assert result.sink["replies"]["K"] == counts(document)["accepted"] > 0


async def test_an_embedded_sink_needs_the_embedded_target() -> None:
    with pytest.raises(ConfigError, match="target must be 'embedded-sink'"):
        await run_load(SourceConfig(target="127.0.0.1:1"), embedded_sink=[])


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_stop_returns_the_result_so_far(workers: int) -> None:
    # What Ctrl-C gives the command, from the API: no new message, those in flight
    # finish within the grace, and the result counts exactly what the server answered.
    control = LoadControl()
    async with qmqp_server(accepting_after(0.05)) as server:

        async def stop_when_busy() -> None:
            while server.connections < 12:  # noqa: ASYNC110 - polls plain state, bounded
                await trio.sleep(0.01)
            control.stop(grace=5.0)

        config = SourceConfig(target=server.target, sessions=4, connect_limit=4,
                              messages=10**6)
        with trio.fail_after(LIMIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_when_busy)
                result = await run_load(config, workers=workers, control=control)
    assert result.status == "interrupted"
    assert 12 <= counts(result.to_dict())["accepted"] == len(server.raw) < 10**6
    assert result.cut_off == 0  # the grace was long enough for every message in flight


@pytest.mark.once
async def test_a_rate_search_over_workers_from_the_api() -> None:
    config = SinkConfig(endpoint="127.0.0.1:0")
    steps: list[float] = []
    async with open_sink(config) as sink:
        with trio.fail_after(LIMIT):
            found = await find_rate(
                SourceConfig(target=sink.address, sessions=4, connect_limit=4, rate=40),
                checks=["p99<1s"], step_duration=0.5, workers=2,
                on_step=lambda step: steps.append(step.rate))
    assert steps == [step.rate for step in found.steps] and steps[0] == 40
    assert found.result.workers == 2 and found.result.runs == 2
    assert found.to_dict()["step_duration_s"] == 0.5 and "settle_s" in found.to_dict()


async def test_the_library_prints_nothing(capfd: pytest.CaptureFixture[str],
                                          caplog: pytest.LogCaptureFixture) -> None:
    # A refused connect tried again is a warning: a log record, not a line on stderr.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = SourceConfig(target=f"127.0.0.1:{port}", messages=2, connect_attempts=2,
                          keep_going=True)
    with caplog.at_level(logging.WARNING, logger="qmqpsource"):
        result = await run_load(config)
    assert counts(result.to_dict())["error"] == 2
    assert capfd.readouterr() == ("", "")
    refused = [r for r in caplog.records if r.name == "qmqpsource.source"]
    assert refused and all("Connection refused" in r.getMessage() for r in refused)


async def test_a_worker_whose_parent_is_gone_aborts_its_run() -> None:
    # No parent-death signal is needed: the closed channel tells a worker to stop.
    async with qmqp_server(accepting_after(0.2)) as server, spawn_pool(1) as pool:
        worker = pool.workers[0]
        config = SourceConfig(target=server.target, sessions=2, messages=10**6)
        payload, fds = encode_job(config, server.target, 1.0, None)
        await worker.send(Kind.JOB, payload, fds)
        with trio.fail_after(LIMIT):
            while server.connections < 2:  # noqa: ASYNC110 - polls plain state, bounded
                await trio.sleep(0.01)
            worker.channel.close()  # the parent is gone, as far as the worker can tell
            assert await worker.wait() == 1
        connections = server.connections
        await trio.sleep(0.3)
        assert server.connections == connections  # it connects no more


async def test_a_lost_worker_pool_is_a_run_error() -> None:
    async with qmqp_server() as server, spawn_pool(2) as pool:
        pool.workers[1].kill()
        await pool.workers[1].wait()
        pool.workers[1].channel.close()
        config = SourceConfig(target=server.target, sessions=2, messages=10)
        with pytest.raises(RunError, match="worker process of the pool is gone"):
            await run_load(config, workers=pool)


async def test_a_rate_search_of_a_shard_is_refused() -> None:
    # A step judges the whole load: a shard of it would never hold (the command refuses
    # --shard with --find-rate; the API says it in the library's words).
    config = SourceConfig(target="127.0.0.1:1", shard_index=1, shard_count=2, rate=40)
    with pytest.raises(ConfigError, match="shard_count must be 1, not 2") as error:
        await find_rate(config, checks=["p99<1s"], step_duration=0.5)
    assert error.value.field == "shard_count"


async def test_spawned_workers_outlive_the_thread_that_started_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # trio starts a process from a thread of its cache, which ends when idle (10 s; 0.5 s
    # here); a parent-death signal would then kill the worker (it is tied to that
    # thread). Real time on purpose: the cache's clock is the OS's, not trio's.
    from trio._core import _thread_cache

    monkeypatch.setattr(_thread_cache, "IDLE_TIMEOUT", 0.5)
    async with qmqp_server() as server, spawn_pool(2) as pool:
        await trio.sleep(2.0)
        assert all(worker.process is not None and worker.process.poll() is None
                   for worker in pool.workers)
        config = SourceConfig(target=server.target, sessions=2, messages=20)
        with trio.fail_after(LIMIT):
            result = await run_load(config, workers=pool)
    assert result.status == "completed" and result.attempted == 20


async def test_the_embedded_target_needs_an_embedded_sink() -> None:
    with pytest.raises(ConfigError, match="is an embedded sink: give embedded_sink"):
        await run_load(SourceConfig(target=EMBEDDED_TARGET))
