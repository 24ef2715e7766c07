"""The qmqp-source command as a user runs it: options, messages, exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import trio

from tests.qmqp_server import qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]


async def source(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process([*SOURCE, *args], capture_stdout=True,
                                      capture_stderr=True, check=False)


def one_line(data: bytes) -> str:
    text = data.decode()
    assert text.count("\n") == 1, f"expected one line, got {text!r}"
    assert "Traceback" not in text
    return text.rstrip("\n")


async def test_bundled_and_attached_options() -> None:
    async with qmqp_server() as server:
        done = await source("-q", "-cv", "-s3", "-m7", "-r", "2", "-l100", server.target)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"".join(b"%d\r" % i for i in range(1, 8)) + b"\n"
    assert done.stderr.decode().splitlines() == ["<< Kok"] * 7
    assert len(server.requests) == 7
    assert {len(r.message) for r in server.requests} == {100}


async def test_long_option_names() -> None:
    async with qmqp_server() as server:
        done = await source("--sessions", "2", "--messages", "4", "--from", "s@x", "--to", "t@x",
                            "--recipients", "3", "--length", "200", "--myhostname", "h.example",
                            "--connect-limit", "2", "--timeout", "5", server.target)
    assert done.returncode == 0, done.stderr
    assert [r.sender for r in server.requests] == [b"s@x"] * 4
    assert server.requests[0].recipients == (b"0t@x", b"1t@x", b"2t@x")
    assert b"@h.example>\n" in server.requests[0].message


async def test_default_addresses_use_myhostname() -> None:
    async with qmqp_server() as server:
        done = await source("-M", "[127.0.0.1]", server.target)
    assert done.returncode == 0, done.stderr
    assert server.requests[0].sender == b"foo@[127.0.0.1]"
    assert server.requests[0].recipients == (b"foo@[127.0.0.1]",)


@pytest.mark.parametrize(
    ("reply", "line"),
    [(b"5:Zbusy,", "qmqp-source: fatal: recoverable error: busy"),
     (b"4:Dbad,", "qmqp-source: fatal: unrecoverable error: bad"),
     (b"0:,", "qmqp-source: fatal: netstring format error: empty reply while receiving server"
      " reply")],
)
async def test_fatal_reply_lines(reply: bytes, line: str) -> None:
    async def handler(stream: trio.SocketStream, state: object) -> None:
        from tests.qmqp_server import read_request
        await read_request(stream)
        await stream.send_all(reply)

    async with qmqp_server(handler) as server:
        done = await source("-s", "2", "-m", "5", server.target)
    assert done.returncode == 1
    assert one_line(done.stderr) == line


async def test_keep_going_exit_status() -> None:
    async with qmqp_server(reply=lambda i: b"Zno" if i % 2 else b"Kok") as server:
        quiet = await source("-q", "-A", "-m", "6", server.target)
        summary = await source("-A", "-m", "6", server.target)
    assert quiet.returncode == summary.returncode == 1
    assert one_line(quiet.stderr) == "qmqp-source: 3 of 6 messages failed"
    assert "3 accepted, 3 tempfail" in summary.stderr.decode()
    assert summary.stderr.decode().endswith("qmqp-source: 3 of 6 messages failed\n")
    assert len(server.requests) == 12


@pytest.mark.parametrize(
    ("args", "wording"),
    [
        (["-s", "0", "h"], "-s must be at least 1, not 0"),
        (["-m", "-3", "h"], "-m must be at least 1, not -3"),
        (["-l", "abc", "h"], "-l must be a whole number, not 'abc'"),
        (["--length=abc", "h"], "--length must be a whole number, not 'abc'"),
        (["-r", "1.5", "h"], "-r must be a whole number, not '1.5'"),
        (["-C", "0", "h"], "-C must be at least 1, not 0"),
        (["-w", "1", "-R", "2", "h"], "-w and -R exclude each other"),
        (["-w", "0", "-R", "2", "h"], "-w and -R exclude each other"),  # given, whatever value
        (["-w", "0", "h"], "-w must be a positive number of seconds, not 0.0"),
        # Checked before the plan: also where this shard's share is empty.
        (["-m", "3", "--shard", "3/4", "-R", "-1", "h"], "-R must be a positive number"),
        (["-w", "nan", "h"], "-w must be a number of seconds, not 'nan'"),
        (["-R", "-1", "h"], "-R must be a positive number"),
        (["-w", "inf", "h"], "-w must be a number of seconds, not 'inf'"),
        (["--timeout", "0", "h"], "--timeout must be a positive"),
        (["-4", "-6", "h"], "-4 and -6 exclude each other"),
        (["-x", "h"], "no such option: -x"),
        ([], "missing target"),
        (["a", "b"], "unexpected extra argument: b"),
        (["-s"], "-s requires an argument"),
        (["--ipv4=yes", "h"], "--ipv4 takes no value"),
    ],
)
async def test_usage_errors(args: list[str], wording: str) -> None:
    done = await source(*args)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("qmqp-source: fatal: ")
    assert wording in line
    assert "usage: qmqp-source" in line


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-M", "123", "h"], "qmqp-source: fatal: bad hostname: 123"),
        (["-M", "[::1]", "h"], "qmqp-source: fatal: bad address literal: [::1]"),
        (["nosuch.invalid:7000"], "qmqp-source: fatal: nosuch.invalid:7000: "),
        (["::1"], "qmqp-source: fatal: ::1: valid hostname or network address required"),
        (["127.0.0.1:70000"], "qmqp-source: fatal: 127.0.0.1:70000: port out of range: 70000"),
        (["unix:/nonexistent/sock"],
         "qmqp-source: fatal: connect to unix:/nonexistent/sock: No such file or directory"),
        (["/run/qmqp.sock"], "qmqp-source: fatal: /run/qmqp.sock: valid hostname or network "
         "address required; for a UNIX-domain socket, write unix:/run/qmqp.sock"),
        (["unix:/" + "x" * 120], "qmqp-source: fatal: unix-domain name too long: /"),
        (["-6", "127.0.0.1:7000"], "qmqp-source: fatal: 127.0.0.1:7000: "),
    ],
)
async def test_bad_targets_and_hostnames(args: list[str], line: str) -> None:
    done = await source(*args)
    assert done.returncode == 1
    assert one_line(done.stderr).startswith(line)


async def test_refused_with_retries_warns_then_fails() -> None:
    async with qmqp_server() as server:
        target = server.target
    done = await source("-C", "3", target)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"qmqp-source: warning: connect to {target}: Connection refused",
        f"qmqp-source: warning: connect to {target}: Connection refused",
        f"qmqp-source: fatal: connect to {target}: Connection refused",
    ]


async def test_help_and_version() -> None:
    done = await source("--help")
    assert done.returncode == 0
    assert b"--sessions" in done.stdout
    done = await source("--version")
    assert done.returncode == 0 and done.stdout.startswith(b"qmqp-source ")


async def test_null_sender_where_postfix_panics() -> None:
    # Postfix 3.7's qmqp-source panics on -f '' (vstring_alloc: bad length 0); a null
    # sender is what bounces use, so ours sends it.
    async with qmqp_server() as server:
        done = await source("-f", "", server.target)
    assert done.returncode == 0, done.stderr
    assert server.requests[0].sender == b""


async def test_non_utf8_addresses_go_out_as_given() -> None:
    raw = b"a\xffb@example.com"
    async with qmqp_server() as server:
        done = await source("-q", "-f", os.fsdecode(raw), "-t", os.fsdecode(raw), server.target)
    assert done.returncode == 0, done.stderr
    assert server.requests[0].sender == raw
    assert server.requests[0].recipients == (raw,)
    assert b"From: <" + raw + b">\n" in server.requests[0].message


@pytest.mark.parametrize(("args", "says"), [
    (["--rate", "5e-324"], "fatal: --rate must be at least one message in 31536000 seconds"),
    (["--shard", "0/99999999999999999999"],
     "fatal: shard 0/99999999999999999999: N must be at most 9223372036854775807"),
    (["-S", "x\nBcc: someone@example.com"], "fatal: -S must be one line, not 'x\\nBcc: "),
    (["--sink-options", "-h"], "fatal: --sink-options: no such option: -h"),
    (["--sink-options", "--help"], "fatal: --sink-options: no such option: --help"),
    (["--sink-options", "--version"],
     "fatal: --sink-options: --version does not go with --embedded-sink"),
])
async def test_refused_before_the_run_in_one_line(args: list[str], says: str) -> None:
    # Each was a traceback, a header of its own, or the sink's help with exit status 0.
    done = await source("-m", "2", "--embedded-sink", *args)
    assert done.returncode == 1 and done.stdout == b""
    assert one_line(done.stderr).startswith(f"qmqp-source: {says}")
