"""The runner end to end against an in-test trio QMQP server."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

import qmqpsource.source.connector
from qmqpsource.results.outcome import Outcome
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.request import RequestFactory
from tests.qmqp_server import (
    close_after_request,
    never_reply,
    qmqp_server,
    read_request,
    reply_with,
)
from tests.source_support import run_in_process as run


async def test_exactly_m_messages_never_more_than_s_at_once(autojump_clock: Any) -> None:
    async with qmqp_server(delay=0.02) as server:
        result, _, _ = await run(server.target, sessions=4, messages=30, recipients=2)
    assert result.exit_status == 0 and result.failure is None
    assert len(server.requests) == 30 == result.stats.accepted
    assert server.connections == 30
    assert server.max_pending == 4
    assert all(len(r.recipients) == 2 for r in server.requests)


async def test_server_receives_the_built_request_bytes() -> None:
    async with qmqp_server() as server:
        config = SourceConfig(target=server.target, messages=3, length=500, sender="a@b",
                              recipient="c@d", recipients=5)
        result, _, _ = await run(server.target, messages=3, length=500, sender="a@b",
                                 recipient="c@d", recipients=5)
    expected = RequestFactory(config).fixed
    assert expected is not None
    assert result.stats.accepted == 3
    # Only Message-Id's pid and the Date may differ between two builds: same process, same
    # second is not guaranteed, so compare everything but the Date line.
    def strip_date(raw: bytes) -> bytes:
        return b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Date: "))
    assert [strip_date(raw) for raw in server.raw] == [strip_date(expected)] * 3
    assert server.requests[0].sender == b"a@b"
    assert server.requests[0].recipients == tuple(b"%dc@d" % i for i in range(5))
    assert len(server.requests[0].message) == 500


@pytest.fixture
def connect_tracker(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Slow every connect down and see how many attempts are in flight at once.

    The first attempt starts without sending (so that it is still connecting, and the
    runner takes the general path, which waits), and the wait is widened.
    """
    seen = {"now": 0, "max": 0}
    real_begin = qmqpsource.source.connector.begin_connect
    real_finish = qmqpsource.source.connector.connect_and_send

    def begin(endpoint: Any, first: Any = None) -> Any:
        seen["now"] += 1
        seen["max"] = max(seen["max"], seen["now"])
        return real_begin(endpoint, None)

    async def tracked(*args: Any, **kwargs: Any) -> Any:
        try:
            await trio.sleep(0.005)  # widen the window overlap would show in
            return await real_finish(*args, **kwargs)
        finally:
            seen["now"] -= 1

    monkeypatch.setattr("qmqpsource.source.runner.begin_connect", begin)
    monkeypatch.setattr("qmqpsource.source.runner.connect_and_send", tracked)
    return seen


async def test_connects_one_at_a_time_by_default(
    connect_tracker: dict[str, int], autojump_clock: Any
) -> None:
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=8, messages=40)
    assert result.stats.accepted == 40
    assert connect_tracker["max"] == 1


async def test_connect_limit_raises_it(
    connect_tracker: dict[str, int], autojump_clock: Any
) -> None:
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=8, messages=40, connect_limit=4)
    assert result.stats.accepted == 40
    assert 1 < connect_tracker["max"] <= 4


FAILURES = [
    (reply_with(b"5:Zbusy,"), Outcome.TEMPFAIL, "recoverable error: busy"),
    (reply_with(b"8:Dno such,"), Outcome.PERMFAIL, "unrecoverable error: no such"),
    (reply_with(b"3:Xwa,"), Outcome.PROTOCOL_ERROR, "unknown error: wa"),
    (reply_with(b"0:,"), Outcome.PROTOCOL_ERROR,
     "netstring format error: empty reply while receiving server reply"),
    (reply_with(b"HTTP/1.0 400\r\n"), Outcome.PROTOCOL_ERROR,
     "netstring format error: bad length while receiving server reply"),
    (reply_with(b"99999:K"), Outcome.PROTOCOL_ERROR,
     "netstring size exceeds limit while receiving server reply"),
    (reply_with(b"10:Kok"), Outcome.LOST_CONNECTION,
     "lost connection while receiving server reply"),
    (close_after_request, Outcome.LOST_CONNECTION, "lost connection while receiving server reply"),
]


@pytest.mark.parametrize(("handler", "outcome", "text"), FAILURES)
async def test_failure_is_fatal_with_postfix_wording(
    handler: Any, outcome: Outcome, text: str
) -> None:
    async with qmqp_server(handler) as server:
        result, _, _ = await run(server.target, sessions=3, messages=50)
    assert result.failure == text
    assert result.exit_status == 1
    assert result.stats.counts[outcome] >= 1
    assert result.stats.attempted < 50  # the first failure stopped the run


@pytest.mark.parametrize(("handler", "outcome", "text"), FAILURES)
async def test_keep_going_counts_every_failure(handler: Any, outcome: Outcome, text: str) -> None:
    async with qmqp_server(handler) as server:
        result, _, err = await run(server.target, sessions=3, messages=12, keep_going=True)
    assert result.failure is None
    assert result.exit_status == 1
    assert result.stats.counts[outcome] == 12 == result.stats.failed
    assert err == ""


async def test_refused_and_keep_going() -> None:
    async with qmqp_server() as server:
        target = server.target
    result, _, _ = await run(target, messages=3)
    assert result.failure == f"connect to {target}: Connection refused"
    result, _, _ = await run(target, messages=3, keep_going=True)
    assert result.stats.counts[Outcome.REFUSED] == 3


async def test_mixed_replies_under_keep_going() -> None:
    replies = [b"Kok", b"Zlater", b"Dnever"]
    async with qmqp_server(reply=lambda i: replies[i % 3]) as server:
        result, _, _ = await run(server.target, sessions=2, messages=30, keep_going=True)
    assert result.stats.counts[Outcome.ACCEPTED] == 10
    assert result.stats.counts[Outcome.TEMPFAIL] == 10
    assert result.stats.counts[Outcome.PERMFAIL] == 10


async def test_counter_and_verbose_output() -> None:
    async with qmqp_server(reply=b"Kqueued as 1") as server:
        _, out, err = await run(server.target, messages=3, counter=True, verbose=1)
    assert out == "1\r2\r3\r\n"
    assert err.splitlines() == ["<< Kqueued as 1"] * 3


async def test_verbose_escapes_control_bytes() -> None:
    async with qmqp_server(reply=b"Kok\x1b[31m\r\n") as server:
        _, _, err = await run(server.target, messages=1, verbose=1)
    assert err == "<< Kok\\x1b[31m\\r\\n\n"


@pytest.mark.parametrize("family", ["inet6", "unix"])
async def test_ipv6_and_unix(family: str) -> None:
    async with qmqp_server(family=family) as server:
        result, _, _ = await run(server.target, sessions=3, messages=9)
    assert len(server.requests) == 9 == result.stats.accepted


async def test_no_socket_left_after_failure_and_cancel(autojump_clock: Any) -> None:
    before = len(os.listdir("/proc/self/fd"))
    async with qmqp_server(never_reply) as server:
        with trio.move_on_after(0.3):
            await run(server.target, sessions=5, messages=100)
        await run(server.target, sessions=5, messages=10, timeout=0.1)
    assert len(os.listdir("/proc/self/fd")) == before


async def test_late_listener_with_connect_attempts(autojump_clock: Any) -> None:
    async with qmqp_server() as probe:
        target = probe.target
    port = int(target.rsplit(":", 1)[1])

    async def late_server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(0.2)
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")

        async def handle(stream: trio.SocketStream) -> None:
            await read_request(stream)
            await stream.send_all(b"3:Kok,")

        await trio.serve_listeners(handle, listeners)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(late_server)
        result, _, err = await run(target, messages=2, connect_attempts=30)
        nursery.cancel_scope.cancel()
    assert result.stats.accepted == 2
    assert f"warning: connect to {target}: Connection refused" in err


async def test_waiting_for_a_connect_turn_is_not_a_timeout(
    connect_tracker: dict[str, int], autojump_clock: Any
) -> None:
    # Eight sessions queue for one connect slot, each connect held ~5 ms by the tracker;
    # a 0.02 s timeout would fire if time in the queue counted.
    async with qmqp_server() as server:
        result, _, _ = await run(server.target, sessions=8, messages=16, timeout=0.02)
    assert result.failure is None
    assert result.stats.accepted == 16
