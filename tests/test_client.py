"""client.send_request: large requests go out in turns, never blocking, intact."""

from __future__ import annotations

import socket

from qmqpsource.client import send_request
from qmqpsource.waits import WRITABLE


def drain(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        chunks.append(chunk)


def test_each_step_sends_at_most_one_turn_and_all_arrives() -> None:
    request = bytes(range(256)) * 4096  # 1 MiB, every offset distinct mod 256
    turn = 64 * 1024
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        steps = send_request(a, memoryview(request), 0, turn)
        received = b""
        waits = 0
        while True:
            try:
                kind, fd = steps.send(None)
            except StopIteration:
                break
            assert (kind, fd) == (WRITABLE, a.fileno())
            waits += 1
            got = drain(b)
            assert len(got) <= turn  # one step, one turn at most
            received += got
        received += drain(b)
    assert received == request
    assert waits >= len(request) // turn - 1


def test_without_a_turn_one_send_takes_what_the_socket_will() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    with a, b:
        steps = send_request(a, memoryview(b"x" * 1000))
        try:
            steps.send(None)
        except StopIteration:
            pass
        else:
            raise AssertionError("a small request waited")
        assert b.recv(2000) == b"x" * 1000
