"""The qmqp-sink command against hostile clients and absurd arguments (issue 14)."""

from __future__ import annotations

import json
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from qmqpsource.protocol import Status
from tests.sink_support import address_of, parse_reply, read_all, request, send_all

SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]
RUN_LIMIT = 60.0


@asynccontextmanager
async def sink_process(*args: str) -> AsyncIterator[tuple[trio.Process, list[str]]]:
    """``qmqp-sink ARGS`` in the background: the process and where it listens (told over
    --control-fd, as --embedded-sink learns it). Stopped with SIGTERM at the end."""
    ours, theirs = socket.socketpair()
    with ours:
        try:
            proc = await trio.lowlevel.open_process(
                [*SINK, "--control-fd", str(theirs.fileno()), *args],
                pass_fds=(theirs.fileno(),), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        try:
            with trio.fail_after(RUN_LIMIT):
                line = await trio.to_thread.run_sync(ours.makefile("rb").readline)
            assert line, "the sink exited before it listened"
            yield proc, line.decode().split()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(RUN_LIMIT):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def need_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"needs {count} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


async def served_within(target: str, limit: float) -> float:
    """One real client's exchange: the seconds it took (it must be served)."""
    family, address = address_of(target)
    started = time.monotonic()
    with trio.fail_after(limit), trio.socket.socket(family, socket.SOCK_STREAM) as sock:
        await sock.connect(address)
        await send_all(sock, request())
        reply = parse_reply(await read_all(sock, within=limit))
    assert reply.status is Status.OK
    return time.monotonic() - started


async def test_idle_flood_does_not_keep_a_real_client_waiting(tmp_path: Path) -> None:
    # Default options: 1024 connection slots, --timeout 300.
    flood = 3000
    need_descriptors(flood + 200)
    out = tmp_path / "sink.json"
    idle: list[socket.socket] = []
    try:
        async with sink_process("--json", str(out), "127.0.0.1:0", "1024") as (proc, labels):
            family, address = address_of(labels[0])
            for _ in range(flood):  # connections that never send a byte
                sock = socket.socket(family, socket.SOCK_STREAM)
                idle.append(sock)
                sock.setblocking(False)
                sock.connect_ex(address)
            # Generous: the sink needs well under 2 s here; before, the client would
            # have waited for --timeout (300 s) for a slot.
            took = await served_within(labels[0], 30.0)
            print(f"a real client behind {flood} idle connections was served in {took:.3f} s")
    finally:
        for sock in idle:
            sock.close()
    assert proc.returncode == 0
    value = json.loads(out.read_text())
    assert value["replies"]["K"] == 1
    assert value["max_active"] <= 1024  # memory stays bounded: slots are never exceeded
    assert value["evicted"] > 0
    # Every connection is counted once: closed to make room, or still open at the stop.
    assert value["connections"] == (value["evicted"] + value["cut_off"] + value["empty"]
                                    + value["lost"] + value["timeouts"] + 1)
