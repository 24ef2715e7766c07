"""Whole runs against an in-test server: counts, latencies and the JSON result they write.

run_source() calls trio.run, so it runs in a worker thread beside the test's own loop,
where the server lives.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from hdrh.histogram import HdrHistogram

from qmqpsource import __version__
from qmqpsource.cli.launch import run_source
from qmqpsource.results.result import ERROR_CAUSES, SCHEMA
from qmqpsource.source.config import SourceConfig
from tests.qmqp_server import ServerState, never_reply, qmqp_server, read_request

RUN_LIMIT = 60  # seconds for any one run: a hang fails the test instead of the suite


async def run(config: SourceConfig, json_path: Path, **options: Any) -> tuple[int, dict[str, Any]]:
    """run_source in a thread: (exit status, parsed JSON); a fatal exit's status is 1."""
    options.setdefault("quiet", True)
    with trio.fail_after(RUN_LIMIT):
        try:
            status = await trio.to_thread.run_sync(
                partial(run_source, config, json_path=str(json_path), **options)
            )
        except SystemExit as exc:
            status = int(exc.code or 0)
    text = await trio.Path(json_path).read_text()
    return status, json.loads(text)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def close_without_reply(stream: trio.SocketStream, state: ServerState) -> None:
    await read_request(stream)


async def reset_after_request(stream: trio.SocketStream, state: ServerState) -> None:
    await read_request(stream)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Handler = Callable[[trio.SocketStream, ServerState], Awaitable[None]]


@pytest.mark.parametrize(
    ("handler", "reply", "outcome"),
    [
        (None, b"Kok", "accepted"),
        (None, b"Zbusy", "tempfail"),
        (None, b"Dno", "permfail"),
        (None, b"Xwhat", "protocol_error"),
        (close_without_reply, b"", "lost_connection"),
        (reset_after_request, b"", "reset"),
        (never_reply, b"", "timeout"),
    ],
)
async def test_counts_equal_what_the_server_saw(
    handler: Handler | None, reply: bytes, outcome: str, tmp_path: Path
) -> None:
    async with qmqp_server(handler, reply=reply) as server:
        config = SourceConfig(server.target, sessions=3, messages=9, recipients=2,
                              keep_going=True, timeout=0.5)
        status, result = await run(config, tmp_path / "r.json")
    assert status == (0 if outcome == "accepted" else 1)
    assert server.connections == 9
    assert len(server.raw) == (9 if handler is None else 0)  # the default handler records
    counts = result["counts"]
    assert counts["attempted"] == 9
    expected = {"accepted": 0, "tempfail": 0, "permfail": 0}
    errors = dict.fromkeys(ERROR_CAUSES, 0)
    if outcome in expected:
        expected[outcome] = 9
    else:
        errors[outcome] = 9
    assert {k: counts[k] for k in expected} == expected
    assert result["errors"] == errors
    assert counts["error"] == sum(errors.values())
    # Every message reached the server, so every one sent its request.
    assert result["recipients"] == 18
    assert result["latency_ms"]["total"]["count"] == 9
    assert result["latency_ms"]["connect"]["count"] == 9


async def test_mixed_replies_counted_as_the_server_answered(tmp_path: Path) -> None:
    replies = [b"Kok", b"Zbusy", b"Dno"]
    async with qmqp_server(reply=lambda i: replies[i % 3]) as server:
        config = SourceConfig(server.target, sessions=4, messages=30, keep_going=True)
        status, result = await run(config, tmp_path / "r.json")
    assert status == 1
    sent = [replies[i % 3] for i in range(len(server.requests))]
    assert len(sent) == 30
    counts = result["counts"]
    assert counts["accepted"] == sent.count(b"Kok") == 10
    assert counts["tempfail"] == sent.count(b"Zbusy") == 10
    assert counts["permfail"] == sent.count(b"Dno") == 10
    assert counts["error"] == 0
    assert result["latency_ms"]["reply"]["count"] == 30


@pytest.mark.parametrize(("target", "cause"), [("refused", "refused"),
                                               ("unix:/nonexistent/qmqp", "connect_error")])
async def test_connect_failures_by_cause(target: str, cause: str, tmp_path: Path) -> None:
    if target == "refused":
        target = f"127.0.0.1:{free_port()}"
    config = SourceConfig(target, sessions=2, messages=5, keep_going=True)
    status, result = await run(config, tmp_path / "r.json")
    assert status == 1
    assert result["counts"] == {"attempted": 5, "accepted": 0, "tempfail": 0, "permfail": 0,
                                "error": 5}
    assert result["errors"][cause] == 5
    # Nothing was sent and nothing connected: no connect times, no bytes.
    assert result["latency_ms"]["connect"]["count"] == 0
    assert result["latency_ms"]["total"]["count"] == 5
    assert result["recipients"] == result["bytes_sent"] == 0


async def test_percentiles_against_known_server_delays(tmp_path: Path) -> None:
    # Half the messages wait 200 ms at the server, half not at all: p50 is a fast one,
    # p90 and max slow ones. Loose bounds: only the delay is known, not the machine.
    async with qmqp_server(delay=lambda i: 0.2 if i % 2 else 0.0) as server:
        config = SourceConfig(server.target, sessions=10, messages=20)
        status, result = await run(config, tmp_path / "r.json")
    assert status == 0
    total = result["latency_ms"]["total"]
    reply = result["latency_ms"]["reply"]
    connect = result["latency_ms"]["connect"]
    assert total["count"] == reply["count"] == connect["count"] == 20
    assert total["p50"] < 150
    assert 200 <= total["p90"] <= total["p99"] <= total["p999"] <= total["max"] < 5000
    assert reply["p50"] < 150
    assert 200 <= reply["p90"] < 5000
    assert connect["max"] < 150
    # hdrh's mean weights each value at its bucket's middle: about half of 200 ms here.
    assert 100 <= total["mean"] < 150 + 100


async def test_json_has_every_field(tmp_path: Path) -> None:
    before = datetime.now().astimezone()
    async with qmqp_server() as server:
        config = SourceConfig(server.target, sessions=2, messages=7, recipients=3, length=500)
        status, result = await run(config, tmp_path / "r.json")
    after = datetime.now().astimezone()
    assert status == 0
    assert result["schema"] == SCHEMA == "qmqpsource.result/2"
    assert result["tool"] == {"name": "qmqp-source", "version": __version__}
    assert result["config"] == config.as_dict()
    assert result["status"] == "completed" and result["failure"] is None
    started = datetime.fromisoformat(result["started_at"])
    assert re.search(r"T\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$", result["started_at"])
    assert before <= started <= after
    assert 0 < result["elapsed_s"] < RUN_LIMIT
    assert result["counts"] == {"attempted": 7, "accepted": 7, "tempfail": 0, "permfail": 0,
                                "error": 0}
    assert result["errors"] == dict.fromkeys(ERROR_CAUSES, 0)
    assert result["recipients"] == 21
    request_size = len(server.raw[0])
    assert all(len(raw) == request_size for raw in server.raw)
    assert result["bytes_sent"] == 7 * request_size
    elapsed = result["elapsed_s"]
    assert result["throughput"] == {
        "messages_per_s": pytest.approx(7 / elapsed, rel=1e-3),
        "accepted_per_s": pytest.approx(7 / elapsed, rel=1e-3),
        "recipients_per_s": pytest.approx(21 / elapsed, rel=1e-3),
        "bytes_per_s": pytest.approx(7 * request_size / elapsed, rel=1e-3),
    }
    for name in ("connect", "reply", "total"):
        entry = result["latency_ms"][name]
        assert set(entry) == {"count", "mean", "p50", "p90", "p99", "p999", "max", "hdr"}
        assert entry["count"] == 7
        assert 0 <= entry["p50"] <= entry["p90"] <= entry["p99"] <= entry["p999"] <= entry["max"]
        # The standard compressed base64 form: hdrh itself reads it back.
        decoded = HdrHistogram.decode(entry["hdr"].encode())
        assert decoded.get_total_count() == 7
        assert decoded.get_max_value() / 1000 == pytest.approx(entry["max"], abs=0.001)
        assert decoded.get_value_at_percentile(99.0) / 1000 == pytest.approx(
            entry["p99"], abs=0.001
        )
    assert result["interval_s"] == 1.0
    timeline = result["timeline"]
    assert timeline and timeline[0]["offset_s"] == 0.0
    for entry in timeline:
        assert set(entry) == {"offset_s", "duration_s", "counts", "latency_ms"}
        assert set(entry["counts"]) == set(result["counts"])
        assert set(entry["latency_ms"]) == {"total"}
        total = entry["latency_ms"]["total"]
        assert set(total) == {"count", "p50", "p90", "p99", "max", "hdr"}
        assert HdrHistogram.decode(total["hdr"].encode()).get_total_count() == total["count"]
    assert sum(entry["counts"]["accepted"] for entry in timeline) == 7


async def test_failed_run_still_writes_its_result(tmp_path: Path) -> None:
    async with qmqp_server(reply=b"Dno such user") as server:
        config = SourceConfig(server.target, messages=5)
        status, result = await run(config, tmp_path / "r.json")
    assert status == 1
    assert result["status"] == "failed"
    assert result["failure"] == "unrecoverable error: no such user"
    assert result["counts"]["permfail"] == result["counts"]["attempted"] == 1


async def test_target_error_still_writes_a_result(tmp_path: Path) -> None:
    status, result = await run(SourceConfig("unix:"), tmp_path / "r.json")
    assert status == 1
    assert result["status"] == "failed"
    assert "missing pathname" in result["failure"]
    assert result["counts"]["attempted"] == 0
    assert result["elapsed_s"] >= 0
    # Which run and shard it was, as any result says (a report counts the shard in).
    assert result["shards"] == {"count": 1, "indices": [0]}
    assert result["run_id"].endswith("Z-1")


async def test_json_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with qmqp_server() as server:
        config = SourceConfig(server.target, messages=3)
        with trio.fail_after(RUN_LIMIT):
            status = await trio.to_thread.run_sync(
                partial(run_source, config, quiet=True, json_path="-")
            )
    assert status == 0
    assert json.loads(capsys.readouterr().out)["counts"]["accepted"] == 3


async def test_unwritable_json_path_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with qmqp_server() as server:
        config = SourceConfig(server.target, messages=3)
        with pytest.raises(SystemExit) as exc:
            await trio.to_thread.run_sync(
                partial(run_source, config, json_path=str(tmp_path / "no" / "r.json"))
            )
    assert exc.value.code == 1
    assert server.connections == 0
    err = capsys.readouterr().err
    assert err.startswith("qmqp-source: fatal: open ") and err.count("\n") == 1


SOURCE = [sys.executable, "-m", "qmqpsource"]


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated"),
     (signal.SIGHUP, 129, "hung up")],
)
async def test_interrupted_run_still_writes_its_result(
    tmp_path: Path, signum: signal.Signals, status: int, word: str
) -> None:
    path = tmp_path / "r.json"
    err_path = tmp_path / "stderr"
    async with qmqp_server(delay=0.05) as server:
        with err_path.open("wb") as err, trio.fail_after(RUN_LIMIT):
            process = await trio.lowlevel.open_process(
                [*SOURCE, "-m", "100000", "--json", str(path), server.target],
                stdout=subprocess.DEVNULL, stderr=err,
            )
            try:
                # Well into the run: trio is up and messages are flowing.
                while len(server.requests) < 5:  # noqa: ASYNC110 - the server has no event
                    await trio.sleep(0.02)
                process.send_signal(signum)
                returncode = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        seen = len(server.requests)
    assert returncode == status, err_path.read_text()
    result = json.loads(path.read_text())
    assert result["status"] == "interrupted"
    accepted = result["counts"]["accepted"]
    # The message in flight at the signal reached the server but got no reply.
    assert seen - 1 <= accepted <= seen
    assert result["counts"]["attempted"] == accepted
    assert sum(entry["counts"]["accepted"] for entry in result["timeline"]) == accepted
    stderr = err_path.read_text()
    assert "Traceback" not in stderr
    assert stderr.endswith(f"qmqp-source: {word}\n")
    assert f"{accepted} messages: {accepted} accepted" in stderr  # the summary came first


async def test_summary_on_stderr_unless_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # -c's counter goes to stdout and -v's lines come before the summary, so both keep
    # Postfix's output as it is and still get the summary; only -q turns it off.
    async with qmqp_server() as server:
        for quiet, counter, verbose, shown in [
            (False, False, 0, True),
            (True, False, 0, False),
            (False, True, 0, True),
            (False, False, 1, True),
            (True, True, 1, False),
        ]:
            config = SourceConfig(server.target, messages=4)
            status, _ = await run(config, tmp_path / "r.json", quiet=quiet, counter=counter,
                                  verbose=verbose)
            assert status == 0
            err = capsys.readouterr().err
            assert ("4 messages: 4 accepted" in err) is shown, (quiet, counter, verbose)
            assert ("latency ms" in err) is shown


async def test_fatal_failure_prints_only_postfixs_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with qmqp_server(reply=b"Zlater") as server:
        config = SourceConfig(server.target, messages=2)
        status, _ = await run(config, tmp_path / "r.json", quiet=False)
    assert status == 1
    assert capsys.readouterr().err == "qmqp-source: fatal: recoverable error: later\n"


async def test_interval_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with qmqp_server(delay=0.03) as server:
        config = SourceConfig(server.target, messages=12)
        status, _ = await run(config, tmp_path / "r.json", interval=0.1, quiet=False)
    assert status == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if " msg/s, " in line and " s: " in line]  # not the summary's rate line
    assert lines, "no interval line"
    pattern = re.compile(
        r"^qmqp-source: \d+\.\d s: \d+ messages, \d+\.\d msg/s, 0 failed, p99 (\d+\.\d{3} ms|-)$"
    )
    assert all(pattern.match(line) for line in lines), lines
    assert sum(int(line.split()[3]) for line in lines) <= 12
