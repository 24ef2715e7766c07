"""Closed, failing and abandoned stdout and stderr never change a run (issue 14, items 3, 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from qmqpsource.cli.loglines import LineWriter
from qmqpsource.protocol import Status
from tests.qmqp_server import qmqp_server
from tests.sink_support import exchange, parse_reply, request

SOURCE = [sys.executable, "-m", "qmqpsource"]
SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]
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


async def test_sink_whose_stderr_nobody_reads_keeps_serving_and_stops(tmp_path: Path) -> None:
    # -v into a pipe that is never read: the pipe fills after 64 KiB of log lines, and a
    # write that waits for room used to freeze the sink, SIGTERM included.
    sock = tmp_path / "s.sock"
    out = tmp_path / "sink.json"
    read_end, write_end = os.pipe()
    proc = await trio.lowlevel.open_process(
        [*SINK, "-v", "--json", str(out), f"unix:{sock}", "5"],
        stdout=subprocess.DEVNULL, stderr=write_end,
    )
    os.close(write_end)
    requests = 2000  # about 250 KiB of log, and more than the sink's queue of lines
    try:
        with trio.fail_after(RUN_LIMIT):
            while not sock.exists():
                assert proc.returncode is None, "the sink exited"
                await trio.sleep(0.02)
            for _ in range(requests):
                reply = parse_reply(await exchange(f"unix:{sock}", request()))
                assert reply.status is Status.OK
            proc.send_signal(signal.SIGTERM)
            # Reading only now: what the sink could not write was dropped, not waited for.
            err = b""
            while chunk := await trio.to_thread.run_sync(os.read, read_end, 65536):
                err += chunk
            await proc.wait()
    finally:
        os.close(read_end)
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0
    value = json.loads(out.read_text())
    assert value["replies"]["K"] == requests
    lines = err.decode().splitlines()
    assert value["log_dropped"] > 0
    assert lines[-1] == f"qmqp-sink: {value['log_dropped']} log lines dropped: stderr was not " \
                        "read fast enough"
    assert lines[-3].startswith(f"qmqp-sink: {requests} connections, {requests} messages")
    # Every line was either written whole or counted as dropped.
    served = [line for line in lines if ": K2.0.0 Ok: queued as " in line]
    assert len(served) + value["log_dropped"] == requests


def test_line_writer_counts_what_a_failing_descriptor_drops() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails (EPIPE)
    try:
        lines = LineWriter(write_end)
        for n in range(5):
            lines.write(f"line {n}\n")
        lines.close(RUN_LIMIT)
        lines.write("after the close\n")
    finally:
        os.close(write_end)
    assert lines.dropped == 6


# Stands in for a slow import: it says when the command's own imports reach typer, then
# takes its time, so that the test's Ctrl-C lands while Python is still importing.
SLOW_IMPORT = """
import sys, time
class Slow:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "typer":
            sys.meta_path.remove(Slow)
            sys.stdout.write("importing\\n")
            sys.stdout.flush()
            time.sleep(RUN_LIMIT)
        return None
sys.meta_path.insert(0, Slow)
sys.argv[1:] = ["--help"]
from qmqpsource.cli.startup import COMMAND
COMMAND()
"""


def _signal_state(pid: int) -> str:
    """The lines of /proc/PID/status on signals and state (Linux), for a failure message."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        return f"no /proc/{pid}/status ({exc.strerror})"
    keys = ("State", "Threads", "SigQ", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return "; ".join(line for line in status.splitlines() if line.startswith(keys))


@pytest.mark.parametrize(
    ("command", "prog"),
    [("source", "qmqp-source"), ("sink", "qmqp-sink"), ("report", "qmqp-report")],
)
async def test_ctrl_c_while_importing_is_one_line_and_130(command: str, prog: str) -> None:
    # Each console script's entry point, as pyproject.toml names it.
    code = SLOW_IMPORT.replace("COMMAND", command).replace("RUN_LIMIT", str(RUN_LIMIT))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with trio.move_on_after(RUN_LIMIT) as waited:
            said = b""
            while not said.endswith(b"\n"):
                said += await proc.stdout.receive_some()
            assert said == b"importing\n"
            proc.send_signal(signal.SIGINT)
            err = b""
            while chunk := await proc.stderr.receive_some():
                err += chunk
            await proc.wait()
        # Seen once in CI (3.13, the sink), not reproduced since: the child's signal
        # state says whether SIGINT was pending, blocked or not caught.
        assert not waited.cancelled_caught, f"no exit after SIGINT: {_signal_state(proc.pid)}"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err
    assert err == f"{prog}: interrupted\n".encode()


async def test_report_whose_summary_cannot_be_written_fails(tmp_path: Path) -> None:
    # qmqp-report's summary is its product: lost to a full disk, it is no success (it
    # was exit 0); closed on purpose, or beside --json - on stderr, it is the user's.
    from tests.cli.test_report import run_a, write

    report = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]
    a = str(write(tmp_path / "a.json", run_a()))
    full = await run(shell([*report, a], ">/dev/full"))
    assert (full.returncode, full.stderr) == (
        1, b"qmqp-report: fatal: stdout: No space left on device: the summary was not written\n")
    closed = await run(shell([*report, a], ">&-"))
    assert (closed.returncode, closed.stderr) == (0, b"")
    beside = await run(shell([*report, "--json", "-", a], "2>/dev/full"))
    assert beside.returncode == 0 and json.loads(beside.stdout)["counts"]["accepted"] == 7
