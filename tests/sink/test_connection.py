"""One connection's request and reply: malformed and hostile clients, limits, timeouts."""

from __future__ import annotations

import time

import pytest
import trio

from qmqpsource.protocol import Status, netstring
from tests.sink_support import (
    connect,
    exchange,
    parse_reply,
    read_all,
    request,
    running_sink,
    send_all,
    wait_idle,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


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
        await wait_idle(run)
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
        await wait_idle(run)
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
        await wait_idle(run)
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

