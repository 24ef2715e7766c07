"""The floor for a QMQP client in Python: what the leanest one reaches on this machine.

    python benchmarks/python_floor.py 127.0.0.1:7701 -s 10 -m 20000 --processes 2

A plain epoll loop with nothing else: no trio, no options, no timing or statistics,
no deadlines, one fixed 1 KiB message. It is not a tool (a reply other than K, or
any error, ends it with a traceback); it shows how much of qmqp-source's time is
Python and the kernel, which no implementation avoids, and whether a second process
adds anything on this machine. It prints the seconds from the first connect to
the last reply, over all processes, and the messages sent.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import sys
import time

LINGER_ABORT = struct.pack("ii", 1, 0)


def request() -> bytes:
    body = b"x" * 1024
    payload = b"%d:%s,8:a@b.test,8:c@d.test," % (len(body), body)
    return b"%d:%s," % (len(payload), payload)


def run(address: tuple[str, int], sessions: int, messages: int) -> int:
    """Send ``messages`` over ``sessions`` at a time; the number accepted."""
    data = request()
    poller = select.epoll()
    live: dict[int, socket.socket] = {}
    left = messages

    def start() -> None:
        nonlocal left
        left -= 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
        sock.connect_ex(address)
        sock.send(data)  # loopback: connected and taken whole, or the run fails below
        poller.register(sock.fileno(), select.EPOLLIN)
        live[sock.fileno()] = sock

    for _ in range(min(sessions, messages)):
        start()
    accepted = 0
    while live:
        events = poller.poll(10.0)
        if not events:
            raise SystemExit("no reply for 10 s")  # bounded in time, as every load here
        for fd, _ in events:
            sock = live.pop(fd)
            reply = sock.recv(4096)
            if reply[reply.index(b":") + 1] != ord("K"):
                raise SystemExit(f"not accepted: {reply!r}")
            sock.close()
            accepted += 1
            if left > 0:
                start()
    poller.close()
    return accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="host:port on loopback, e.g. 127.0.0.1:7701")
    parser.add_argument("-s", type=int, default=10, help="sessions per process")
    parser.add_argument("-m", type=int, default=20000, help="messages in all")
    parser.add_argument("--processes", type=int, default=1)
    options = parser.parse_args()
    host, _, port = options.target.rpartition(":")
    if not (host.startswith("127.") and port.isdigit()):
        parser.error("the target must be 127.x.x.x:port: loopback only")
    address = (host, int(port))
    shares = [options.m // options.processes + (w < options.m % options.processes)
              for w in range(options.processes)]
    started = time.perf_counter()
    children = []
    for share in shares:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            status = 1
            try:
                os.close(read_end)
                os.write(write_end, str(run(address, options.s, share)).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((pid, read_end))
    accepted = 0
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return 1
        accepted += int(text)
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.3f} s, {accepted} messages accepted, {options.processes} process(es), "
          f"-s {options.s} each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
