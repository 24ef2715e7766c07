"""Closed, failing and abandoned stdout and stderr never change a run (issue 14, items 3, 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from qmqpsource.protocol import Status
from tests.qmqp_server import qmqp_server
from tests.test_sink_support import exchange, parse_reply, request

SOURCE = [sys.executable, "-m", "qmqpsource"]
SINK = [sys.executable, "-m", "qmqpsource.sink_cli"]
RUN_LIMIT = 60.0


def shell(argv: list[str], redirections: str) -> list[str]:
    """``argv`` run by sh with ``redirections`` (``>&-``, ``2>/dev/full``...) applied."""
    quoted = " ".join("'" + arg.replace("'", "'\\''") + "'" for arg in argv)
    return ["sh", "-c", f"exec {quoted} {redirections}"]


async def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(RUN_LIMIT):
        return await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                      check=False)


async def test_source_with_stderr_closed_or_failing_exits_as_usual(tmp_path: Path) -> None:
    async with qmqp_server() as server:
        for redirection in ("2>&-", "2>/dev/full"):
            out = tmp_path / "r.json"
            done = await run(shell([*SOURCE, "-s", "2", "-m", "5", "--json", str(out),
                                    server.target], redirection))
            assert done.returncode == 0, (redirection, done.stderr)
            assert json.loads(out.read_text())["counts"]["accepted"] == 5
        assert server.handler_errors == []
    assert len(server.requests) == 10


async def test_source_counter_into_closed_stdout_runs_to_the_end(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        done = await run(shell([*SOURCE, "-c", "-m", "20", "--json", str(out), server.target],
                               ">&-"))
        assert server.handler_errors == []
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert json.loads(out.read_text())["counts"]["accepted"] == 20


async def test_source_counter_into_a_pipe_whose_reader_left(tmp_path: Path) -> None:
    # `qmqp-source -c ... | head -c1`: the counter stops, the run goes on to the end.
    out = tmp_path / "r.json"
    read_end, write_end = os.pipe()
    async with qmqp_server() as server:
        with trio.fail_after(RUN_LIMIT):
            proc = await trio.lowlevel.open_process(
                [*SOURCE, "-c", "-m", "3000", "--json", str(out), server.target],
                stdout=write_end, stderr=subprocess.PIPE,
            )
            os.close(write_end)
            assert await trio.to_thread.run_sync(os.read, read_end, 1) == b"1"
            os.close(read_end)  # as head -c1 does
            assert proc.stderr is not None
            err = b""
            while chunk := await proc.stderr.receive_some():
                err += chunk
            await proc.wait()
        assert server.handler_errors == []
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
    assert b"3000 messages: 3000 accepted" in err  # the summary, as without -c
    assert json.loads(out.read_text())["counts"]["accepted"] == 3000


async def test_sink_with_stdout_and_stderr_closed_serves_and_counts(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    out = tmp_path / "sink.json"
    proc = await trio.lowlevel.open_process(
        shell([*SINK, "-cv", "--json", str(out), f"unix:{sock}", "5"], ">&- 2>&-")
    )
    try:
        with trio.fail_after(RUN_LIMIT):
            while not sock.exists():
                assert proc.returncode is None, "the sink exited"
                await trio.sleep(0.02)
            for _ in range(3):
                reply = parse_reply(await exchange(f"unix:{sock}", request()))
                assert reply.status is Status.OK
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0
    assert json.loads(out.read_text())["replies"]["K"] == 3
