"""client.send_request: large requests go out in chunks, waiting for room, intact."""

from __future__ import annotations

import socket

import trio

from qmqpsource.source.client import send_request


class SendSpy:
    """A socket whose send() sizes are recorded (trio waits on its fileno())."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sizes: list[int] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: memoryview) -> int:
        sent = self.sock.send(data)
        self.sizes.append(sent)
        return sent


async def drain(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while received < size:
        await trio.lowlevel.wait_readable(sock)
        chunk = sock.recv(1 << 20)
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


async def test_each_send_takes_at_most_one_chunk_and_all_arrives() -> None:
    request = bytes(range(256)) * 4096  # 1 MiB, every offset distinct mod 256
    chunk = 64 * 1024
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    spy = SendSpy(a)
    received = b""
    with a, b, trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                nonlocal received
                received = await drain(b, len(request))

            nursery.start_soon(reader)
            await send_request(spy, memoryview(request), 0, chunk)  # type: ignore[arg-type]
    assert received == request
    assert max(spy.sizes) <= chunk
    assert len(spy.sizes) >= len(request) // chunk


async def test_without_a_chunk_one_send_takes_what_the_socket_will() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    spy = SendSpy(a)
    with a, b:
        await send_request(spy, memoryview(b"x" * 1000))  # type: ignore[arg-type]
        assert spy.sizes == [1000]
        assert b.recv(2000) == b"x" * 1000
