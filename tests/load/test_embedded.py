"""embedded_sink(): a qmqp-sink child process, ready-checked, stopped and always reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from qmqpsource.load.embedded import EmbeddedSinkError, embedded_sink
from qmqpsource.protocol import Status
from tests.sink_support import (
    connect,
    exchange,
    ipv6_available,
    no_fd_leak,
    parse_reply,
    request,
    send_all,
)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_fd_leak():
        yield


def _gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie nobody reaps)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_load_then_counts() -> None:
    async with embedded_sink(["--tempfail", "0"]) as sink:
        assert sink.target.startswith("127.0.0.1:")
        with trio.fail_after(60):
            done = await trio.run_process(
                [sys.executable, "-m", "qmqpsource", "-s", "4", "-m", "100", sink.target],
                capture_stderr=True, check=False,
            )
        assert done.returncode == 0, done.stderr
        pid = sink.process.pid
    assert sink.returncode == 0
    assert sink.result is not None
    assert sink.result["messages"] == 100
    assert sink.result["replies"]["K"] == 100
    assert sink.result["listen"] == [sink.target]
    assert "100 messages" in sink.log
    assert _gone(pid)


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 loopback [::1] cannot be bound here")
def test_a_sink_that_ends_during_the_load_is_named_for_its_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: only "connect to 127.0.0.1:PORT: Connection refused", as if a server
    # refused; with -A, refusals counted and the sink line saying "(agrees)".
    # -x ends the sink as a crash would; run_load refuses it, so its check is let pass.
    from qmqpsource import EMBEDDED_TARGET, SourceConfig, run_load_sync
    from qmqpsource.load import run

    monkeypatch.setattr(run, "check_sink_options", lambda options: None)

    for keep_going in (False, True):
        config = SourceConfig(target=EMBEDDED_TARGET, duration=1.0, rate=50.0,
                              messages=10**6, keep_going=keep_going)
        value = run_load_sync(config, embedded_sink=["-x", "0.3"])
        assert value.status == "failed"
        assert value.failure is not None
        assert value.failure.startswith("the embedded sink exited during the run (status 0)")
        assert value.counts.accepted >= 1 and value.counts.error >= 1


async def test_ipv6_host() -> None:
    async with embedded_sink(host="::1") as sink:
        assert sink.target.startswith("[::1]:")
        assert parse_reply(await exchange(sink.target, request())).status is Status.OK


async def test_extra_args_reach_the_sink() -> None:
    async with embedded_sink(["--reject", "1"]) as sink:
        reply = parse_reply(await exchange(sink.target, request()))
    assert reply.status is Status.PERMFAIL
    assert sink.result is not None and sink.result["replies"]["D"] == 1


async def test_cancelled_block_still_reaps_the_child() -> None:
    started = time.monotonic()
    with trio.move_on_after(1.0) as scope:
        async with embedded_sink() as sink:
            pid = sink.process.pid
            await trio.sleep(60)
    assert scope.cancelled_caught
    assert sink.process.returncode == 0  # stopped by SIGTERM, summary written
    assert _gone(pid)
    assert time.monotonic() - started < 15


async def test_exception_in_block_propagates_unwrapped_with_counts() -> None:
    with pytest.raises(ZeroDivisionError):
        async with embedded_sink() as sink:
            pid = sink.process.pid
            await exchange(sink.target, request())
            _ = 1 / 0
    assert _gone(pid)
    assert sink.result is not None and sink.result["messages"] == 1  # the counts so far


async def test_bad_arguments_fail_with_the_sinks_words() -> None:
    with pytest.raises(EmbeddedSinkError, match="qmqp-sink: fatal: --tempfail must be a rate"):
        async with embedded_sink(["--tempfail", "5"]):
            pytest.fail("the block must not run")


def _fake_sink(tmp_path: Path, body: str) -> str:
    """A stand-in for the Python that runs the sink: same arguments, scripted behaviour."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


STUBBORN = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = int(sys.argv[sys.argv.index("--control-fd") + 1])
    os.write(fd, b"127.0.0.1:9\\n")
    time.sleep(60)
"""

SILENT = """
    import time
    time.sleep(60)
"""


async def test_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(EmbeddedSinkError, match="without its summary"):
        async with embedded_sink(python=_fake_sink(tmp_path, STUBBORN), stop_timeout=0.3) as sink:
            pid = sink.process.pid
    assert sink.process.returncode == -signal.SIGKILL
    assert _gone(pid)
    assert time.monotonic() - started < 10


async def test_child_never_ready_is_stopped(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(EmbeddedSinkError, match=r"not ready after 0\.3 s"):
        async with embedded_sink(python=_fake_sink(tmp_path, SILENT), ready_timeout=0.3):
            pytest.fail("the block must not run")
    assert time.monotonic() - started < 10


PARENT = """
    import trio
    from qmqpsource.load.embedded import embedded_sink

    async def main():
        async with embedded_sink() as sink:
            print(sink.process.pid, flush=True)
            await trio.sleep(60)

    trio.run(main)
"""


def test_sink_stops_when_its_parent_dies(tmp_path: Path) -> None:
    # The control socketpair reports end-of-file once the parent is gone, even by SIGKILL.
    # The killed parent cannot remove its temporary folder: make it one of ours.
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_memory_bounded_under_many_large_partial_requests() -> None:
    # 300 clients each announce 1 MB and send 900 kB of it, then sit there. At most
    # --max-connections of them are read at once; the rest wait in the listen queue.
    size, held = 1_000_000, 300
    async with embedded_sink(["--max-size", str(size), "--max-connections", "20",
                              "--timeout", "30"]) as sink:
        baseline = _rss_kib(sink.process.pid)
        chunk = b"%d:" % size + b"x" * 900_000
        socks = []
        try:
            with trio.fail_after(30):
                for _ in range(held):
                    sock = await connect(sink.target)
                    socks.append(sock)
                    # Past the first 20 the kernel buffers stop taking data: don't wait.
                    with trio.move_on_after(0.01):
                        await send_all(sock, chunk)
                await trio.sleep(0.3)
            grown = _rss_kib(sink.process.pid) - baseline
        finally:
            for sock in socks:
                sock.close()
    # 20 connections * ~1 MB of buffer, with room for allocator slack; not 300 MB.
    assert grown < 80_000, f"sink grew by {grown} KiB"
    assert sink.result is not None and sink.result["max_active"] <= 20
