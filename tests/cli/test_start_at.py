"""--start-at and --run-id: eight shards started as separate processes at one time, merged
by qmqp-report: one run id, every shard, and timelines that line up interval by interval."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.qmqp_server import qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]
REPORT = [sys.executable, "-m", "qmqpsource.cli.report"]
SHARDS = 8
# Far enough ahead for eight Python processes to start on a busy two-core machine.
LEAD = 6.0


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


@pytest.mark.once
async def test_eight_shards_started_together_line_up(tmp_path: Path) -> None:
    at = datetime.now(UTC) + timedelta(seconds=LEAD)
    paths = [tmp_path / f"shard-{n}.json" for n in range(SHARDS)]
    async with qmqp_server() as server, trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + LEAD + 60
        for n, path in enumerate(paths):
            command = [*SOURCE, "-q", "--shard", f"{n}/{SHARDS}", "--start-at",
                       at.isoformat(), "--duration", "2", "--rate", "400", "-s", "8",
                       "--interval", "0.5", "--json", str(path), server.target]
            nursery.start_soon(partial(trio.run_process, command, check=True))
    shards = [load(path) for path in paths]
    starts = [datetime.fromisoformat(s["started_at"]) for s in shards]
    assert all(abs((start - at).total_seconds()) < 0.25 for start in starts), starts
    assert {s["run_id"] for s in shards} == {f"{at:%Y%m%dT%H%M%SZ}-{SHARDS}"}
    merged_path = tmp_path / "merged.json"
    with trio.fail_after(60):
        done = await trio.run_process([*REPORT, "-q", "--json", str(merged_path), "--check",
                                       "failed==0", *map(str, paths)], capture_stderr=True,
                                      check=False)
    assert (done.returncode, done.stderr) == (0, b"")  # no shard missing, none twice
    merged = load(merged_path)
    assert merged["shards"] == {"count": SHARDS, "indices": list(range(SHARDS))}
    assert merged["counts"]["accepted"] == sum(s["counts"]["accepted"] for s in shards)
    assert merged["counts"]["accepted"] == len(server.requests)
    # Aligned: each merged interval is the sum of the shards' intervals of the same
    # index, none spilling into a neighbour (the merge may end with an interval that
    # only the latest end reaches, then empty in every shard).
    longest = max(len(s["timeline"]) for s in shards)
    assert longest <= len(merged["timeline"]) <= longest + 1
    for k, interval in enumerate(merged["timeline"]):
        alike = sum(s["timeline"][k]["counts"]["attempted"] for s in shards
                    if k < len(s["timeline"]))
        assert interval["counts"]["attempted"] == alike, k


@pytest.mark.parametrize(("args", "says"), [
    (["--start-at", "yesterday"], "--start-at wants an RFC 3339 time with its offset"),
    (["--start-at", "2026-12-06T03:30:00"], "--start-at wants an RFC 3339 time"),
    (["--start-at", "2001-01-01T00:00:00Z"], "s in the past"),
    (["--start-at", "1000000000"], "s in the past"),
    (["--run-id", "two words"], "--run-id must be 1 to 128 letters"),
])
def test_starts_and_run_ids_that_cannot_be_are_one_line(args: list[str], says: str) -> None:
    done = subprocess.run([*SOURCE, *args, "127.0.0.1:1"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("qmqp-source: fatal: ") and done.stderr.count("\n") == 1
    assert says in done.stderr, done.stderr


def test_epoch_seconds_are_a_start_time_too() -> None:
    from qmqpsource.load.start import parse_start_at

    assert parse_start_at("1796530800.5") == datetime(2026, 12, 6, 4, 20, 0, 500_000,
                                                      tzinfo=UTC)
    assert parse_start_at("2026-12-06T05:20:00+01:00") == datetime(2026, 12, 6, 4, 20,
                                                                   tzinfo=UTC)


@pytest.mark.once
async def test_a_shard_with_no_message_still_gives_its_result(tmp_path: Path) -> None:
    # -m 2 over 3 shards: the third sends nothing. It wrote no JSON, and the run's merge
    # said "shard 2 of 3 is missing" (a report that fails the run).
    start = datetime.now(UTC) + timedelta(seconds=LEAD)
    async with qmqp_server() as server, trio.open_nursery() as nursery:
        for index in range(3):
            nursery.start_soon(partial(
                trio.run_process, [*SOURCE, "-q", "--shard", f"{index}/3", "-m", "2",
                                   "--start-at", start.isoformat(), "--json",
                                   str(tmp_path / f"{index}.json"), server.target],
                check=True))
    empty = load(tmp_path / "2.json")
    assert (empty["status"], empty["counts"]["attempted"]) == ("completed", 0)
    assert empty["shards"] == {"count": 3, "indices": [2]}
    assert datetime.fromisoformat(empty["started_at"]) == start
    merged = tmp_path / "merged.json"
    with trio.fail_after(60):
        done = await trio.run_process(
            [*REPORT, "--json", str(merged), *(str(tmp_path / f"{n}.json") for n in range(3))],
            capture_stdout=True, capture_stderr=True, check=False)
    assert (done.returncode, done.stderr) == (0, b"")
    whole = load(merged)
    assert whole["shards"] == {"count": 3, "indices": [0, 1, 2]}
    assert whole["counts"]["accepted"] == 2 and whole["run_id"] == empty["run_id"]
