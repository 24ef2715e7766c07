"""--check on the command line: judged after the run, in the summary, the JSON and the
exit status (3 when a check failed), for one process, --workers and qmqp-report."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.qmqp_server import never_reply, qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]
REPORT = [sys.executable, "-m", "qmqpsource.cli.report"]


async def run(command: list[str], *args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process([*command, *args], capture_stdout=True,
                                      capture_stderr=True, check=False)


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def lines(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    text = done.stderr.decode()
    assert "Traceback" not in text
    return text.splitlines()


async def test_checks_that_hold_exit_0_and_are_in_summary_and_json(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        done = await run(SOURCE, "-s", "2", "-m", "20", "--check", "p99<30s",
                         "--check", "failed==0", "--check", "rate>=0.001", "--json", str(out),
                         server.target)
    assert done.returncode == 0, done.stderr
    err = lines(done)
    assert [line.split(":")[0] for line in err if line.startswith("check ")] == [
        "check p99<30s", "check failed==0", "check rate>=0.001"]
    assert all(line.endswith(", held") for line in err if line.startswith("check "))
    checks = load(out)["checks"]
    assert [(c["check"], c["ok"]) for c in checks] == [
        ("p99<30s", True), ("failed==0", True), ("rate>=0.001", True)]
    assert checks[1]["value"] == 0
    assert checks[0]["value"] == load(out)["latency_ms"]["total"]["p99"]


async def test_a_check_that_fails_exits_3_and_says_which(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        done = await run(SOURCE, "-m", "5", "--check", "p50<1us", "--check", "failed==0",
                         "--json", str(out), server.target)
    assert done.returncode == 3, done.stderr
    err = lines(done)
    assert err[-1] == "qmqp-source: 1 of 2 checks failed: p50<1us"
    assert any(line.startswith("check p50<1us: ") and line.endswith(" ms, FAILED")
               for line in err)
    assert [c["ok"] for c in load(out)["checks"]] == [False, True]
    assert load(out)["status"] == "completed"


@pytest.mark.parametrize(
    ("checks", "status"),
    [
        ((), 1),  # -A as before: failed messages make it 1
        (("--check", "p99<30s"), 1),  # a check on latency does not excuse failures
        (("--check", "tempfail<=100%"), 0),  # a check on failures judges them
        (("--check", "tempfail<10%"), 3),
    ],
)
async def test_keep_going_failures_and_checks(checks: tuple[str, ...], status: int) -> None:
    replies = [b"Kok", b"Zlater"]
    async with qmqp_server(reply=lambda i: replies[i % 2]) as server:
        done = await run(SOURCE, "-A", "-q", "-m", "10", *checks, server.target)
    assert done.returncode == status, done.stderr
    assert len(server.requests) == 10


@pytest.mark.parametrize(
    ("checks", "status"),
    [
        (("--check", "tempfail==0"), 1),  # held, but says nothing of the permfails
        (("--check", "error==0"), 1),  # nor does a check on errors
        (("--check", "tempfail==0", "--check", "permfail<=50%"), 0),
        (("--check", "failed<=50%"), 0),  # every failure
        (("--check", "failed<50%"), 3),
    ],
)
async def test_failures_no_check_judged_still_fail_the_run(
    checks: tuple[str, ...], status: int
) -> None:
    # Half the messages fail permanently: before, any check on an outcome excused them.
    replies = [b"Kok", b"Dno"]
    async with qmqp_server(reply=lambda i: replies[i % 2]) as server:
        done = await run(SOURCE, "-A", "-q", "-m", "10", *checks, server.target)
    assert done.returncode == status, done.stderr
    assert "qmqp-source: 5 of 10 messages failed" in lines(done)


@pytest.mark.parametrize(("check", "status"), [("tempfail==0", 1), ("failed<=50%", 0)])
async def test_workers_judge_the_failures_of_the_merge(check: str, status: int) -> None:
    replies = [b"Kok", b"Dno"]
    async with qmqp_server(reply=lambda i: replies[i % 2]) as server:
        done = await run(SOURCE, "-A", "-q", "--workers", "2", "-s", "2", "-m", "10",
                         "--check", check, server.target)
    assert done.returncode == status, done.stderr
    assert len(server.requests) == 10


async def test_a_bad_check_is_a_usage_error_before_the_run() -> None:
    async with qmqp_server() as server:
        done = await run(SOURCE, "-m", "5", "--check", "p99<fast", server.target)
    assert done.returncode == 1
    [line] = lines(done)
    assert line.startswith("qmqp-source: fatal: --check 'p99<fast': ")
    assert server.connections == 0


async def test_a_fatal_failure_is_1_and_its_json_has_the_checks(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server(reply=b"Dno") as server:
        done = await run(SOURCE, "-m", "5", "--check", "failed==0", "--json", str(out),
                         server.target)
    assert done.returncode == 1
    assert lines(done) == ["qmqp-source: fatal: unrecoverable error: no"]
    assert load(out)["status"] == "failed"
    assert [(c["check"], c["value"], c["ok"]) for c in load(out)["checks"]] == [
        ("failed==0", 1, False)]


async def test_a_stopped_run_keeps_its_signal_status(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server(never_reply) as server, trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(
            [*SOURCE, "-q", "-s", "2", "--duration", "60", "--check", "failed==0",
             "--json", str(out), server.target],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        nursery.cancel_scope.deadline = trio.current_time() + 60
        while server.connections < 2:  # noqa: ASYNC110 - bounded by the deadline above
            await trio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        await process.wait()
    assert process.returncode == 143
    assert load(out)["status"] == "interrupted"
    assert load(out)["checks"][0]["check"] == "failed==0"


async def test_workers_are_judged_as_one_run(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        done = await run(SOURCE, "-q", "--workers", "2", "-s", "2", "-m", "30",
                         "--check", "rate>=0.001", "--check", "failed<1", "--json", str(out),
                         server.target)
    assert done.returncode == 0, done.stderr
    value = load(out)
    assert value["runs"] == 2 and value["counts"]["accepted"] == 30
    assert [(c["check"], c["ok"]) for c in value["checks"]] == [
        ("rate>=0.001", True), ("failed<1", True)]


async def test_report_judges_the_merge(tmp_path: Path) -> None:
    files = []
    replies = [b"Kok", b"Zlater", b"Kok"]
    async with qmqp_server(reply=lambda i: replies[i % 3]) as server:
        for n in range(2):
            path = tmp_path / f"{n}.json"
            done = await run(SOURCE, "-A", "-q", "-m", "6", "--json", str(path),
                             server.target)
            assert done.returncode == 1
            files.append(str(path))
    merged = tmp_path / "merged.json"
    # 4 of the 12 messages failed: each run alone has 2, the merge 4. The runs came one
    # after the other, not together as the parts of one run: merged on demand.
    done = await run(REPORT, "-q", "--merge-anyway", "--check", "tempfail==4",
                     "--check", "failed<=33.4%", "--json", str(merged), *files)
    assert done.returncode == 0, done.stderr
    assert [(c["value"], c["ok"]) for c in load(merged)["checks"]] == [
        (4, True), (pytest.approx(33.333, abs=0.001), True)]
    done = await run(REPORT, "-q", "--merge-anyway", "--check", "tempfail<4", *files)
    assert done.returncode == 3
    assert lines(done) == ["qmqp-report: 1 of 1 checks failed: tempfail<4"]
    done = await run(REPORT, "--check", "bogus<1", *files)
    assert done.returncode == 1
    assert lines(done)[0].startswith("qmqp-report: fatal: --check 'bogus<1': unknown")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (SOURCE, ["-m", "5"]),
        (SOURCE, ["--workers", "2", "-s", "2", "-m", "5"]),
        (SOURCE, ["--find-rate", "--step-duration", "0.5"]),
        (REPORT, []),
    ],
    ids=["source", "workers", "find-rate", "report"],
)
@pytest.mark.parametrize("bad", [".p99<5ms", "p99.9.9<1s", "p101<1s"])
async def test_a_check_judge_cannot_judge_stops_every_path_before_any_work(
    command: list[str], options: list[str], bad: str, tmp_path: Path
) -> None:
    # Before, '.p99<5ms' was taken: the whole load ran, then a KeyError traceback and no
    # JSON. Now one usage line, and nothing done: no connection, no file read.
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        operand = str(tmp_path / "missing.json") if command is REPORT else server.target
        done = await run(command, *options, "--check", "p99<1s", "--check", bad,
                         "--json", str(out), operand)
    assert done.returncode == 1
    [line] = lines(done)
    prog = "qmqp-report" if command is REPORT else "qmqp-source"
    assert line.startswith(f"{prog}: fatal: --check {bad!r}: ")
    assert server.connections == 0 and not out.exists()


async def test_report_check_on_a_latency_the_file_has_not_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    async with qmqp_server() as server:
        done = await run(SOURCE, "-q", "-m", "3", "--json", str(old), server.target)
    assert done.returncode == 0, done.stderr
    document = load(old)
    document["schema"] = "qmqpsource.result/1"  # reply latency was optional then
    del document["latency_ms"]["reply"], document["timeline"], document["interval_s"]
    old.write_text(json.dumps(document))
    done = await run(REPORT, "-q", "--check", "reply.p99<5ms", str(old))
    assert done.returncode == 1
    assert lines(done) == ["qmqp-report: fatal: --check 'reply.p99<5ms': the result has no "
                           "reply latency to judge"]


async def test_a_rate_check_counts_only_accepted_messages(tmp_path: Path) -> None:
    # Every message refused at once: thousands a second ended, none was accepted.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        out = tmp_path / "r.json"
        done = await run(SOURCE, "-A", "-m", "20", "--check", "rate>=0.001",
                         "--json", str(out), target)
    assert done.returncode == 3
    err = lines(done)
    assert err[-1] == "qmqp-source: 1 of 1 checks failed: rate>=0.001"
    assert any(line.startswith("0.0 msg/s accepted (") for line in err)
    value = load(out)
    assert value["counts"]["error"] == 20 and value["throughput"]["accepted_per_s"] == 0
    assert value["throughput"]["messages_per_s"] > 0
    assert value["checks"] == [{"check": "rate>=0.001", "value": 0.0, "ok": False}]
