"""qmqp-sink's server in process: replies, connection slots and eviction, log lines, counts."""

from __future__ import annotations

import resource
import sys

import pytest
import trio

from qmqpsource.protocol import Status
from qmqpsource.sink import Faults, format_summary
from tests.sink_support import (
    connect,
    exchange,
    parse_reply,
    read_all,
    request,
    running_sink,
    send_all,
    wait_idle,
    wait_waiting,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


# --- well-formed requests


async def test_valid_request_gets_k_with_unique_id() -> None:
    async with running_sink() as run:
        first = parse_reply(await exchange(run.target, request()))
        second = parse_reply(await exchange(run.target, request()))
    assert first.status is Status.OK and second.status is Status.OK
    assert first.text.startswith(b"2.0.0 Ok: queued as ")
    assert first.text != second.text  # the id differs
    stats = run.sink.stats
    assert (stats.connections, stats.messages, stats.replies_k) == (2, 2, 2)
    assert stats.bytes == 2 * len(request())
    assert run.log_lines == []  # good clients cost no log lines


async def test_counts_recipients_and_message_bytes() -> None:
    rcpts = (b"a@x.test", b"b@x.test", b"c@x.test")
    async with running_sink() as run:
        reply = parse_reply(await exchange(run.target, request(b"abc\n", b"", rcpts)))
    assert reply.status is Status.OK  # the null sender is fine
    assert run.sink.stats.recipients == 3
    assert run.sink.stats.message_bytes == 4


async def test_our_source_against_our_sink() -> None:
    async with running_sink() as run:
        with trio.fail_after(60):
            done = await trio.run_process(
                [sys.executable, "-m", "qmqpsource", "-s", "5", "-m", "300", "-r", "2",
                 "-M", "sink.test", run.target],
                capture_stderr=True, check=False,
            )
    assert done.returncode == 0, done.stderr
    sink = run.sink.stats
    assert (sink.connections, sink.messages, sink.replies_k) == (300, 300, 300)
    assert sink.recipients == 600
    assert sink.active == 0



# --- --max-connections: the slots, the listen queue, the idle connections that make room


def _need_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"needs {count} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


async def test_thousand_hostile_connections_at_once() -> None:
    # Both ends live in this process: 2 descriptors per connection.
    _need_descriptors(2 * 1000 + 200)
    async with running_sink(timeout=20) as run:
        socks: list[trio.socket.SocketType] = []
        try:
            for _ in range(1000):
                socks.append(await connect(run.target))
            for i, sock in enumerate(socks):
                if i % 3 == 0:
                    await send_all(sock, b"garbage!\r\n")
                elif i % 3 == 1:
                    await send_all(sock, b"4000:half a request")
            # All held open at once, and a good client is still served.
            with trio.fail_after(10):
                while run.sink.stats.active < 1000:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            reply = parse_reply(await exchange(run.target, request()))
            assert reply.status is Status.OK
        finally:
            for sock in socks:
                sock.close()
        await wait_idle(run)
        # ... and still served once they all vanished.
        assert parse_reply(await exchange(run.target, request())).status is Status.OK
    stats = run.sink.stats
    assert stats.connections == 1002
    assert stats.max_active >= 1000
    assert stats.malformed + stats.lost + stats.empty == 1000
    assert len(run.log_lines) <= 1000


async def test_max_connections_makes_the_rest_wait() -> None:
    async with running_sink(max_connections=2) as run:
        # Both have sent part of a request: neither is idle, so neither makes room.
        busy = [await connect(run.target), await connect(run.target)]
        try:
            for sock in busy:
                await send_all(sock, b"4000:half a request")
            with trio.move_on_after(0.3) as waited:
                await exchange(run.target, request(), within=5)
            assert waited.cancelled_caught  # queued in the kernel, not served
            busy[0].close()
            reply = parse_reply(await exchange(run.target, request()))
            assert reply.status is Status.OK
        finally:
            for sock in busy:
                sock.close()
    assert run.sink.stats.max_active == 2
    assert run.sink.stats.evicted == 0


async def test_full_slots_close_the_longest_idle_connection() -> None:
    async with running_sink(max_connections=2) as run:
        oldest = await connect(run.target)
        await wait_waiting(run, 1)
        newer = await connect(run.target)
        await wait_waiting(run, 2)
        try:
            # Both slots hold a connection that has sent nothing: a real client still
            # gets one at once, and the oldest idle one is closed to make room.
            reply = parse_reply(await exchange(run.target, request(), within=10))
            assert reply.status is Status.OK
            assert await read_all(oldest, within=10) == b""
            await send_all(newer, request())
            assert parse_reply(await read_all(newer, within=10)).status is Status.OK
        finally:
            oldest.close()
            newer.close()
    stats = run.sink.stats
    assert (stats.evicted, stats.replies_k, stats.max_active) == (1, 2, 2)
    assert any("closing the connections that have sent nothing for longest" in line
               for line in run.log_lines)



# --- logging, counters


async def test_verbose_one_line_per_connection() -> None:
    async with running_sink(verbose=1) as run:
        for _ in range(3):
            await exchange(run.target, request())
        await exchange(run.target, b"junk")
        await wait_idle(run)  # the refused one logs after its bounded drain
    lines = run.log_lines
    assert lines[0].startswith("qmqp-sink: listening on 127.0.0.1:")
    conn_lines = lines[1:]
    assert len(conn_lines) == 4
    assert all(line.startswith("qmqp-sink: 127.0.0.1:") for line in conn_lines)
    assert "K2.0.0 Ok: queued as " in conn_lines[0] and "; 1 recipients, 21 bytes" in conn_lines[0]


async def test_counter_output() -> None:
    async with running_sink(counter=True) as run:
        for _ in range(3):
            await exchange(run.target, request())
    assert run.out.getvalue() == "1\r2\r3\r"


async def test_requests_cut_off_by_the_stop_are_counted() -> None:
    clients: list[trio.socket.SocketType] = []
    try:
        async with running_sink(faults=Faults(delay_min=30, delay_max=30)) as run:
            for _ in range(3):  # whole requests, waiting out --delay when the sink stops
                clients.append(await connect(run.target))
                await send_all(clients[-1], request())
            clients.append(await connect(run.target))  # and one that sent nothing
            await wait_waiting(run, 4)
    finally:
        for sock in clients:
            sock.close()
    stats = run.sink.stats
    assert (stats.connections, stats.messages, stats.cut_off) == (4, 3, 4)
    assert stats.as_dict()["cut_off"] == 4
    assert stats.replies_k == stats.ended() == 0
    assert format_summary(stats)[2] == "closed idle to make room 0; cut off by the stop 4"


async def test_every_connection_ends_in_one_count_when_none_is_cut_off() -> None:
    faults = Faults(drop=0.25, hang=0.25, tempfail=0.25, seed=3)
    async with running_sink(faults=faults) as run:
        for _ in range(20):
            with trio.move_on_after(0.2):  # a hung one never answers
                await exchange(run.target, request())
        await exchange(run.target, b"garbage")  # malformed: a D
        (await connect(run.target)).close()  # a probe: empty
        await wait_idle(run)
    stats = run.sink.stats
    assert stats.hung and stats.dropped and stats.replies_z and stats.replies_k
    assert stats.connections == 22 == stats.ended()
    assert stats.cut_off == 0

