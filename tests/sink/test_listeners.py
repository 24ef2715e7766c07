"""Where the sink listens: UNIX sockets (stale, live, ours), IPv6, bind failures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from qmqpsource.addresses import Family
from qmqpsource.protocol import Status
from qmqpsource.sink import ListenError, open_listeners, parse_endpoint
from tests.sink_support import exchange, ipv6_available, parse_reply, request, running_sink

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


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

