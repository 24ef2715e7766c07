"""Merging results exactly, the summary text, and the qmqp-report command."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from qmqpsource.protocol import netstring
from qmqpsource.results import result
from qmqpsource.results.checks import judge, parse_check
from qmqpsource.results.histogram import HIGHEST, MAX_TOTAL, Histogram
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.results.summary import format_summary
from qmqpsource.source.config import SourceConfig
from tests.qmqp_server import ServerState, qmqp_server, read_request

REPORT = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]
SOURCE = [sys.executable, "-m", "qmqpsource"]
T0 = datetime(2026, 11, 24, 15, 0, 0, 123456, tzinfo=UTC)


def make_result(
    events: Sequence[tuple[Outcome, float, float | None, float]],
    *,
    started_at: datetime = T0,
    elapsed: float = 2.0,
    sessions: int = 1,
) -> result.Result:
    stats = RunStats(recipients_per_message=2, bytes_per_message=1000)
    for event in events:  # before begin(): all in the timeline's first interval
        stats.record(*event)
    stats.begin(now=0.0)
    stats.finish(now=elapsed)
    config = SourceConfig("127.0.0.1:628", sessions=sessions).as_dict()
    made = result.from_stats(stats, config, tool_name="qmqp-source", tool_version="0.1.0")
    return dataclasses.replace(made, started_at=started_at, elapsed_s=elapsed)


def run_a() -> result.Result:
    return make_result(
        [(Outcome.ACCEPTED, 0.0, 0.001, 0.005)] * 7
        + [(Outcome.TEMPFAIL, 0.0, 0.001, 0.002), (Outcome.REFUSED, 0.0, None, 0.0001)],
        sessions=2,
    )


def run_b() -> result.Result:
    return make_result(
        [(Outcome.ACCEPTED, 0.0, 0.002, 0.050)] * 3
        + [(Outcome.PERMFAIL, 0.0, 0.001, 0.002), (Outcome.TIMEOUT, 0.0, 0.001, 0.3)],
        started_at=T0 + timedelta(seconds=1.5),
        elapsed=1.25,
        sessions=5,
    )


def test_merge_adds_counts_and_histograms_and_spans_the_runs() -> None:
    a, b = run_a(), run_b()
    merged = result.merge([a, b], tool_name="qmqp-report", tool_version="0.1.0")
    for outcome in Outcome:
        assert merged.outcomes[outcome] == a.outcomes[outcome] + b.outcomes[outcome]
    assert merged.attempted == 14
    assert merged.recipients == a.recipients + b.recipients
    assert merged.bytes_sent == a.bytes_sent + b.bytes_sent
    for name in ("connect", "reply", "total"):
        assert merged.latency[name] == a.latency[name] + b.latency[name]
        assert merged.latency[name].count == a.latency[name].count + b.latency[name].count
    # From a's start to b's end (b starts 1.5 s in and lasts 1.25 s), to the microsecond.
    assert merged.started_at == T0
    assert merged.elapsed_s == 2.75
    assert merged.runs == 2
    assert merged.config["sessions"] == [2, 5]
    assert merged.config["target"] == "127.0.0.1:628"


def test_merge_through_json_is_exact() -> None:
    a, b = run_a(), run_b()
    da, db = result.to_dict(a), result.to_dict(b)
    merged = result.merge([result.from_dict(da), result.from_dict(db)],
                          tool_name="qmqp-report", tool_version="0.1.0")
    out = result.to_dict(merged)
    for key in ("attempted", "accepted", "tempfail", "permfail", "error"):
        assert out["counts"][key] == da["counts"][key] + db["counts"][key]
    for cause in result.ERROR_CAUSES:
        assert out["errors"][cause] == da["errors"][cause] + db["errors"][cause]
    for name in ("connect", "reply", "total"):
        entry = out["latency_ms"][name]
        assert entry["count"] == da["latency_ms"][name]["count"] + db["latency_ms"][name]["count"]
        assert Histogram.decode(entry["hdr"]) == a.latency[name] + b.latency[name]
    assert out["started_at"] == "2026-11-24T15:00:00.123456+00:00"
    assert out["elapsed_s"] == 2.75
    assert out["throughput"]["messages_per_s"] == pytest.approx(14 / 2.75, abs=1e-3)


def test_round_trip_through_json() -> None:
    a = run_a()
    assert result.loads(json.dumps(result.to_dict(a))) == a


def test_merge_of_one_result_is_that_result() -> None:
    a = run_a()
    merged = result.merge([a], tool_name="qmqp-source", tool_version="0.1.0")
    assert merged == a


def test_merged_status_and_failures() -> None:
    a = dataclasses.replace(run_a(), status="failed", failure="connect: refused")
    b = dataclasses.replace(run_b(), status="interrupted")
    merged = result.merge([a, b, run_a()], tool_name="qmqp-report", tool_version="0.1.0")
    assert merged.status == "interrupted"
    assert merged.failure == "connect: refused"


latency_us = st.integers(min_value=0, max_value=HIGHEST)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(latency_us, max_size=30), min_size=1, max_size=4))
def test_merged_percentiles_are_those_of_all_values(runs: list[list[int]]) -> None:
    results = []
    everything = Histogram()
    for values in runs:
        events = [(Outcome.ACCEPTED, 0.0, 0.0, v / 1e6) for v in values]
        results.append(make_result(events))
    for r in results:
        everything = everything + r.latency["total"]
    merged = result.merge(
        [result.from_dict(result.to_dict(r)) for r in results],
        tool_name="qmqp-report", tool_version="0.1.0",
    )
    assert merged.latency["total"] == everything
    assert merged.attempted == sum(map(len, runs))


def bad_results() -> list[tuple[str, Any, str]]:
    good = result.to_dict(run_a())

    def changed(**changes: Any) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(good))
        for dotted, value in changes.items():
            *path, last = dotted.split("__")
            node = out
            for key in path:
                node = node[key]
            if value is KeyError:
                del node[last]
            else:
                node[last] = value
        return out

    return [
        ("list", [1, 2], "not a JSON object"),
        ("schema", changed(schema="other/1"), "schema is 'other/1'"),
        ("no counts", changed(counts=KeyError), "missing counts"),
        ("attempted", changed(counts__attempted=99), "counts.attempted"),
        ("error sum", changed(counts__error=5), "counts.error"),
        ("cause", changed(errors__meteor=1), "unknown cause 'meteor'"),
        ("negative", changed(errors__reset=-1), "negative"),
        ("bool", changed(recipients=True), "recipients: wrong type"),
        ("time", changed(started_at="yesterday"), "not an ISO 8601 time"),
        ("naive", changed(started_at="2026-11-24T15:00:00"), "no UTC offset"),
        ("elapsed", changed(elapsed_s=-1), "elapsed_s"),
        ("hdr", changed(latency_ms__total__hdr="garbage"), "latency_ms.total.hdr"),
        ("hdr count", changed(latency_ms__total__count=3), "count differs"),
        ("no total", changed(latency_ms__total=KeyError), "missing latency_ms.total"),
        ("status", changed(status="fine"), "status"),
    ]


@pytest.mark.parametrize(("name", "obj", "wording"), bad_results(), ids=lambda x: str(x)[:12])
def test_from_dict_refuses_bad_results(name: str, obj: Any, wording: str) -> None:
    with pytest.raises(result.ResultError, match=None) as exc:
        result.from_dict(obj)
    assert wording in str(exc.value)


def test_summary_text() -> None:
    text = format_summary(run_a())
    lines = text.splitlines()
    assert text.endswith("\n")
    assert lines[0] == "2.000 s, 9 messages: 7 accepted, 1 tempfail, 0 permfail, 1 error"
    assert lines[1] == "errors: refused 1"
    assert lines[2] == "3.5 msg/s accepted (4.5 attempted), 8.0 rcpt/s, 0.00 MB/s"
    assert lines[3].split() == ["latency", "ms", "p50", "p90", "p99", "p99.9", "max"]
    assert lines[4].split() == ["connect", "1.000", "1.000", "1.000", "1.000", "1.000"]
    assert lines[5].split()[0] == "total"
    assert len({len(line) for line in lines[3:]}) == 1  # the table's columns line up


def test_a_server_that_fails_every_message_fast_has_no_accepted_rate() -> None:
    refused = make_result([(Outcome.REFUSED, 0.0, None, 0.0001)] * 1000, elapsed=0.5)
    lines = format_summary(refused).splitlines()
    assert lines[0] == "0.500 s, 1000 messages: 0 accepted, 0 tempfail, 0 permfail, 1000 error"
    assert lines[2].startswith("0.0 msg/s accepted (2000.0 attempted), ")
    throughput = refused.to_dict()["throughput"]
    # messages_per_s keeps its meaning (every message that ended); accepted_per_s is new.
    assert (throughput["messages_per_s"], throughput["accepted_per_s"]) == (2000.0, 0.0)
    [verdict] = judge([parse_check("rate>=1")], refused)
    assert (verdict.value, verdict.ok) == (0.0, False)


def test_summary_columns_stay_apart_for_long_latencies() -> None:
    # 12 s and 123 s in milliseconds are 9 and 10 characters: wider than the columns were.
    slow = make_result([(Outcome.ACCEPTED, 0.0, 12.0, 123.0)] * 3)
    lines = format_summary(slow).splitlines()
    table = lines[-3:]
    for row, name, seconds in ((table[1], "connect", 12.0), (table[2], "total", 123.0)):
        cells = row.split()
        assert cells[0] == name and len(cells) == 6, row
        assert all(abs(float(cell) / 1000 - seconds) < 0.01 * seconds for cell in cells[1:])
    assert len({len(line) for line in table}) == 1  # still lined up


def test_summary_of_a_merge_and_of_nothing() -> None:
    merged = result.merge([run_a(), run_b()], tool_name="qmqp-report", tool_version="0.1.0")
    assert format_summary(merged).startswith("2.750 s (2 runs), 14 messages: ")
    empty = make_result([], elapsed=0.0)
    lines = format_summary(dataclasses.replace(empty, status="failed")).splitlines()
    assert lines[0] == "0.000 s (failed), 0 messages: 0 accepted, 0 tempfail, 0 permfail, 0 error"
    assert lines[-1].split() == ["total", "-", "-", "-", "-", "-"]


def report(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REPORT, *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=60, check=False)


def write(path: Path, value: result.Result) -> Path:
    with path.open("w") as file:
        result.write(value, file)
    return path


def test_report_command_merges_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    b = write(tmp_path / "b.json", run_b())
    merged_path = tmp_path / "merged.json"
    done = report(a, b, "--json", merged_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    expected = result.merge([run_a(), run_b()], tool_name="qmqp-report", tool_version="0.1.0")
    assert done.stdout == format_summary(expected)
    merged = json.loads(merged_path.read_text())
    assert merged["schema"] == result.SCHEMA
    assert merged["tool"]["name"] == "qmqp-report"
    assert merged["counts"]["attempted"] == 14
    assert result.from_dict(merged) == expected


def test_report_json_to_stdout_and_quiet(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    done = report("-q", "--json", "-", a)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert result.from_dict(json.loads(done.stdout)) == run_a()
    # Without -q the summary moves to stderr, leaving stdout to the JSON.
    done = report("--json", "-", "-", stdin=a.read_text())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["attempted"] == 9
    assert done.stderr == format_summary(run_a())


@pytest.mark.parametrize(
    ("content", "wording"),
    [
        (None, "No such file or directory"),
        ("{not json", "not JSON"),
        ('{"schema": "qmqpsource.result/0"}', "schema is 'qmqpsource.result/0'"),
        (b"\xff\xfe", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
    ids=["missing", "broken", "schema", "binary", "deep"],
)
def test_report_bad_file_is_one_fatal_line(
    tmp_path: Path, content: str | bytes | None, wording: str
) -> None:
    good = write(tmp_path / "good.json", run_a())
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    done = report(good, bad)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"qmqp-report: fatal: {bad}: ")
    assert wording in done.stderr


@pytest.mark.parametrize(("args", "wording"), [([], "missing FILE; usage: "),
                                               (["--bogus", "x"], "no such option: --bogus; ")])
def test_report_usage_errors(args: list[str], wording: str) -> None:
    done = report(*args)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("qmqp-report: fatal: ")
    assert wording in done.stderr and "usage: qmqp-report" in done.stderr


def test_report_unwritable_json(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    done = report("-q", a, "--json", tmp_path / "no" / "m.json")
    assert done.returncode == 1
    # Checked before anything is read: a long merge must not end in this.
    assert done.stderr.startswith(f"qmqp-report: fatal: open {tmp_path}/no/m.json: ")
    assert done.stderr.count("\n") == 1


def test_qmqp_report_console_script_is_installed(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    # Where this interpreter's installs put their scripts: .venv/bin is on PATH only in
    # an activated venv, and '.venv/bin/pytest' runs without one.
    script = Path(sysconfig.get_path("scripts")) / "qmqp-report"
    done = subprocess.run([str(script), "-q", str(a)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# -- hostile input (issue 14, item 11): one line each, never a hang or a traceback


def report_limited(*args: str | Path, shell_redirect: str = "") -> subprocess.CompletedProcess[str]:
    """The command with 2 GiB of address space (so that a bug reading /dev/zero cannot
    take the machine), optionally through sh for a redirection such as ``<&-``."""
    argv = [*REPORT, *map(str, args)]
    if shell_redirect:
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        argv = ["sh", "-c", f"exec {quoted} {shell_redirect}"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)),
    )


def fatal_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    return done.stderr.rstrip("\n")


def test_report_of_dev_zero_is_refused_at_its_size_limit() -> None:
    line = fatal_line(report_limited("/dev/zero"))
    assert line == f"qmqp-report: fatal: /dev/zero: larger than {result.SIZE_LIMIT} bytes"


def test_report_of_a_fifo_without_a_writer_does_not_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert fatal_line(report_limited(fifo)) == f"qmqp-report: fatal: {fifo}: empty: not a result"


def test_report_of_a_huge_json_integer(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    text = json.dumps(result.to_dict(run_a()))
    path.write_text(text.replace('"runs": 1', '"runs": ' + "9" * 5000))
    assert fatal_line(report_limited(path)).startswith(
        f"qmqp-report: fatal: {path}: not JSON: Exceeds the limit (4300 digits)"
    )


def test_report_with_stdin_closed() -> None:
    line = fatal_line(report_limited("-", shell_redirect="<&-"))
    assert line == "qmqp-report: fatal: -: stdin is closed"


def test_report_of_times_past_the_calendar(tmp_path: Path) -> None:
    far = dataclasses.replace(run_b(), elapsed_s=1e300)
    a, b = write(tmp_path / "a.json", run_a()), write(tmp_path / "b.json", far)
    assert fatal_line(report_limited(a, b)) == (
        f"qmqp-report: fatal: {b}: started_at plus elapsed_s is out of range"
    )


def test_report_refuses_a_file_named_twice(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    link = tmp_path / "link.json"
    link.symlink_to(a)
    for twice in ([a, a], [a, link]):
        line = fatal_line(report_limited(*twice))
        assert line == (f"qmqp-report: fatal: {twice[1]}: the same file as {a}: "
                        "its runs would count twice")


def test_report_refuses_counts_that_cannot_be_added(tmp_path: Path) -> None:
    # Each file holds as many messages as a histogram can (MAX_TOTAL); merged, their
    # counts passed 2**63 inside hdrh's encoder, which corrupted its heap and aborted.
    half = MAX_TOTAL // 2
    histogram = Histogram()
    histogram.record(1000, half)
    histogram.record(3000, half)
    outcomes = dict.fromkeys(Outcome, 0)
    outcomes[Outcome.ACCEPTED] = 2 * half
    full = dataclasses.replace(run_a(), outcomes=outcomes, timeline=(), latency={
        name: histogram.copy() for name in ("connect", "reply", "total")})
    paths = [write(tmp_path / f"{n}.json",
                   dataclasses.replace(full, started_at=T0 + timedelta(seconds=n / 10)))
             for n in range(8)]
    assert report_limited("-q", paths[0]).returncode == 0  # each alone is read
    line = fatal_line(report_limited(*paths, "--json", tmp_path / "merged.json"))
    assert line == (f"qmqp-report: fatal: merged, latency_ms.connect would count "
                    f"{16 * half}, more than {MAX_TOTAL}")


# -- merging only the parts of one run (issue 23, item 7)


def test_report_refuses_to_merge_runs_that_are_not_one(tmp_path: Path) -> None:
    # Before, two unrelated runs were merged into one rate that neither had.
    a = write(tmp_path / "a.json", run_a())
    other = dataclasses.replace(run_b(), config={**run_b().config, "target": "10.0.0.1:628"})
    b = write(tmp_path / "b.json", other)
    line = fatal_line(report_limited(a, b))
    assert line == (f"qmqp-report: fatal: {b}: not a part of the same run as {a}: its "
                    f"config.target is '10.0.0.1:628', {a}'s '127.0.0.1:628'; --merge-anyway "
                    "merges them all the same")
    done = report("--merge-anyway", a, b)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("2.750 s (2 runs), 14 messages: ")


def test_report_refuses_to_merge_runs_apart_in_time(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    later = write(tmp_path / "later.json",
                  dataclasses.replace(run_b(), started_at=T0 + timedelta(minutes=1)))
    assert fatal_line(report_limited(a, later)) == (
        f"qmqp-report: fatal: {later}: not a part of the same run as {a}: it started "
        f"58.000 s after {a} ended (the parts of a run overlap in time, or leave at most a "
        "second between them); --merge-anyway merges them all the same")


def test_report_refuses_the_same_run_twice_whatever_its_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(json.loads(a.read_text())))  # another file, other bytes
    b = write(tmp_path / "b.json", run_b())
    for merge_anyway in ((), ("--merge-anyway",)):
        assert fatal_line(report_limited(*merge_anyway, a, b, copy)) == (
            f"qmqp-report: fatal: {copy}: the same run as {a} (same start, length, config, "
            "counts and latencies): its runs would count twice")


async def test_report_merges_the_shards_of_a_run(tmp_path: Path) -> None:
    # Each shard's one message waits at the server until both shards have sent theirs:
    # the two runs overlap in time whatever the machine's load.
    both_in = trio.Event()

    async def gate(stream: trio.SocketStream, state: ServerState) -> None:
        if await read_request(stream) is None:
            return
        if state.connections >= 2:
            both_in.set()
        await both_in.wait()
        await stream.send_all(netstring(b"Kok"))

    paths = [tmp_path / f"shard{n}.json" for n in range(2)]
    async with qmqp_server(gate) as server, trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + 60
        for n, path in enumerate(paths):
            command = [*SOURCE, "-q", "-m", "2", "--shard", f"{n}/2", "--run-id", "both",
                       "--json", str(path), server.target]
            nursery.start_soon(partial(trio.run_process, command, check=True))
            while server.connections <= n:  # noqa: ASYNC110 - bounded by the deadline
                await trio.sleep(0.01)
    done = report("--json", tmp_path / "merged.json", *paths)
    assert done.returncode == 0, done.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["runs"] == 2 and merged["counts"]["accepted"] == 2
    assert merged["config"]["shard_index"] == [0, 1] and merged["config"]["shard_count"] == 2
    assert merged["run_id"] == "both" and merged["shards"] == {"count": 2, "indices": [0, 1]}


def test_failures_that_no_check_of_the_report_judged_fail_it(tmp_path: Path) -> None:
    # run_a: 7 accepted, 1 tempfail, 1 refused. A latency check alone excuses no failure
    # (exit 1, as qmqp-source's); a check on failures judges them (3 if it fails).
    a = write(tmp_path / "a.json", run_a())
    done = report(a, "--check", "p99<1s")
    assert done.returncode == 1, done.stderr
    assert done.stderr == ("qmqp-report: 2 of 9 messages failed, and no check judged them\n")
    assert report(a, "--check", "p99<1s", "--check", "failed<=25%").returncode == 0
    assert report(a, "--check", "tempfail<=1").returncode == 1  # the refused one
    assert report(a, "--check", "failed==0").returncode == 3
    assert report(a).returncode == 0  # no check: a summary, not a verdict


def test_the_report_names_shards_missing_from_a_merge(tmp_path: Path) -> None:
    from qmqpsource.results.identity import Shards

    parts = [dataclasses.replace(run_a(), started_at=T0 + timedelta(seconds=i / 10),
                                 run_id="nightly", shards=Shards.one(i, 4)) for i in (0, 2)]
    files = [write(tmp_path / f"{n}.json", part) for n, part in enumerate(parts)]
    done = report(*files, "--json", tmp_path / "m.json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("qmqp-report: warning: shards 1, 3 of 4 are missing: the merge "
                           "holds 2 of them\n")
    assert json.loads((tmp_path / "m.json").read_text())["shards"] == {
        "count": 4, "indices": [0, 2]}
    # The merge given again with one of its own shards: that shard would count twice.
    again = report(tmp_path / "m.json", files[1])
    assert again.returncode == 1
    assert "shard 2 of 4 is in" in again.stderr and "would count twice" in again.stderr
    other = write(tmp_path / "other.json", dataclasses.replace(parts[1], run_id="weekly",
                                                               shards=Shards.one(1, 4)))
    refused = report(files[0], other)
    assert refused.returncode == 1 and "its run id is weekly" in refused.stderr


def test_the_json_and_the_page_cannot_be_one_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", run_a())
    (tmp_path / "link.html").symlink_to(tmp_path / "out.json")
    for second in ("out.json", "link.html"):
        done = report(a, "--json", tmp_path / "out.json", "--html", tmp_path / second)
        assert done.returncode == 1
        assert done.stderr == (f"qmqp-report: fatal: --html {tmp_path / second} is the file "
                               "--json writes too\n")
    assert not (tmp_path / "out.json").exists()  # refused before anything was written
