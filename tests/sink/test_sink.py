"""qmqp-sink's server, in process: replies, malformed and hostile clients, faults, counters."""

from __future__ import annotations

import resource
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from qmqpsource.addresses import Family
from qmqpsource.protocol import Status, netstring
from qmqpsource.sink import (
    Faults,
    ListenError,
    SinkStats,
    format_summary,
    open_listeners,
    parse_endpoint,
)
from tests.sink_support import (
    POSTFIX_SOURCE,
    RunningSink,
    connect,
    exchange,
    ipv6_available,
    no_fd_leak,
    parse_reply,
    postfix_source_missing,
    read_all,
    request,
    running_sink,
    send_all,
)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_fd_leak():
        yield


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


# --- malformed requests: a D that says what is wrong


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (netstring(netstring(b"msg") + netstring(b"from")), b"at least one recipient"),
        (netstring(b"not netstrings"), b"malformed request"),
        (netstring(netstring(b"msg") + b"5:ab,"), b"malformed request"),
        (request(sender=b"evil\nX-Forged: yes"), b"control character"),
        (request(recipients=(b"ok@x.test", b"bad\r@x.test")), b"control character"),
    ],
)
async def test_malformed_content_gets_d(payload: bytes, says: bytes) -> None:
    async with running_sink() as run:
        reply = parse_reply(await exchange(run.target, payload))
    assert reply.status is Status.PERMFAIL
    assert says in reply.text
    stats = run.sink.stats
    assert (stats.malformed, stats.replies_d, stats.messages) == (1, 1, 0)
    assert len(run.log_lines) == 1 and "refused" in run.log_lines[0]


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", b"bad length"),
        (b"012:hello world!,", b"leading zero"),
        (b"5:hello;", b"missing ','"),
        (b":", b"empty length"),
        (b"12x:", b"bad length"),
    ],
)
async def test_broken_framing_gets_d_then_close(garbage: bytes, says: bytes) -> None:
    async with running_sink() as run:
        reply = parse_reply(await exchange(run.target, garbage))
        # ... and the sink keeps serving.
        assert parse_reply(await exchange(run.target, request())).status is Status.OK
    assert reply.status is Status.PERMFAIL and says in reply.text
    assert run.sink.stats.malformed == 1
    assert len(run.log_lines) == 1


async def test_oversize_length_refused_before_payload() -> None:
    async with running_sink(max_size=1000) as run:
        sock = await connect(run.target)
        with sock:
            # Only the length: the sink must answer without waiting for the payload.
            await send_all(sock, b"5000:")
            raw = await read_all(sock, within=2)
        await _wait_idle(run)
    reply = parse_reply(raw)
    assert reply.status is Status.PERMFAIL and b"too large" in reply.text
    assert run.sink.stats.bytes == 5  # nothing buffered past the length
    assert run.sink.stats.malformed == 1
    # Refused once its digits pass the limit, before the whole length is read: all that
    # is known is "over the limit" (it said "request of 5000 bytes" for 5000000:).
    assert run.log_lines[0].endswith(": warning: refused: request of over 1000 bytes")


async def test_oversize_length_warning_names_the_limit_not_the_digits_read() -> None:
    async with running_sink(max_size=1000) as run:
        await exchange(run.target, b"5000000:", within=2)
        await _wait_idle(run)
    assert run.log_lines[0].endswith(": warning: refused: request of over 1000 bytes")


async def test_huge_length_refused_at_once() -> None:
    async with running_sink() as run:  # default limit, 10 MiB
        raw = await exchange(run.target, b"99999999999999999:", within=2)
    assert parse_reply(raw).status is Status.PERMFAIL


async def test_oversize_client_that_keeps_sending_still_reads_the_d() -> None:
    # A plain client writes its whole request before reading; the sink drains it
    # (bounded) instead of resetting, so the D arrives.
    big = request(b"x" * 200_000)
    async with running_sink(max_size=100_000) as run:
        raw = await exchange(run.target, big)
    reply = parse_reply(raw)
    assert reply.status is Status.PERMFAIL and b"too large" in reply.text


async def test_size_limit_is_inclusive() -> None:
    req = request(b"y" * 5000)
    payload_len = int(req.split(b":", 1)[0])
    async with running_sink(max_size=payload_len) as run:
        assert parse_reply(await exchange(run.target, req)).status is Status.OK
    async with running_sink(max_size=payload_len - 1) as run:
        assert parse_reply(await exchange(run.target, req)).status is Status.PERMFAIL


# --- hostile clients: one log line each at most, and the sink keeps serving


async def test_probe_without_request_is_not_a_warning() -> None:
    async with running_sink() as run:
        sock = await connect(run.target)
        sock.close()
        assert parse_reply(await exchange(run.target, request())).status is Status.OK
    assert run.sink.stats.empty == 1
    assert run.log_lines == []


async def test_client_vanishing_mid_request() -> None:
    async with running_sink() as run:
        sock = await connect(run.target)
        with sock:
            await send_all(sock, b"1000:partial")
            await trio.sleep(0.05)
        await _wait_idle(run)
    assert run.sink.stats.lost == 1
    assert len(run.log_lines) == 1 and "lost connection" in run.log_lines[0]


async def test_slow_drip_times_out() -> None:
    async with running_sink(timeout=0.3) as run:
        sock = await connect(run.target)
        with sock:
            started = time.monotonic()
            with trio.move_on_after(3):
                try:
                    for byte in request():
                        await send_all(sock, bytes([byte]))
                        await trio.sleep(0.05)
                except OSError:
                    pass  # the sink closed on us: that is the point
            # The sink closed on us well before the drip could finish.
            assert time.monotonic() - started < 2.5
    assert run.sink.stats.timeouts == 1
    assert len(run.log_lines) == 1 and "timeout while receiving request" in run.log_lines[0]


async def test_idle_client_times_out() -> None:
    async with running_sink(timeout=0.2) as run:
        sock = await connect(run.target)
        with sock:
            assert await read_all(sock, within=3) == b""
    assert run.sink.stats.timeouts == 1


async def _wait_idle(run: RunningSink, within: float = 10.0) -> None:
    """Until the sink has no open connection; polled, as the sink has no event for it."""
    with trio.fail_after(within):
        while run.sink.stats.active:  # noqa: ASYNC110
            await trio.sleep(0.01)


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
        await _wait_idle(run)
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


async def _wait_waiting(run: RunningSink, count: int) -> None:
    """Until ``count`` connections are open and each waits for its first byte."""
    with trio.fail_after(10):
        while run.sink.stats.active < count:  # noqa: ASYNC110 - the sink has no event
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked()


async def test_full_slots_close_the_longest_idle_connection() -> None:
    async with running_sink(max_connections=2) as run:
        oldest = await connect(run.target)
        await _wait_waiting(run, 1)
        newer = await connect(run.target)
        await _wait_waiting(run, 2)
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


# --- faults on purpose, as a QMQP client sees them


async def _client_exchange(target: str) -> tuple[Status | None, bytes]:
    """One message over a raw socket: the reply's (status, text), or (None, b"") on a close."""
    raw = await exchange(target, request(), within=10)
    if not raw:
        return None, b""
    reply = parse_reply(raw)
    return reply.status, reply.text


async def _our_source(target: str, *options: str) -> tuple[int, str]:
    """One message with our qmqp-source CLI: (exit status, its stderr)."""
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-m", "qmqpsource", *options, target],
            capture_stderr=True, check=False,
        )
    return done.returncode, done.stderr.decode()


async def _postfix_source(target: str) -> tuple[int, str]:
    reason = postfix_source_missing()
    if reason is not None:
        pytest.skip(reason)
    with trio.fail_after(30):
        done = await trio.run_process(
            [POSTFIX_SOURCE, "-m", "1", target], capture_stderr=True, check=False
        )
    return done.returncode, done.stderr.decode()


FAULT_VIEWS = [
    (Faults(tempfail=1.0), "recoverable error: 4.3.0 Error: tempfail on purpose"),
    (Faults(reject=1.0), "unrecoverable error: 5.7.1 Error: rejected on purpose"),
    (Faults(drop=1.0), "lost connection while receiving server reply"),
]


@pytest.mark.parametrize(("faults", "says"), FAULT_VIEWS)
async def test_fault_as_our_source_sees_it(faults: Faults, says: str) -> None:
    async with running_sink(faults=faults) as run:
        status, err = await _our_source(run.target)
    assert status == 1
    assert f"qmqp-source: fatal: {says}" in err.splitlines(), err  # its summary may follow


@pytest.mark.postfix
async def test_faults_as_postfix_source_sees_them() -> None:
    # Concurrently: Postfix's client sleeps a second before each fatal exit.
    seen: dict[str, tuple[int, str]] = {}

    async def one(faults: Faults, says: str) -> None:
        async with running_sink(faults=faults) as run:
            seen[says] = await _postfix_source(run.target)

    async with trio.open_nursery() as nursery:
        for faults, says in FAULT_VIEWS:
            nursery.start_soon(one, faults, says)
    for says, (status, err) in seen.items():
        assert status == 1
        assert err.strip() == f"{POSTFIX_SOURCE}: fatal: {says}"


async def test_fault_hang_as_our_source_sees_it() -> None:
    async with running_sink(faults=Faults(hang=1.0)) as run:
        status, err = await _our_source(run.target, "--timeout", "0.3")
    assert status == 1
    assert "qmqp-source: fatal: timeout while receiving server reply" in err.splitlines(), err
    assert run.sink.stats.hung == 1


async def test_fault_tempfail() -> None:
    async with running_sink(faults=Faults(tempfail=1.0)) as run:
        status, text = await _client_exchange(run.target)
    assert status is Status.TEMPFAIL and b"tempfail" in text
    assert run.sink.stats.replies_z == 1


async def test_fault_reject() -> None:
    async with running_sink(faults=Faults(reject=1.0)) as run:
        status, text = await _client_exchange(run.target)
    assert status is Status.PERMFAIL and b"rejected" in text
    assert run.sink.stats.replies_d == 1


async def test_fault_drop() -> None:
    async with running_sink(faults=Faults(drop=1.0)) as run:
        status, _ = await _client_exchange(run.target)
    assert status is None
    assert run.sink.stats.dropped == 1
    assert run.log_lines == []  # on purpose: not a warning


async def test_fault_hang_until_client_gives_up() -> None:
    async with running_sink(faults=Faults(hang=1.0)) as run:
        with trio.move_on_after(0.3) as scope:
            await _client_exchange(run.target)
        assert scope.cancelled_caught  # no reply ever came
        await _wait_idle(run)
    assert run.sink.stats.hung == 1
    assert run.sink.stats.timeouts == 0


async def test_fault_hang_ends_at_the_timeout() -> None:
    async with running_sink(faults=Faults(hang=1.0), timeout=0.3) as run:
        started = time.monotonic()
        status, _ = await _client_exchange(run.target)
        took = time.monotonic() - started
    assert status is None  # closed without a reply
    assert 0.25 <= took < 2.0


async def test_fault_fixed_delay() -> None:
    async with running_sink(faults=Faults(delay_min=0.2, delay_max=0.2)) as run:
        started = time.monotonic()
        status, _ = await _client_exchange(run.target)
        took = time.monotonic() - started
    assert status is Status.OK
    assert took >= 0.2


async def test_fault_delay_range() -> None:
    async with running_sink(faults=Faults(delay_min=0.05, delay_max=0.15, seed=3)) as run:
        took = []
        for _ in range(4):
            started = time.monotonic()
            assert (await _client_exchange(run.target))[0] is Status.OK
            took.append(time.monotonic() - started)
    assert all(t >= 0.05 for t in took)


async def _fates(seed: int) -> list[str]:
    faults = Faults(tempfail=0.25, reject=0.25, drop=0.2, seed=seed)
    async with running_sink(faults=faults) as run:
        seen = []
        for _ in range(40):  # one at a time: the order of draws is the order of requests
            status, _ = await _client_exchange(run.target)
            seen.append(status.value if status is not None else "drop")
    return seen


async def test_faults_reproducible_with_seed() -> None:
    first, second, other = await _fates(7), await _fates(7), await _fates(8)
    assert first == second
    assert first != other
    assert set(first) == {"K", "Z", "D", "drop"}


def test_fault_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(tempfail=1.5)
    with pytest.raises(ValueError, match="add up"):
        Faults(tempfail=0.6, reject=0.6)
    with pytest.raises(ValueError, match="MIN <= MAX"):
        Faults(delay_min=2, delay_max=1)


# --- endpoints, logging, counters


async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "sink.sock"
    async with running_sink(endpoint=f"unix:{path}") as run:
        assert run.target == f"unix:{path}"
        assert parse_reply(await exchange(run.target, request())).status is Status.OK
    assert not path.exists()  # removed on the way out


async def test_unix_socket_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "sink.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))
    async with running_sink(endpoint=f"unix:{path}") as run:
        assert parse_reply(await exchange(run.target, request())).status is Status.OK


async def test_unix_socket_of_a_live_server_is_refused_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "sink.sock"
    async with running_sink(endpoint=f"unix:{path}") as first:
        refused: list[str] = []
        try:
            async with running_sink(endpoint=f"unix:{path}"):
                pass
        except* ListenError as group:
            refused = [str(exc) for exc in group.exceptions]
        assert refused == [f"unix:{path}: a server is listening there already"]
        # The first one still has its socket, and answers on it.
        assert parse_reply(await exchange(first.target, request())).status is Status.OK
    assert not path.exists()  # removed by the sink that made it


async def test_a_sink_removes_only_its_own_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "sink.sock"
    with socket.socket(socket.AF_UNIX) as other:
        async with running_sink(endpoint=f"unix:{path}"):
            path.unlink()  # someone else's socket takes the path meanwhile
            other.bind(str(path))
        assert path.exists()


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 loopback [::1] cannot be bound here")
async def test_ipv6_loopback() -> None:
    async with running_sink(endpoint="[::1]:0") as run:
        assert run.target.startswith("[::1]:")
        assert parse_reply(await exchange(run.target, request())).status is Status.OK


async def test_bind_failure_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        endpoint = parse_endpoint(f"127.0.0.1:{port}")
        with pytest.raises(ListenError, match=f"bind 127.0.0.1:{port}: Address already in use"):
            await open_listeners(endpoint, Family.ANY, 5)


async def test_verbose_one_line_per_connection() -> None:
    async with running_sink(verbose=1) as run:
        for _ in range(3):
            await exchange(run.target, request())
        await exchange(run.target, b"junk")
        await _wait_idle(run)  # the refused one logs after its bounded drain
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
            await _wait_waiting(run, 4)
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
        await _wait_idle(run)
    stats = run.sink.stats
    assert stats.hung and stats.dropped and stats.replies_z and stats.replies_k
    assert stats.connections == 22 == stats.ended()
    assert stats.cut_off == 0


def test_summary_lines() -> None:
    stats = SinkStats()
    stats.connections = stats.messages = stats.replies_k = 2
    lines = format_summary(stats)
    assert lines[0].startswith("2 connections, 2 messages")
    assert "2 K, 0 Z, 0 D" in lines[1]
    data = stats.as_dict()
    assert data["replies"] == {"K": 2, "Z": 0, "D": 0}
    assert set(data) >= {"connections", "messages", "recipients", "bytes", "malformed",
                         "timeouts"}
