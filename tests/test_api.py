"""The Python API: run_load and open_sink in the caller's trio loop, run_load_sync without."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import trio

import qmqpsource
from qmqpsource import (
    Faults,
    Interval,
    Result,
    SinkConfig,
    SourceConfig,
    find_rate_sync,
    open_sink,
    run_load,
    run_load_sync,
)
from qmqpsource.addresses import AddressError
from qmqpsource.results.checks import CheckError
from qmqpsource.results.figures import Counts
from qmqpsource.sink_thread import SinkThread
from qmqpsource.values import ValueProblem


async def test_a_load_against_a_sink_in_the_same_loop() -> None:
    async with open_sink(SinkConfig(endpoint="127.0.0.1:0")) as sink:
        assert sink.address.startswith("127.0.0.1:") and not sink.address.endswith(":0")
        result = await run_load(SourceConfig(target=sink.address, sessions=4, messages=50))
        assert sink.stats.replies_k == 50  # live counts, while the sink still runs
    assert isinstance(result, Result)
    assert result.counts == Counts(attempted=50, accepted=50, tempfail=0, permfail=0, error=0)
    assert result.status == "completed" and result.failure is None
    assert result.latency_ms["total"].count == 50
    assert result.throughput.messages_per_s > 0
    document = result.to_dict()
    assert document["counts"] == result.counts.to_dict() and document["checks"] == []
    assert document["throughput"] == result.throughput.to_dict()
    assert {name: {k: v for k, v in entry.items() if k != "hdr"}
            for name, entry in document["latency_ms"].items()} == {
        name: summary.to_dict() for name, summary in result.latency_ms.items()}
    assert json.loads(json.dumps(document)) == document  # it is the JSON document


async def test_the_result_has_its_timeline() -> None:
    async with open_sink(SinkConfig(endpoint="127.0.0.1:0",
                                    faults=Faults(tempfail=0.5, seed=2))) as sink:
        config = SourceConfig(target=sink.address, sessions=2, messages=40, keep_going=True)
        result = await run_load(config, interval=0.5)
    assert result.interval_s == 0.5
    assert result.timeline and all(isinstance(i, Interval) for i in result.timeline)
    assert result.timeline[0].offset_s == 0.0
    for key in ("attempted", "accepted", "tempfail", "permfail", "error"):
        assert sum(i.counts[key] for i in result.timeline) == getattr(result.counts, key)
    assert result.counts.tempfail > 0
    busy = [i for i in result.timeline if i.counts["attempted"]]
    assert all(i.latency_ms["total"]["count"] == i.counts["attempted"] for i in busy)
    assert all(i.total.count == i.counts["attempted"] for i in busy)
    assert result.to_dict()["timeline"] == [i.to_dict() for i in result.timeline]
    with pytest.raises(ValueProblem, match=r"interval must be at least 0\.01 seconds"):
        await run_load(config, interval=0.001)


async def test_checks_and_faults() -> None:
    config = SinkConfig(endpoint="127.0.0.1:0", faults=Faults(tempfail=1.0))
    async with open_sink(config) as sink:
        result = await run_load(
            SourceConfig(target=sink.address, messages=10, keep_going=True),
            checks=["tempfail==10", "failed<50%", "p99<60s"],
        )
    assert result.counts.tempfail == 10
    assert [(v.check, v.value, v.ok) for v in result.checks][:2] == [
        ("tempfail==10", 10, True), ("failed<50%", 100.0, False)]
    assert result.checks[2].ok


async def test_a_failure_ends_the_load_as_on_the_command_line() -> None:
    async with open_sink(SinkConfig(endpoint="127.0.0.1:0",
                                    faults=Faults(reject=1.0))) as sink:
        result = await run_load(SourceConfig(target=sink.address, sessions=2, messages=100))
    assert result.status == "failed"
    assert result.failure is not None and result.failure.startswith("unrecoverable error")
    assert result.counts.attempted < 100


async def test_bad_input_is_refused_before_the_run() -> None:
    with pytest.raises(ValueProblem, match="sessions must be at least 1, not 0"):
        SourceConfig(target="127.0.0.1:1", sessions=0)
    with pytest.raises(AddressError, match="port out of range"):
        await run_load(SourceConfig(target="127.0.0.1:70000"))
    with pytest.raises(CheckError, match="unknown latency ''"):
        await run_load(SourceConfig(target="127.0.0.1:1"), checks=[".p99<5ms"])


async def test_cancelling_the_caller_stops_sink_and_load_and_closes_every_socket() -> None:
    before = set(os.listdir("/proc/self/fd"))
    with trio.move_on_after(0.5) as scope:
        async with open_sink(SinkConfig(endpoint="127.0.0.1:0",
                                        faults=Faults(delay_min=30, delay_max=30))) as sink:
            await run_load(SourceConfig(target=sink.address, sessions=3, messages=9))
    assert scope.cancelled_caught
    assert set(os.listdir("/proc/self/fd")) == before


def test_run_load_sync_for_callers_without_trio() -> None:
    sink = SinkThread(SinkConfig(endpoint="127.0.0.1:0"))
    try:
        address = sink.start().address
        result = run_load_sync(SourceConfig(target=address, messages=5), checks=["failed==0"])
    finally:
        sink.stop()
    assert result.counts.accepted == 5 and result.checks[0].ok


def test_run_load_sync_takes_the_start_time_and_run_id() -> None:
    sink = SinkThread(SinkConfig(endpoint="127.0.0.1:0"))
    start_at = datetime.now(UTC) + timedelta(seconds=0.5)
    try:
        address = sink.start().address
        result = run_load_sync(SourceConfig(target=address, messages=3),
                               start_at=start_at, run_id="sync-run")
    finally:
        sink.stop()
    assert result.run_id == "sync-run" and result.counts.accepted == 3
    assert result.started_at >= start_at - timedelta(milliseconds=1)


@pytest.mark.once
def test_find_rate_sync_hears_of_every_step() -> None:
    sink = SinkThread(SinkConfig(endpoint="127.0.0.1:0"))
    heard: list[float] = []
    try:
        address = sink.start().address
        found = find_rate_sync(SourceConfig(target=address, rate=3200.0, sessions=4),
                               checks=["failed==0"], step_duration=0.5,
                               on_step=lambda step: heard.append(step.rate), run_id="search")
    finally:
        sink.stop()
    assert heard == [step.rate for step in found.steps] and len(heard) >= 2
    assert found.result is not None and found.result.run_id == "search"


def test_importing_the_package_imports_nothing_heavy() -> None:
    # The commands import qmqpsource first: its public names must wait until used.
    code = ("import sys, qmqpsource; "
            "print(sorted(m for m in sys.modules if m.startswith(('trio', 'qmqpsource.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    for name in qmqpsource.__all__:
        assert getattr(qmqpsource, name) is not None
    with pytest.raises(AttributeError):
        qmqpsource.no_such_name  # noqa: B018


@pytest.mark.once
async def test_find_rate_in_the_callers_loop() -> None:
    # 2 connections of 20 ms each: about 100 msg/s.
    config = SinkConfig(endpoint="127.0.0.1:0", max_connections=2,
                        faults=Faults(delay_min=0.02, delay_max=0.02))
    async with open_sink(config) as sink:
        found = await qmqpsource.find_rate(
            SourceConfig(target=sink.address, sessions=50, connect_limit=50, rate=50),
            checks=["p99<100ms", "failed==0"], step_duration=0.5)
    assert isinstance(found, qmqpsource.FoundRate)
    assert found.stopped in ("bracket", "sessions") and found.rate is not None
    assert found.steps[0].rate == 50 and 1 < len(found.steps) <= 20
    assert found.rate == max(step.rate for step in found.steps if step.ok)
    assert any(not step.ok for step in found.steps)
    held = next(step for step in found.steps if step.rate == found.rate)
    assert held.result.config["rate"] == found.rate and held.result.config["duration"] == 0.5
    assert found.to_dict()["steps"][0]["rate"] == 50


async def test_find_rate_needs_a_check() -> None:
    with pytest.raises(ValueError, match="at least one check"):
        await qmqpsource.find_rate(SourceConfig(target="127.0.0.1:1"), checks=[])


async def test_open_sink_raises_as_itself_not_in_a_group() -> None:
    from qmqpsource import SinkError

    async with open_sink(SinkConfig(endpoint="127.0.0.1:0")) as taken:
        with pytest.raises(SinkError, match="Address already in use"):
            async with open_sink(SinkConfig(endpoint=taken.address)):
                pass  # never runs: the sink could not listen
    with pytest.raises(AssertionError, match="in the block"):
        async with open_sink(SinkConfig(endpoint="127.0.0.1:0")):
            raise AssertionError("in the block")
