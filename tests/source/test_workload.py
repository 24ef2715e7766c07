"""Shaping the load: -F, -S, -N, unique ids, --duration, --rate, signals (issue 5)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from qmqpsource.source.request import SEQ_HEADER
from tests.qmqp_server import ServerState, never_reply, qmqp_server, read_request

SOURCE = [sys.executable, "-m", "qmqpsource"]


async def source(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process([*SOURCE, *args], capture_stdout=True,
                                      capture_stderr=True, check=False)


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
async def test_message_file_sent_as_is_with_lf(tmp_path: Path, line_end: bytes) -> None:
    lines = [b"From: a@example.org", b"Subject: file", b"", b"body line", b".", b"last"]
    path = tmp_path / "message.eml"
    path.write_bytes(line_end.join(lines) + line_end)
    async with qmqp_server() as server:
        done = await source("-q", "-F", str(path), "-m", "3", "-s", "2", server.target)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in server.requests] == [b"\n".join(lines) + b"\n"] * 3


async def test_unreadable_message_file(tmp_path: Path) -> None:
    done = await source("-F", str(tmp_path / "absent.eml"), "127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"qmqp-source: fatal: cannot read message file {tmp_path}/absent.eml: "
        "No such file or directory"
    ]


async def test_subject_header_in_generated_message() -> None:
    async with qmqp_server() as server:
        done = await source("-q", "-S", "load test 1", "-l", "400", server.target)
    assert done.returncode == 0, done.stderr
    message = server.requests[0].message
    head = message.split(b"\n\n", 1)[0].split(b"\n")
    assert head[3].startswith(b"Message-Id: <")
    assert head[4] == b"Subject: load test 1"
    assert len(message) == 400


async def test_numbered_recipients_never_repeat() -> None:
    async with qmqp_server() as server:
        done = await source("-q", "-N", "-r", "3", "-m", "5", "-s", "3", "-t", "u@x", server.target)
    assert done.returncode == 0, done.stderr
    seen = [r for request in server.requests for r in request.recipients]
    assert sorted(seen) == sorted(b"%du@x" % n for n in range(1, 16))
    for request in server.requests:  # each message's recipients are consecutive numbers
        numbers = sorted(int(re.match(rb"\d+", r).group()) for r in request.recipients)  # type: ignore[union-attr]
        assert numbers == list(range(numbers[0], numbers[0] + 3))


async def test_unique_message_ids_and_sequence_headers() -> None:
    async with qmqp_server() as server:
        done = await source("-q", "--unique-message-id", "-m", "12", "-s", "4", "-l", "700",
                            server.target)
    assert done.returncode == 0, done.stderr
    ids, seqs = set(), []
    for request in server.requests:
        message = request.message
        assert len(message) == 700
        ids.add(re.search(rb"^Message-Id: <([^>]+)>$", message, re.M).group(1))  # type: ignore[union-attr]
        seqs.append(int(re.search(rb"^%s: (\d+)$" % SEQ_HEADER.encode(), message, re.M).group(1)))  # type: ignore[union-attr]
    assert len(ids) == 12
    assert sorted(seqs) == list(range(12))


async def test_shards_never_collide() -> None:
    async with qmqp_server() as server:
        for shard in ("0/3", "1/3", "2/3"):
            done = await source("-q", "--unique-message-id", "-N", "-m", "10", "-s", "4",
                                "--shard", shard, server.target)
            assert done.returncode == 0, done.stderr
    assert len(server.requests) == 10  # shares of 4, 3 and 3
    seqs = sorted(
        int(re.search(rb"^%s: (\d+)$" % SEQ_HEADER.encode(), r.message, re.M).group(1))  # type: ignore[union-attr]
        for r in server.requests
    )
    assert seqs == list(range(10))
    recipients = [r.recipients[0] for r in server.requests]
    assert len(set(recipients)) == 10


async def test_unique_ids_with_message_file(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Message-Id: <fixed@x>\nSubject: s\n\nbody\n")
    async with qmqp_server() as server:
        done = await source("-q", "--unique-message-id", "-F", str(path), "-m", "3",
                            server.target)
    assert done.returncode == 0, done.stderr
    for n, request in enumerate(sorted(server.requests, key=lambda r: r.message)):
        assert b"fixed@x" not in request.message
        assert request.message.endswith(b"Subject: s\n\nbody\n")
        assert request.message.count(b"Message-Id: ") == 1
        assert f"{SEQ_HEADER}: {n}\n".encode() in request.message


async def test_duration_capped_by_messages() -> None:
    async with qmqp_server() as server:
        done = await source("-q", "--duration", "30", "-m", "7", "-s", "3", server.target)
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 7


async def test_latency_runs_from_the_schedule_when_the_server_is_slow(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    # One session, 20/s scheduled, each message taking 0.2 s: the schedule runs away
    # from the client, and latency must show it rather than the server's 0.2 s.
    async with qmqp_server(delay=0.2) as server:
        done = await source("-q", "--rate", "20", "-m", "8", "-s", "1", "--json", str(out),
                            server.target)
    assert done.returncode == 0, done.stderr
    value = load(out)
    assert value["counts"]["accepted"] == 8
    assert value["behind_schedule"] >= 5
    # The last message was scheduled at 0.35 s and could start only after ~1.4 s.
    assert value["latency_ms"]["total"]["max"] >= 900
    assert value["latency_ms"]["total"]["p50"] >= 200


async def test_rate_refuses_pauses_between_messages() -> None:
    # An open loop runs on its schedule: a pause would make the rate a lie (issue 23).
    async with qmqp_server() as server:
        done = await source("-q", "--rate", "100", "-w", "0.05", "-m", "6", "-s", "2",
                            server.target)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("qmqp-source: fatal: --rate excludes -w and -R")
    assert server.connections == 0


async def slow_reply(stream: trio.SocketStream, state: ServerState) -> None:
    raw = await read_request(stream)
    await trio.sleep(0.3)
    await stream.send_all(b"3:Kok,")
    if raw is not None:
        state.raw.append(raw)  # counted once the K is out


async def run_and_signal(
    handler: Any, signals: list[signal.Signals], tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any], float, ServerState]:
    out = tmp_path / "r.json"
    async with qmqp_server(handler) as server, trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(
            [*SOURCE, "--duration", "60", "-s", "3", "--json", str(out), *extra, server.target],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        errors = bytearray()

        async def drain() -> None:
            assert process.stderr is not None
            async for chunk in process.stderr:
                errors.extend(chunk)

        nursery.start_soon(drain)
        with trio.fail_after(30):
            # Polls the server's plain counters, bounded by fail_after above.
            while server.connections < 3:  # noqa: ASYNC110 - every session has a message out
                await trio.sleep(0.05)
            sent_at = trio.current_time()
            for signum in signals:
                process.send_signal(signum)
                await trio.sleep(0.2)
            await process.wait()
        took = trio.current_time() - sent_at
    assert process.returncode is not None
    done = subprocess.CompletedProcess(process.args, process.returncode, b"", bytes(errors))
    return done, load(out), took, server


async def test_sigint_finishes_in_flight_then_reports(tmp_path: Path) -> None:
    done, value, took, server = await run_and_signal(slow_reply, [signal.SIGINT], tmp_path)
    assert done.returncode == 130
    assert done.stderr.decode().endswith("qmqp-source: interrupted\n")
    assert "Traceback" not in done.stderr.decode()
    assert value["status"] == "interrupted"
    # Messages in flight at the signal got their replies within the grace.
    assert value["counts"]["accepted"] >= 3
    assert value["counts"]["accepted"] == len(server.raw)
    assert took < 5


async def test_sigterm_exit_status(tmp_path: Path) -> None:
    done, value, _, _ = await run_and_signal(slow_reply, [signal.SIGTERM], tmp_path)
    assert done.returncode == 143
    assert done.stderr.decode().endswith("qmqp-source: terminated\n")
    assert value["status"] == "interrupted"


async def test_grace_ends_a_hung_run(tmp_path: Path) -> None:
    done, value, took, _ = await run_and_signal(never_reply, [signal.SIGINT], tmp_path)
    assert done.returncode == 130
    assert value["status"] == "interrupted"
    # Three sessions each had a message out that never got a reply: counted, not lost.
    assert value["cut_off"] == 3
    assert value["counts"]["attempted"] == 0
    assert "3 messages were in flight when the run was stopped" in done.stderr.decode()
    assert 1.5 <= took < 10  # the 2 s grace, not the 300 s timeout


async def test_second_sigint_ends_at_once(tmp_path: Path) -> None:
    done, value, took, _ = await run_and_signal(
        never_reply, [signal.SIGINT, signal.SIGINT], tmp_path
    )
    assert done.returncode == 130
    assert value["status"] == "interrupted"
    assert took < 1.8  # well inside the 2 s grace
