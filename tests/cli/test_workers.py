"""--workers: several processes, one merged result; signals and deaths handled (issue 6)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from qmqpsource.source.request import SEQ_HEADER
from tests.qmqp_server import ServerState, accepting_after, qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]


async def source(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process([*SOURCE, *args], capture_stdout=True,
                                      capture_stderr=True, check=False)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


async def test_two_workers_merge_exactly(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server() as server:
        done = await source("--workers", "2", "-s", "4", "-m", "101", "-r", "2",
                            "--unique-message-id", "--json", str(out), server.target)
    assert done.returncode == 0, done.stderr
    value = json.loads(out.read_text())
    assert value["workers"] == 2 and value["runs"] == 2
    assert value["counts"]["accepted"] == 101 == len(server.requests)
    assert value["recipients"] == 202
    assert value["latency_ms"]["total"]["count"] == 101
    seqs = sorted(
        int(re.search(rb"^%s: (\d+)$" % SEQ_HEADER.encode(), r.message, re.M).group(1))  # type: ignore[union-attr]
        for r in server.requests
    )
    assert seqs == list(range(101))  # the shards never collide
    assert "101 messages: 101 accepted" in done.stderr.decode()


def sequence_numbers(server: ServerState) -> list[int]:
    found = []
    for request in server.requests:
        match = re.search(rb"^%s: (\d+)$" % SEQ_HEADER.encode(), request.message, re.M)
        assert match is not None
        found.append(int(match.group(1)))
    return sorted(found)


async def test_workers_in_a_shard_number_as_the_shard_does() -> None:
    # Workers take from one budget; the messages keep the host shard's numbers.
    async with qmqp_server() as server:
        done = await source("--workers", "2", "-s", "4", "-m", "101", "--shard", "1/2",
                            "--unique-message-id", server.target)
    assert done.returncode == 0, done.stderr
    assert sequence_numbers(server) == list(range(1, 101, 2))  # shard 1/2's 50


async def test_no_more_workers_than_sessions(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server(delay=0.5) as server:
        done = await source("--workers", "4", "-s", "2", "-m", "4", "--json", str(out),
                            server.target)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["workers"] == 2
    # -s 2 is two connections at a time, workers or not: two at the start, two once
    # the server's half-second replies came (four workers of one session each would
    # have connected all four at once).
    first = min(server.accept_times)
    assert sum(t - first < 0.25 for t in server.accept_times) == 2


async def test_workers_at_a_rate_are_shards_of_it() -> None:
    # Open-loop arrivals: each worker keeps its own schedule at rate/N (no shared budget).
    async with qmqp_server() as server:
        done = await source("--workers", "2", "-s", "2", "-m", "20", "--rate", "400",
                            "--unique-message-id", server.target)
    assert done.returncode == 0, done.stderr
    assert sequence_numbers(server) == list(range(20))


async def test_workers_run_at_the_same_time() -> None:
    # Each worker's one session holds its connection for the server's delay: run side
    # by side, both are connected at once. (A worker once held an earlier worker's pipe
    # open, so that one waited for the other to exit: they ran one after the other.)
    async with qmqp_server(delay=0.5) as server:
        done = await source("--workers", "3", "-s", "3", "-m", "3", server.target)
    assert done.returncode == 0, done.stderr
    assert server.max_active == 3


async def test_fatal_failure_in_a_worker_ends_the_run() -> None:
    async with qmqp_server(reply=b"Dgo away") as server:
        done = await source("--workers", "2", "-s", "2", "-m", "100000", server.target)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert lines and all(line == "qmqp-source: fatal: unrecoverable error: go away"
                         for line in lines)
    assert len(server.requests) < 1000


slow = accepting_after(0.2)


async def start_parent(server: ServerState, out: Path, *load: str) -> trio.Process:
    """The parent in the background; by default a load that runs until it is stopped."""
    return await trio.lowlevel.open_process(
        [*SOURCE, "--workers", "2", *(load or ("-s", "4", "--duration", "60")),
         "--json", str(out), server.target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def read_all(stream: trio.abc.ReceiveStream | None) -> bytes:
    assert stream is not None
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def wait_for(condition: Any) -> None:
    with trio.fail_after(30):
        while not condition():  # noqa: ASYNC110 - polls plain state, bounded above
            await trio.sleep(0.05)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
async def test_a_signal_reaches_every_worker(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server(slow) as server:
        parent = await start_parent(server, out)
        await wait_for(lambda: server.connections >= 8)
        workers = children_of(parent.pid)
        assert len(workers) == 2
        parent.send_signal(signum)
        with trio.fail_after(30):
            await parent.wait()
            err = await read_all(parent.stderr)
    assert parent.returncode == status
    # Said once, by the parent, last: the workers leave it to the parent.
    word = {signal.SIGINT: "interrupted", signal.SIGHUP: "hung up"}[signum]
    lines = err.decode().splitlines()
    assert lines[-1] == f"qmqp-source: {word}"
    assert [line for line in lines if line.startswith("qmqp-source: ")] == [lines[-1]]
    for pid in workers:  # reaped by the parent, so gone from /proc: none outlives it
        assert not await trio.Path(f"/proc/{pid}").exists()
    value = json.loads(out.read_text())
    assert value["status"] == "interrupted"
    assert value["counts"]["accepted"] == len(server.raw)


async def test_a_dead_worker_is_reported_and_the_others_kept(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    async with qmqp_server(slow) as server:
        parent = await start_parent(server, out)
        await wait_for(lambda: server.connections >= 8)
        workers = children_of(parent.pid)
        os.kill(workers[0], signal.SIGKILL)
        await trio.sleep(0.5)
        parent.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await parent.wait()
        assert parent.stderr is not None
        errors = (await parent.stderr.receive_some(65536)).decode()
    assert parent.returncode == 143
    assert "was killed by signal SIGKILL without a result; the others' results are kept" in errors
    value = json.loads(out.read_text())
    assert value["runs"] == 1
    assert value["counts"]["accepted"] > 0


async def test_a_dead_workers_untaken_messages_go_to_the_others(tmp_path: Path) -> None:
    # -m shared as a budget: once worker 0 is killed, worker 1 takes what is left of it.
    out = tmp_path / "r.json"
    async with qmqp_server(accepting_after(0.05)) as server:
        parent = await start_parent(server, out, "-s", "2", "-m", "60")
        await wait_for(lambda: server.connections >= 6)
        os.kill(children_of(parent.pid)[0], signal.SIGKILL)
        with trio.fail_after(30):
            await parent.wait()  # the survivor finishes the run by itself
        assert parent.stderr is not None
        errors = (await parent.stderr.receive_some(65536)).decode()
    assert "was killed by signal SIGKILL without a result" in errors
    assert parent.returncode == 1
    value = json.loads(out.read_text())
    assert value["runs"] == 1
    survivor = value["counts"]["accepted"]
    # More than its half of 60 (fixed halves would give exactly 30), and less than all
    # of it: worker 0's messages are not in the result.
    assert 30 < survivor < 60
    assert survivor <= len(server.raw) <= 60


async def test_workers_refuse_counter_and_bad_counts() -> None:
    for args, wording in [(["--workers", "2", "-c"], "-c shows one process's count"),
                          (["--workers", "0"], "--workers wants a number"),
                          (["--workers", "lots"], "--workers wants a number")]:
        done = await source(*args, "127.0.0.1:9")
        assert done.returncode == 1
        assert wording in done.stderr.decode()


async def test_workers_with_embedded_sink(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = await source("--workers", "2", "--embedded-sink", "-s", "4", "-m", "300",
                        "--json", str(out))
    assert done.returncode == 0, done.stderr
    value = json.loads(out.read_text())
    assert value["counts"]["accepted"] == 300 == value["sink"]["replies"]["K"]


def gone(pid: int) -> bool:
    """No such process, or a zombie waiting for whoever adopted it to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    # SIGKILL leaves the parent no say: the workers must notice by themselves, and
    # nothing may be left in the temporary folder.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    async with qmqp_server(slow) as server:
        parent = await trio.lowlevel.open_process(
            [*SOURCE, "--workers", "2", "-s", "4", "--duration", "60", "--json",
             str(tmp_path / "r.json"), server.target],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
        await wait_for(lambda: server.connections >= 8)
        workers = children_of(parent.pid)
        assert len(workers) == 2
        parent.kill()
        await parent.wait()
        started = trio.current_time()
        await wait_for(lambda: all(gone(pid) for pid in workers))
        took = trio.current_time() - started
        connections = server.connections
        await trio.sleep(0.5)  # nothing connects any more
        assert server.connections == connections
        assert server.handler_errors == []
    print(f"workers gone {took:.3f} s after their parent's SIGKILL")
    assert list(tmp.iterdir()) == []
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_checks_are_judged_once_on_the_whole_result(workers: str) -> None:
    # Every message fails, and a check allows it: the exit status is the check's, the
    # same with --workers as without (the workers used to judge without the checks).
    async with qmqp_server(reply=b"Dno") as server:
        done = await source("--workers", workers, "-A", "-s", "2", "-m", "20",
                            "--check", "failed<=100%", server.target)
    assert done.returncode == 0, done.stderr
    assert "1 of 1 checks failed" not in done.stderr.decode()


async def test_workers_and_embedded_sink_leave_nothing_when_the_parent_is_killed(
    tmp_path: Path,
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    parent = await trio.lowlevel.open_process(
        [*SOURCE, "--workers", "2", "--embedded-sink", "-s", "4", "--duration", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    try:
        await wait_for(lambda: len(children_of(parent.pid)) == 3)  # two workers, one sink
        children = children_of(parent.pid)
        await trio.sleep(0.5)  # well into the run
    finally:
        parent.kill()
        await parent.wait()
    await wait_for(lambda: all(gone(pid) for pid in children))
    assert list(tmp.iterdir()) == []
