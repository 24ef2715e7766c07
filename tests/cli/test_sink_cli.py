"""The qmqp-sink command: Postfix-style arguments and errors, -x, -c, -v, --json, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import trio

from qmqpsource.cli.common import UsageFailure
from qmqpsource.cli.sink import main, parse_delay, parse_rate
from qmqpsource.protocol import Status
from tests.sink_support import connect, exchange, parse_reply, reaped, request, stopped

SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "missing endpoint"),
        (["127.0.0.1:0"], "missing backlog"),
        (["127.0.0.1:0", "0"], "backlog must be at least 1, not 0"),
        (["127.0.0.1:0", "many"], "backlog must be a whole number, not 'many'"),
        (["127.0.0.1", "5"], "missing port"),
        (["127.0.0.1:99999", "5"], "bad port number"),
        (["-4", "-6", "127.0.0.1:0", "5"], "-4 and -6 exclude each other"),
        (["--tempfail", "1.5", "127.0.0.1:0", "5"], "--tempfail must be a rate"),
        (["--drop", "-0.1", "127.0.0.1:0", "5"], "--drop must be a rate"),
        (["--tempfail", "0.6", "--reject", "0.6", "127.0.0.1:0", "5"], "add up to more"),
        (["--delay", "2-1", "127.0.0.1:0", "5"], "--delay wants"),
        (["--delay", "soon", "127.0.0.1:0", "5"], "--delay wants"),
        (["--timeout", "0", "127.0.0.1:0", "5"], "--timeout must be a positive"),
        (["-x", "-1", "127.0.0.1:0", "5"], "-x must be a positive"),
        (["--max-size", "0", "127.0.0.1:0", "5"], "--max-size must be at least 1, not 0"),
        (["--bogus", "127.0.0.1:0", "5"], "no such option: --bogus; usage: "),
        (["--dealy", "1", "127.0.0.1:0", "5"], "no such option: --dealy (did you mean --delay?)"),
        (["-x", "soon", "127.0.0.1:0", "5"], "-x must be a number of seconds, not 'soon'"),
        (["--tempfail", "x", "127.0.0.1:0", "5"], "--tempfail must be a number from 0 to 1"),
        (["--seed", "1.5", "127.0.0.1:0", "5"], "--seed must be a whole number, not '1.5'"),
        (["127.0.0.1:0", "5", "extra"], "unexpected extra argument: extra"),
        # Absurd values (issue 14, items 12 and 14): the caps qmqp-source uses.
        (["127.0.0.1:0", "99999999999999999999999"],
         "backlog must be at most 9223372036854775807"),
        (["127.0.0.1:0", "\u00b2"], "backlog must be a whole number, not '\u00b2'"),
        (["127.0.0.1:\u00b2", "5"], "bad port number"),
        (["--timeout", "1e300", "127.0.0.1:0", "5"],
         "--timeout must be at most 31536000 seconds, not 1e+300"),
        (["-x", "1e300", "127.0.0.1:0", "5"], "-x must be at most 31536000 seconds"),
        (["--delay", "1e300", "127.0.0.1:0", "5"], "--delay must be at most 31536000 seconds"),
        (["--delay", "0-1e300", "127.0.0.1:0", "5"], "--delay must be at most"),
        (["--max-size", "99999999999999999999999", "127.0.0.1:0", "5"],
         "--max-size must be at most 9223372036854775807"),
        (["--control-fd", "-1", "127.0.0.1:0", "5"], "--control-fd must be a descriptor number"),
        (["--control-fd", "1099511627776", "127.0.0.1:0", "5"],
         "--control-fd 1099511627776: no such descriptor number"),
        (["--maildir", "", "127.0.0.1:0", "5"], "--maildir must be a path, not ''"),
    ],
)
def test_usage_errors_are_one_fatal_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("qmqp-sink: fatal: ")
    assert says in err
    assert "Traceback" not in err


def test_control_fd_that_is_not_open_is_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    fd = 90
    while True:  # the first closed descriptor from 90 up
        try:
            os.fstat(fd)
        except OSError:
            break
        fd += 1
    with pytest.raises(SystemExit) as exit_info:
        main(["--control-fd", str(fd), "127.0.0.1:0", "5"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"qmqp-sink: fatal: --control-fd {fd}: Bad file descriptor\n"


def test_control_fd_that_takes_no_line_is_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    # Before, a read-only descriptor was ignored: no parent told, no end-of-file to stop
    # at, a sink serving for ever.
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["--control-fd", str(read_end), "127.0.0.1:0", "5"])
    finally:
        os.close(write_end)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"qmqp-sink: fatal: --control-fd {read_end}: Bad file descriptor\n")


def test_control_fd_hears_ending_before_the_listeners_close() -> None:
    # What lets --embedded-sink tell a sink that went (-x) from a server that refuses.
    ours, theirs = socket.socketpair()
    with ours:
        try:
            done = subprocess.run(
                [*SINK, "-x", "0.2", "--control-fd", str(theirs.fileno()), "127.0.0.1:0", "5"],
                pass_fds=[theirs.fileno()], capture_output=True, timeout=60)
        finally:
            theirs.close()
        said = b""
        while chunk := ours.recv(4096):
            said += chunk
    assert done.returncode == 0
    addresses, ending, rest = said.split(b"\n")
    assert addresses.startswith(b"127.0.0.1:") and (ending, rest) == (b"ending", b"")


def test_backlog_past_what_listen_takes_is_capped(tmp_path: Path) -> None:
    done = subprocess.run([*SINK, "-x", "0.1", "127.0.0.1:0", str(2**63 - 1)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr  # the kernel caps it at somaxconn anyway
    assert "Traceback" not in done.stderr


def test_bind_failure_is_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main([f"127.0.0.1:{port}", "5"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == f"qmqp-sink: fatal: bind 127.0.0.1:{port}: Address already in use\n"


def test_bad_maildir_is_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["--maildir", str(blocker / "md"), "127.0.0.1:0", "5"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith(f"qmqp-sink: fatal: maildir {blocker}/md: ")


def test_parse_delay_and_rate() -> None:
    assert parse_delay("0.5") == (0.5, 0.5)
    assert parse_delay("0.1-0.3") == (0.1, 0.3)
    assert parse_delay("0") == (0.0, 0.0)
    for bad in ("", "-1", "1-", "a-b", "nan", "inf", "0.3-0.1"):
        with pytest.raises(UsageFailure):
            parse_delay(bad)
    assert parse_rate("--drop", 0.25) == 0.25
    with pytest.raises(UsageFailure):
        parse_rate("--drop", 1.01)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("qmqp-sink ")


def test_x_ends_with_summary_and_json(tmp_path: Path) -> None:
    out = tmp_path / "sink.json"
    started = time.monotonic()
    done = subprocess.run(
        [*SINK, "-x", "0.3", "--json", str(out), "127.0.0.1:0", "5"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("qmqp-sink: 0 connections, 0 messages")
    result = json.loads(out.read_text())
    assert result["connections"] == 0
    assert result["replies"] == {"K": 0, "Z": 0, "D": 0}
    assert result["listen"][0].startswith("127.0.0.1:")
    assert not list(tmp_path.glob("*.tmp*"))  # written whole, then renamed


async def _wait_for_socket(path: Path, proc: trio.Process) -> None:
    """Until the sink accepts on path: a probe connects and closes without a request."""
    with trio.fail_after(20):
        while True:
            assert proc.returncode is None, "the sink exited early"
            try:
                probe = await connect(f"unix:{path}")
            except OSError:
                await trio.sleep(0.02)
                continue
            probe.close()
            return


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_with_counter_verbose_and_json(
    tmp_path: Path, stop: signal.Signals
) -> None:
    sock_path = tmp_path / "s.sock"
    out_path = tmp_path / "sink.json"
    proc = await trio.lowlevel.open_process(
        [*SINK, "-cv", "--json", str(out_path), f"unix:{sock_path}", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    async with reaped(proc), trio.open_nursery() as nursery:
        outputs: dict[str, bytes] = {}

        async def drain(name: str, stream: trio.abc.ReceiveStream) -> None:
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
            outputs[name] = data

        nursery.start_soon(drain, "out", proc.stdout)
        nursery.start_soon(drain, "err", proc.stderr)
        await _wait_for_socket(sock_path, proc)
        for _ in range(3):
            reply = parse_reply(await exchange(f"unix:{sock_path}", request()))
            assert reply.status is Status.OK
        assert await stopped(proc, stop, limit=10) == 0
    assert outputs["out"] == b"1\r2\r3\r\n"  # Postfix's running counter
    err = outputs["err"].decode().splitlines()
    assert err[0] == f"qmqp-sink: listening on unix:{sock_path}"
    conn_lines = [line for line in err if ": K2.0.0 Ok: queued as " in line]
    assert len(conn_lines) == 3
    assert any("closed without a request" in line for line in err)  # the readiness probe
    assert err[-2].startswith("qmqp-sink: 4 connections, 3 messages, 3 recipients")
    assert json.loads(out_path.read_text())["replies"]["K"] == 3
    assert not sock_path.exists()


def test_console_script_entry_point() -> None:
    # pyproject's [project.scripts] qmqp-sink starts qmqpsource.cli.sink's main().
    done = subprocess.run(
        [*SINK, "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "backlog" in done.stdout and "--maildir" in done.stdout
    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert scripts["project"]["scripts"]["qmqp-sink"] == "qmqpsource.cli.startup:sink"


def test_counter_and_json_share_stdout_in_order() -> None:
    done = subprocess.run([*SINK, "-c", "-x", "0.2", "--json", "-", "127.0.0.1:0", "5"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("\n{")  # the counter's end of line, then the summary
    assert json.loads(done.stdout)["connections"] == 0
