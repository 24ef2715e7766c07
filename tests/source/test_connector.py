"""Target syntax, resolution, connect with RESET retry, socket options."""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
import tempfile
from contextlib import closing

import pytest
import trio

from qmqpsource.addresses import AddressError, Family
from qmqpsource.source.connector import ConnectError, Endpoint, connect, resolve


async def test_resolve_service_name_and_families() -> None:
    endpoint = await resolve("127.0.0.1:qmqp")
    assert endpoint.address == ("127.0.0.1", 628)
    six = await resolve("[::1]:7000", Family.INET6)
    assert six.family == socket.AF_INET6 and six.address[:2] == ("::1", 7000)
    assert six.label == "[::1]:7000"
    with pytest.raises(AddressError, match=re.escape("127.0.0.1:7000: ")):
        await resolve("127.0.0.1:7000", Family.INET6)
    with pytest.raises(AddressError, match=re.escape("nosuch.invalid")):
        await resolve("nosuch.invalid:7000")
    with pytest.raises(AddressError, match="localhost:nosuchservice"):
        await resolve("localhost:nosuchservice")
    # Digits that are not ASCII ('²'.isdigit() is true, int('²') fails) name no service.
    with pytest.raises(AddressError, match=re.escape("127.0.0.1:\u00b2")):
        await resolve("127.0.0.1:\u00b2")


async def test_localhost_honours_family() -> None:
    four = await resolve("localhost:7000", Family.INET)
    assert four.family == socket.AF_INET


def _listener(family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
async def test_connect_sets_linger_zero(family: int) -> None:
    with _listener(family) as listener:
        host, port = listener.getsockname()[:2]
        target = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        endpoint = await resolve(target)
        with closing(await connect(endpoint)) as sock:
            linger = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
            assert struct.unpack("ii", linger) == (1, 0)
            assert sock.getblocking() is False
            assert sock.getpeername()[:2] == (host, port)


async def test_connect_unix() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen(1)
            endpoint = await resolve(f"unix:{path}")
            assert not endpoint.is_tcp
            with closing(await connect(endpoint)) as sock:
                assert sock.getpeername() == path


async def test_connect_unix_absent() -> None:
    endpoint = await resolve("unix:/nonexistent/qmqp.sock")
    with pytest.raises(ConnectError) as info:
        await connect(endpoint)
    assert str(info.value) == ("connect to unix:/nonexistent/qmqp.sock: No such file or "
                               "directory")


def _free_port() -> int:
    with _listener() as sock:
        return int(sock.getsockname()[1])


async def test_refused_without_retry() -> None:
    port = _free_port()
    endpoint = Endpoint(socket.AF_INET, ("127.0.0.1", port), f"127.0.0.1:{port}")
    retries: list[ConnectError] = []
    with pytest.raises(ConnectError) as info:
        await connect(endpoint, 1, retries.append)
    assert info.value.errno == errno.ECONNREFUSED
    # The address, as Postfix's SMTP client names it: its qmqp-source said "connect: %m".
    assert str(info.value) == f"connect to 127.0.0.1:{port}: Connection refused"
    assert retries == []


async def test_retry_finds_a_listener_that_appears_late() -> None:
    port = _free_port()
    endpoint = Endpoint(socket.AF_INET, ("127.0.0.1", port), "x")
    retries: list[ConnectError] = []
    late = socket.socket()
    late.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    async def open_late() -> None:
        await trio.sleep(0.1)
        late.bind(("127.0.0.1", port))
        late.listen(1)

    with late, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(open_late)
            sock = await connect(endpoint, 20, retries.append)
            sock.close()
    assert retries, "the first attempts should have been refused"
    assert all(r.errno == errno.ECONNREFUSED for r in retries)


async def test_retry_gives_up_after_count() -> None:
    endpoint = Endpoint(socket.AF_INET, ("127.0.0.1", _free_port()), "x")
    retries: list[ConnectError] = []
    with trio.fail_after(10), pytest.raises(ConnectError):
        await connect(endpoint, 3, retries.append)
    assert len(retries) == 2  # three attempts in all, two warned about


async def test_cancelled_connect_leaves_no_socket() -> None:
    # A listener whose accept queue is full drops further SYNs, so connect() waits.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        endpoint = Endpoint(socket.AF_INET, listener.getsockname(), "x")
        fillers = []
        before = len(os.listdir("/proc/self/fd"))
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(endpoint.address)
                fillers.append(filler)
            with trio.move_on_after(0.3) as scope:
                (await connect(endpoint)).close()
            assert scope.cancelled_caught, "connect should still be waiting"
        finally:
            for filler in fillers:
                filler.close()
        assert len(os.listdir("/proc/self/fd")) == before
