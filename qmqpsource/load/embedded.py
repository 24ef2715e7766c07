"""A qmqp-sink in a child process, for ``--embedded-sink`` runs: zero-setup loads.

    async with embedded_sink(["--tempfail", "0.1"]) as sink:
        ... load against sink.target ...
    counts = sink.result          # the sink's --json summary, as a dict

The child listens on a free loopback port and tells us where over a socketpair
(--control-fd); readiness is awaited with a deadline. Leaving the block stops
the child with SIGTERM, waits a bounded time, then kills it; it is always
reaped, also when the block is cancelled or Ctrl-C interrupts it. The same
socketpair stops the child if we die without a word: it sees end-of-file.
Its summary comes back on its stdout (--json -) and its log goes to an unnamed
temporary file: nothing is left on disk, whoever dies first.

The sink runs in its own process so that the load generator and the server
use separate cores, and the server's numbers come from the real program.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from qmqpsource.errors import RunError

__all__ = ["EMBEDDED_TARGET", "EmbeddedSink", "EmbeddedSinkError", "embedded_sink"]

# What a load's config says as its target when an embedded sink is the target.
EMBEDDED_TARGET = "embedded-sink"

# Python, trio and typer start in about 0.2 s; a loaded machine may take much longer.
READY_TIMEOUT = 20.0
# The sink writes its summary on SIGTERM and exits at once; past this, it is killed.
STOP_TIMEOUT = 10.0
_LOG_TAIL = 2000
_KILL_WAIT = 5.0
# The summary is under a KiB; more than this on the sink's stdout is not one.
_SUMMARY_LIMIT = 1 << 20


class EmbeddedSinkError(RunError):
    """The embedded sink did not start, or ended without its summary; ``str()`` says why."""


@dataclass
class EmbeddedSink:
    """A running embedded sink: where to send, and once it stopped, what it counted."""

    target: str  # "127.0.0.1:PORT", for qmqp-source
    listen: list[str]  # every address the sink listens on
    process: trio.Process
    result: dict[str, Any] | None = None  # the --json summary, after the block
    returncode: int | None = None
    log: str = ""  # the tail of what the sink wrote on stderr, after the block
    exited_early: bool = False  # it had ended by itself before the block did


def _command(python: str, control_fd: int, extra: Sequence[str],
             host: str, backlog: int) -> list[str]:
    return [
        python, "-m", "qmqpsource.cli.sink",
        "--control-fd", str(control_fd),
        "--json", "-",
        *extra,
        f"[{host}]:0" if ":" in host else f"{host}:0", str(backlog),
    ]


async def _read_ready(sock: socket.socket) -> str:
    """The child's first line: its listening addresses. EOF first means it failed."""
    data = b""
    while b"\n" not in data:
        await trio.lowlevel.wait_readable(sock.fileno())
        try:
            chunk = sock.recv(4096)
        except BlockingIOError:
            continue
        if not chunk:
            raise EmbeddedSinkError("the sink exited before it was ready")
        data += chunk
    return data.split(b"\n", 1)[0].decode()


async def _stop(process: trio.Process, grace: float) -> None:
    """SIGTERM, a bounded wait, then SIGKILL; the child is reaped in every case."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await process.wait()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        # SIGKILL cannot be caught: the wait is short, but still bounded.
        with trio.move_on_after(_KILL_WAIT):
            await process.wait()


@contextlib.asynccontextmanager
async def embedded_sink(
    extra_args: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    backlog: int = 1024,
    ready_timeout: float = READY_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
    python: str = sys.executable,
) -> AsyncIterator[EmbeddedSink]:
    """Run qmqp-sink (with ``extra_args``) in a child process for the length of the block.

    No nursery around the block on purpose: one would wrap the caller's own
    exceptions (Ctrl-C's KeyboardInterrupt too) in ExceptionGroups. The child's
    lifetime is bound to the block all the same, by the shielded stop below.
    """
    control, child_control = socket.socketpair()
    with control, tempfile.TemporaryFile() as log:
        control.setblocking(False)
        try:
            process = await _spawn(
                _command(python, child_control.fileno(), extra_args, host, backlog),
                child_control.fileno(), log)
        finally:
            child_control.close()  # the child's end lives in the child only: EOF if it dies
        assert process.stdout is not None
        try:
            listening: list[str] = []
            try:
                with trio.move_on_after(ready_timeout):
                    listening = (await _read_ready(control)).split()
                if not listening:
                    raise EmbeddedSinkError(f"the sink was not ready after {ready_timeout} s")
            except EmbeddedSinkError as exc:
                with trio.CancelScope(shield=True):
                    await _stop(process, stop_timeout)
                raise EmbeddedSinkError(f"{exc}: {_tail(log)}") from None
            sink = EmbeddedSink(target=listening[0], listen=listening, process=process)
            yield sink
        finally:
            early = _ended_by_itself(control, process)  # asked before our SIGTERM
            with trio.CancelScope(shield=True):
                await _stop(process, stop_timeout)
                summary = await _read_summary(process.stdout)
                await process.stdout.aclose()
            if listening:
                # Also when the block failed or was interrupted: the counts so far.
                sink.returncode = process.returncode
                sink.exited_early = early
                sink.log = _tail(log)
                sink.result = summary
        if sink.result is None:
            raise EmbeddedSinkError(
                f"the sink ended (status {process.returncode}) without its summary: "
                f"{sink.log}"
            )


async def _spawn(command: list[str], control_fd: int, log: Any) -> trio.Process:
    return await trio.lowlevel.open_process(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        pass_fds=(control_fd,),
        # Out of the terminal's process group: Ctrl-C is the source's to handle (it
        # finishes in-flight messages, then stops the sink).
        start_new_session=True,
    )


def _ended_by_itself(control: socket.socket, process: trio.Process) -> bool:
    """Whether the sink ended, or said it is ending (-x, a signal of someone else's),
    before we stopped it: its "ending" comes before its listeners close."""
    if process.poll() is not None:
        return True
    try:
        said = control.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return not said or b"ending\n" in said


def _tail(log: Any) -> str:
    log.seek(0)
    text: str = log.read().decode(errors="replace")
    return text[-_LOG_TAIL:].strip()


async def _read_summary(stdout: trio.abc.ReceiveStream) -> dict[str, Any] | None:
    """The summary the sink wrote on its stdout before it exited (it has, by now)."""
    data = b""
    with trio.move_on_after(_KILL_WAIT):
        while len(data) <= _SUMMARY_LIMIT:
            chunk = await stdout.receive_some()
            if not chunk:
                break
            data += chunk
    try:
        result = json.loads(data)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None
