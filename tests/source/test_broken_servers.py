"""Hostile and broken QMQP servers: every failure ends in one line naming its cause.

Each case runs four ways: in-process through the runner (fatal, then -A) to check the
outcome class, the counts and that no socket is left open; and as a user runs it, the
``qmqp-source`` command (fatal, then ``-A -q --json``) to check the one stderr line,
the exit status and the counts in the JSON result. Everything is under trio.fail_after:
a hang is a failure, not a stuck test run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from qmqpsource.protocol import netstring
from qmqpsource.results.outcome import Outcome
from tests.qmqp_server import (
    Handler,
    ServerState,
    close_after_request,
    never_reply,
    qmqp_server,
    read_request,
    reply_with,
)
from tests.source_support import run_in_process

SOURCE = [sys.executable, "-m", "qmqpsource"]
# The JSON result is another part's work; its checks run once it is there.
HAVE_JSON = importlib.util.find_spec("qmqpsource.results.result") is not None
LINGER_ABORT = struct.pack("ii", 1, 0)
# Large enough that the request cannot sit whole in the socket buffers of both ends
# (the server's receive buffer is pinned small where that matters).
BIG = 8 * 1024 * 1024
# Every run of a case, in-process or not, must end well inside this. Generous: a
# command's run is mostly Python's start-up, which a loaded machine (a first nox run
# compiling everything, other sessions' benchmarks) can stretch to seconds; a hang
# still fails, and the cases that wait on purpose use --timeout 0.3.
RUN_LIMIT = 60.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- the servers -------------------------------------------------------------------------


async def reset_at_once(stream: trio.SocketStream, state: ServerState) -> None:
    # SO_LINGER {on, 0}: the close that follows sends RST, not FIN.
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)


async def stop_reading(stream: trio.SocketStream, state: ServerState) -> None:
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    await stream.receive_some(65536)
    await trio.sleep_forever()


def early(reply: bytes | None, then: str) -> Handler:
    """Reply (or not) after the first bytes of the request; then read on or close."""

    async def handler(stream: trio.SocketStream, state: ServerState) -> None:
        await stream.receive_some(4096)
        if reply is not None:
            await stream.send_all(reply)
        if then == "read":
            while await stream.receive_some(65536):
                pass
        # else: close with the request's rest unread, which the kernel answers with RST

    return handler


def slow_reply(raw: bytes) -> Handler:
    """The reply one byte at a time."""

    async def handler(stream: trio.SocketStream, state: ServerState) -> None:
        await read_request(stream)
        for i in range(len(raw)):
            await stream.send_all(raw[i : i + 1])
            await trio.sleep(0.001)

    return handler


Serve = Callable[[], AbstractAsyncContextManager[str]]


def serving(handler: Handler, family: str = "inet", *, behaves: bool = False) -> Serve:
    """The server as a context giving its target. ``behaves``: the test relies on the
    server doing what it says, so an exception in its handler fails the test (the
    client's failure would otherwise be blamed on the client)."""

    @asynccontextmanager
    async def serve() -> AsyncIterator[str]:
        async with qmqp_server(handler, family=family) as server:
            yield server.target
        if behaves:
            assert server.handler_errors == []

    return serve


def nobody_listens(family: str) -> Serve:
    """A bound socket that never listens: every connect is refused, and no other test
    can take the port or path meanwhile."""

    @asynccontextmanager
    async def serve() -> AsyncIterator[str]:
        with tempfile.TemporaryDirectory(prefix="qmqp-test-") as tmp:
            if family == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                path = os.path.join(tmp, "refused.sock")
                sock.bind(path)
                target = f"unix:{path}"
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                target = f"127.0.0.1:{sock.getsockname()[1]}"
            with sock:
                yield target

    return serve


# -- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    serve: Serve
    outcome: Outcome
    # Acceptable cause lines (after "qmqp-source: fatal: "); more than one only where the
    # kernel's timing decides which step notices (the same class either way). TARGET
    # stands for the server's address.
    causes: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    # Lines "qmqp-source: warning: ..." that may come before the fatal one, per message.
    warnings: int = 0

    def causes_at(self, target: str) -> tuple[str, ...]:
        return tuple(cause.replace("TARGET", target) for cause in self.causes)


RECEIVING = "while receiving server reply"
LOST_RECEIVING = f"lost connection {RECEIVING}"
LOST_SENDING = "lost connection while sending message"

CASES = [
    Case("not-a-netstring", serving(reply_with(b"HTTP/1.0 400 Bad Request\r\n\r\n")),
         Outcome.PROTOCOL_ERROR, (f"netstring format error: bad length {RECEIVING}",)),
    Case("no-comma", serving(reply_with(b"3:Kok;")),
         Outcome.PROTOCOL_ERROR, (f"netstring format error: missing ',' {RECEIVING}",)),
    Case("leading-zero", serving(reply_with(b"03:Kok,")),
         Outcome.PROTOCOL_ERROR,
         (f"netstring format error: leading zero in length {RECEIVING}",)),
    Case("over-size-limit", serving(reply_with(b"10241:K" + b"x" * 10240 + b",")),
         Outcome.PROTOCOL_ERROR, (f"netstring size exceeds limit {RECEIVING}",)),
    Case("huge-length", serving(reply_with(b"99999999999999999999999:K")),
         Outcome.PROTOCOL_ERROR, (f"netstring size exceeds limit {RECEIVING}",)),
    Case("cut-in-length", serving(reply_with(b"12")),
         Outcome.LOST_CONNECTION, (LOST_RECEIVING,)),
    Case("cut-in-payload", serving(reply_with(b"10:Kok")),
         Outcome.LOST_CONNECTION, (LOST_RECEIVING,)),
    Case("cut-before-comma", serving(reply_with(b"3:Kok")),
         Outcome.LOST_CONNECTION, (LOST_RECEIVING,)),
    Case("eof-before-reply", serving(close_after_request),
         Outcome.LOST_CONNECTION, (LOST_RECEIVING,)),
    Case("eof-before-reply-unix", serving(close_after_request, "unix"),
         Outcome.LOST_CONNECTION, (LOST_RECEIVING,)),
    Case("empty-reply", serving(reply_with(b"0:,")),
         Outcome.PROTOCOL_ERROR, (f"netstring format error: empty reply {RECEIVING}",)),
    Case("unknown-status", serving(reply_with(b"6:Xhello,")),
         Outcome.PROTOCOL_ERROR, ("unknown error: hello",)),
    Case("control-bytes-in-text", serving(reply_with(b"7:Zno\x1b[2J,")),
         Outcome.TEMPFAIL, ("recoverable error: no\\x1b[2J",)),
    Case("no-reply", serving(never_reply), Outcome.TIMEOUT,
         (f"timeout {RECEIVING}",), {"timeout": 0.3}),
    # Which step sees the RST is the kernel's timing: the connect's own check (SO_ERROR),
    # the send or the read. All three are the RESET class.
    Case("reset-after-accept", serving(reset_at_once), Outcome.RESET,
         ("connect to TARGET: Connection reset by peer", LOST_SENDING, LOST_RECEIVING)),
    Case("refused", nobody_listens("inet"), Outcome.REFUSED,
         ("connect to TARGET: Connection refused",)),
    Case("refused-with-C", nobody_listens("inet"), Outcome.REFUSED,
         ("connect to TARGET: Connection refused",), {"connect_attempts": 3}, warnings=2),
    Case("refused-unix", nobody_listens("unix"), Outcome.REFUSED,
         ("connect to TARGET: Connection refused",)),
    Case("stops-reading", serving(stop_reading), Outcome.TIMEOUT,
         ("timeout while sending message",), {"length": BIG, "timeout": 0.3}),
    Case("early-D-then-close", serving(early(netstring(b"Dmessage too big"), "close")),
         Outcome.PERMFAIL, ("unrecoverable error: message too big",), {"length": BIG}),
    Case("early-Z-then-read", serving(early(b"5:Zbusy,", "read")),
         Outcome.TEMPFAIL, ("recoverable error: busy",), {"length": BIG}),
    Case("early-close-no-reply", serving(early(None, "close")), Outcome.RESET,
         (LOST_SENDING, LOST_RECEIVING), {"length": BIG}),
]
IDS = [case.name for case in CASES]

_FLAGS = {"length": "-l", "timeout": "--timeout", "connect_attempts": "-C"}


def cli_args(options: dict[str, Any]) -> list[str]:
    return [arg for key, value in options.items() for arg in (_FLAGS[key], str(value))]




async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(RUN_LIMIT):
        return await trio.run_process(
            [*SOURCE, *args], capture_stdout=True, capture_stderr=True, check=False
        )


def stderr_lines(done: subprocess.CompletedProcess[bytes]) -> tuple[list[str], list[str]]:
    """(warning lines, every other line); never a traceback."""
    text = done.stderr.decode()
    assert "Traceback" not in text, text
    lines = text.splitlines()
    warnings = [line for line in lines if line.startswith("qmqp-source: warning: ")]
    return warnings, [line for line in lines if line not in warnings]


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_fatal_in_process(case: Case) -> None:
    before = open_fds()
    async with case.serve() as target:
        result, out, err = await run_in_process(target, sessions=2, messages=6, **case.options)
    assert result.failure in case.causes_at(target)
    assert result.exit_status == 1
    counts = result.stats.counts
    assert set(counts) == {case.outcome}, counts
    assert 1 <= counts[case.outcome] == result.stats.failed
    assert out == ""
    assert err.count("warning: ") == err.count("\n") <= case.warnings * 6
    assert open_fds() == before


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_keep_going_in_process(case: Case) -> None:
    before = open_fds()
    async with case.serve() as target:
        result, _, err = await run_in_process(
            target, sessions=3, messages=6, keep_going=True, **case.options
        )
    assert result.failure is None
    assert result.exit_status == 1
    assert result.stats.counts == {case.outcome: 6}
    assert result.stats.failed == 6 == result.stats.attempted
    assert err.count("warning: ") == err.count("\n") == case.warnings * 6
    assert open_fds() == before


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_cli(case: Case, tmp_path: Path) -> None:
    """Fatal and -A at once (each run is mostly Python start-up: two share the wait)."""
    json_args = ["--json", str(tmp_path / "result.json")] if HAVE_JSON else []
    runs: dict[str, subprocess.CompletedProcess[bytes]] = {}

    async def run(name: str, args: list[str]) -> None:
        runs[name] = await run_cli(*cli_args(case.options), *args)

    async with case.serve() as target, trio.open_nursery() as nursery:
        nursery.start_soon(run, "fatal", ["-s", "2", "-m", "6", target])
        nursery.start_soon(run, "keep-going", ["-A", "-q", *json_args, "-s", "3", "-m", "6",
                                               target])

    done = runs["fatal"]
    assert done.returncode == 1
    warnings, lines = stderr_lines(done)
    assert len(lines) == 1, lines
    assert lines[0].removeprefix("qmqp-source: fatal: ") in case.causes_at(target), lines[0]
    assert len(warnings) <= case.warnings * 6
    assert done.stdout == b""

    done = runs["keep-going"]
    assert done.returncode == 1
    warnings, lines = stderr_lines(done)
    assert lines == ["qmqp-source: 6 of 6 messages failed"]
    assert len(warnings) == case.warnings * 6
    if HAVE_JSON:
        value = json.loads((tmp_path / "result.json").read_text())
        counts = value["counts"]
        assert counts["attempted"] == 6 == counts["error"] + counts["tempfail"] + (
            counts["permfail"]
        )
        outcomes = {**value["errors"], **{k: counts[k] for k in
                                          ("accepted", "tempfail", "permfail")}}
        assert {k: n for k, n in outcomes.items() if n} == {case.outcome.value: 6}


# Servers that misbehave but still answer: the answer counts.
ANSWERED = [
    pytest.param(serving(early(b"3:Kok,", "read"), behaves=True), {"length": BIG},
                 id="early-K-then-read"),
    pytest.param(serving(early(b"3:Kok,", "close"), behaves=True), {"length": BIG},
                 id="early-K-then-close"),
    pytest.param(serving(early(b"3:Kok,", "close"), behaves=True), {},
                 id="early-K-small-message"),
    pytest.param(serving(slow_reply(b"3:Kok,"), behaves=True), {}, id="reply-byte-by-byte"),
    pytest.param(serving(reply_with(b"10240:K" + b"x" * 10239 + b","), behaves=True), {},
                 id="reply-at-size-limit"),
    pytest.param(serving(reply_with(b"3:Kok,trailing garbage"), behaves=True), {},
                 id="bytes-after-reply"),
]


@pytest.mark.parametrize(("serve", "options"), ANSWERED)
async def test_answered_in_process(serve: Serve, options: dict[str, Any]) -> None:
    before = open_fds()
    async with serve() as target:
        result, _, err = await run_in_process(target, sessions=3, messages=6, **options)
    assert result.failure is None, result.failure
    assert result.exit_status == 0
    assert result.stats.counts == {Outcome.ACCEPTED: 6}
    assert err == ""
    assert open_fds() == before


@pytest.mark.parametrize(("serve", "options"), ANSWERED)
async def test_answered_cli(serve: Serve, options: dict[str, Any]) -> None:
    async with serve() as target:
        done = await run_cli(*cli_args(options), "-q", "-s", "2", "-m", "4", target)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done) == ([], [])


# A refused loopback connect fails without waiting, so nothing in a session's loop used
# to yield: the first failure's cancel went unseen and a run of -m N went on through all
# N refusals (and under -A starved every other task, progress display included).


async def test_first_refusal_ends_a_long_run() -> None:
    async with nobody_listens("inet")() as target:
        result, _, _ = await run_in_process(target, sessions=2, messages=20_000)
    assert result.failure == f"connect to {target}: Connection refused"
    assert result.stats.attempted <= 4


async def test_refusals_under_keep_going_let_other_tasks_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with nobody_listens("unix")() as target, trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        result, _, _ = await run_in_process(target, messages=2000, keep_going=True)
        nursery.cancel_scope.cancel()
    assert result.stats.counts == {Outcome.REFUSED: 2000}
    # A session checkpoints after each refusal, and trio runs the ticker in every round
    # between them: without that, the whole storm would be one round, one tick.
    assert ticks >= 2000 // 2
