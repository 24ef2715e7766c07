"""qmqp-source --find-rate against sinks of known capacity: a slow one and a fast one
(400 and 2000 msg/s, each measured in the same test), a sink faster than the sessions
(the search must end on them or its step cap), a first step that fails, --workers,
qmqp-report (and its page), and usage errors.

Real time by nature: each run is bounded (--step-duration, the step cap, a deadline).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qmqpsource.cli.source import main

SOURCE = [sys.executable, "-m", "qmqpsource"]
REPORT = [sys.executable, "-m", "qmqpsource.cli.report"]
SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]


@contextmanager
def sink(tmp_path: Path, *options: str) -> Iterator[str]:
    """A qmqp-sink process on a free loopback port; its address."""
    ready = tmp_path / "sink.ready"
    process = subprocess.Popen([*SINK, "--ready-file", str(ready), *options, "127.0.0.1:0",
                                "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # a bound on the wait, not a timed assertion
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "no sink listens"
            time.sleep(0.02)
        yield ready.read_text().split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(*args: str, limit: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*SOURCE, *args], capture_output=True, text=True, timeout=limit,
                          check=False)
    assert "Traceback" not in done.stderr
    return done


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def step_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r" *\d+ +\d+\.\d ", line)]


# Sinks of known capacity: 20 replies every --delay seconds (400 and 2000 msg/s); the
# search starts near it (--rate) to keep the test short, and the closed loop that
# measures what the sink really does lasts about 4 s. -s must let the latency of an
# overloaded server pass the check: with every session busy it cannot pass
# sessions / capacity (200 / 2000 = 100 ms < 200 ms: the sessions would be the limit).
KNOWN_CAPACITY = [
    pytest.param("0.05", "300", "1500", "200", id="slow-400"),
    pytest.param("0.01", "1500", "8000", "1000", id="fast-2000"),
]


@pytest.mark.once
@pytest.mark.parametrize(("delay", "start", "messages", "sessions"), KNOWN_CAPACITY)
def test_finds_the_capacity_of_a_sink(tmp_path: Path, delay: str, start: str,
                                      messages: str, sessions: str) -> None:
    out, closed = tmp_path / "find.json", tmp_path / "closed.json"
    with sink(tmp_path, "--delay", delay, "--max-connections", "20") as target:
        # What the sink can really do: a closed loop with sessions to spare.
        done = run("-s", "200", "--connect-limit", "200", "-m", messages, "-q", "--json",
                   str(closed), target)
        assert done.returncode == 0, done.stderr
        capacity = load(closed)["throughput"]["messages_per_s"]
        done = run("--find-rate", "--check", "p99<200ms", "-s", sessions, "--connect-limit",
                   sessions, "--step-duration", "3", "--rate", start, "--json", str(out), target)
    assert done.returncode == 0, done.stderr
    found = load(out)["find_rate"]
    assert abs(found["rate"] / capacity - 1) <= 0.15, (found["rate"], capacity, done.stderr)
    steps = found["steps"]
    assert found["stopped"] == "bracket" and len(steps) <= 20
    assert len(step_lines(done.stderr)) == len(steps)
    assert done.stderr.splitlines()[-1] == (
        f"qmqp-source: highest rate that met the checks: {found['rate']:.1f} msg/s "
        f"({len(steps)} steps, stopped: bracket)")
    assert steps[0]["rate"] == float(start) and any(not step["ok"] for step in steps)
    assert found["rate"] == max(step["rate"] for step in steps if step["ok"])
    for step in steps:
        assert [c["check"] for c in step["checks"]] == ["p99<200ms"]
        assert step["ok"] == step["checks"][0]["ok"] == (step["verdict"] == "held")
    # The usual fields are those of the step at the answer.
    value = load(out)
    assert value["config"]["rate"] == found["rate"]
    assert value["checks"][0]["ok"] and value["status"] == "completed"


@pytest.mark.once
def test_a_fast_sink_ends_on_the_sessions_with_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "find.json"
    with sink(tmp_path) as target:
        done = run("--find-rate", "--check", "p99<200ms", "-s", "2", "--connect-limit", "2",
                   "--step-duration", "1", "--rate", "1000", "--json", str(out), target)
    assert done.returncode == 0, done.stderr
    found = load(out)["find_rate"]
    steps = found["steps"]
    assert found["stopped"] in ("sessions", "bracket", "step cap"), done.stderr
    assert len(steps) <= 20 and found["rate"] is not None
    if found["stopped"] == "sessions":
        assert steps[-1]["verdict"] == "sessions" and steps[-1]["behind_schedule"] > 0
        assert found["rate"] == steps[-2]["rate"]
        warning = [line for line in done.stderr.splitlines() if "warning" in line]
        assert len(warning) == 1 and "raise -s" in warning[0]


def test_a_first_step_that_fails_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "find.json"
    done = run("--find-rate", "--embedded-sink", "--check", "p50<1us", "--check", "failed==0",
               "--rate", "20", "--step-duration", "0.5", "--json", str(out))
    assert done.returncode == 3, done.stderr
    value = load(out)
    assert value["find_rate"]["rate"] is None
    assert value["find_rate"]["stopped"] == "first step failed"
    assert [step["verdict"] for step in value["find_rate"]["steps"]] == ["failed"]
    assert [(c["check"], c["ok"]) for c in value["checks"]] == [("p50<1us", False),
                                                                 ("failed==0", True)]
    assert done.stderr.splitlines()[-1] == (
        "qmqp-source: no rate met the checks (1 step, stopped: first step failed)")


@pytest.mark.once
def test_workers_and_qmqp_report(tmp_path: Path) -> None:
    out, again, merged = tmp_path / "find.json", tmp_path / "again.json", tmp_path / "m.json"
    # 4 sessions of 20 ms each serve 200 msg/s at most: the search ends on them.
    with sink(tmp_path, "--delay", "0.02") as target:
        done = run("--find-rate", "--workers", "2", "--check", "p99<1s", "-s", "4",
                   "--connect-limit", "4", "--rate", "100", "--step-duration", "0.6",
                   "--json", str(out), target)
    assert done.returncode in (0, 3), done.stderr
    value = load(out)
    found = value["find_rate"]
    assert value["workers"] == 2 and value["runs"] == 2  # each step: two workers merged
    assert found["stopped"] == "sessions" and found["rate"] in (None, 100, 200), done.stderr
    assert done.returncode == (0 if found["rate"] else 3)
    # qmqp-report of it alone: the step table, and find_rate kept in its JSON.
    shown = subprocess.run([*REPORT, "--json", str(again), str(out)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert len(step_lines(shown.stdout)) == len(found["steps"])
    assert "qmqp-report: " in shown.stdout.splitlines()[-1]
    assert load(again)["find_rate"] == found
    # The same search twice (again.json is out's, written again) is not merged...
    both = subprocess.run([*REPORT, "-q", "--json", str(merged), str(out), str(again)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert both.returncode == 1 and "the same run as" in both.stderr
    # ...nor compared with itself; a search of another start is, each as its own.
    page = tmp_path / "page.html"
    both = subprocess.run([*REPORT, "-q", "--html", str(page), str(out), str(again)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert both.returncode == 1 and "would set a run beside itself" in both.stderr
    later = load(again)
    later["started_at"] = (datetime.fromisoformat(later["started_at"])
                           + timedelta(hours=1)).isoformat()
    other = tmp_path / "other.json"
    other.write_text(json.dumps(later))
    both = subprocess.run([*REPORT, "-q", "--html", str(page), str(out), str(other)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (both.returncode, both.stderr) == (0, "")
    search = page.read_text().split('data-chart="search"')[1].split("</svg>")[0]
    for number in "01":  # each run its p50 and p99, with one marker a step on each
        assert re.findall(rf'data-run="{number}" data-series="(\w+)"', search) == [
            "p50", "p99"]
    assert len(re.findall(r"data-mark=", search)) == 2 * 2 * len(found["steps"])
    assert search.count('<g class="rule">') == (2 if found["rate"] else 0)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--find-rate"], "--find-rate needs at least one --check"),
        (["--find-rate", "--check", "p99<1s", "-m", "5"], "not with -m"),
        (["--find-rate", "--check", "p99<1s", "--duration", "5"], "not with --duration"),
        (["--find-rate", "--check", "p99<1s", "--shard", "0/2"], "not with --shard"),
        (["--find-rate", "--check", "p99<1s", "--step-duration", "0"],
         "--step-duration must be a positive number of seconds, not 0.0"),
        (["--step-duration", "3"], "--step-duration goes with --find-rate"),
        (["--find-rate", "--check", "p99<1s", "--rate", "0"], "--rate must be a positive"),
    ],
)
def test_usage_errors(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "127.0.0.1:1"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and says in err, err
    assert err.startswith("qmqp-source: fatal: ")


@pytest.mark.once
def test_workers_with_an_embedded_sink_share_one_sink(tmp_path: Path) -> None:
    # One trio loop for the search: the sink (and the workers) stay up for every step,
    # so the sink's own count covers all the steps' messages.
    out = tmp_path / "find.json"
    done = run("--find-rate", "--check", "p99<1s", "--workers", "2", "-s", "4",
               "--embedded-sink", "--sink-options", "--delay 0.02", "--rate", "40",
               "--step-duration", "0.5", "--json", str(out))
    assert done.returncode in (0, 3), done.stderr
    value = load(out)
    assert value["workers"] == 2 and len(value["find_rate"]["steps"]) >= 1
    assert value["find_rate"]["stopped"] in ("sessions", "bracket", "first step failed")


def test_a_server_that_is_down_is_no_verdict(tmp_path: Path) -> None:
    # Nothing listens: the first step finds no server, and the search ends fatally
    # instead of reporting a rate (or "no rate held") for a dead server.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run("--find-rate", "--check", "p99<1s", "--rate", "20", "--step-duration", "0.5",
               "--json", str(tmp_path / "find.json"), f"127.0.0.1:{port}")
    assert done.returncode == 1
    said = done.stderr.splitlines()
    assert len(said) == 1, said  # the fatal line alone: no table header before it
    assert said[0].startswith("qmqp-source: fatal: at 20 msg/s, ")
    assert f"found no server at 127.0.0.1:{port} (" in said[0] and "refused" in said[0]
    assert not (tmp_path / "find.json").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--step-duration", "0.2", "--rate", "100"], "--step-duration must be at least 0.5 s"),
     (["--step-duration", "1", "--rate", "5"], "asks for 5 messages, too few to judge")],
)
def test_steps_too_short_or_too_slow_to_judge_are_refused(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--find-rate", "--check", "p99<1s", *args, "127.0.0.1:1"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and says in err, err


def test_a_signal_stops_the_search_with_the_steps_so_far(tmp_path: Path) -> None:
    out = tmp_path / "find.json"
    process = subprocess.Popen(
        [*SOURCE, "--find-rate", "--embedded-sink", "--check", "p99<1s", "--rate", "50",
         "--step-duration", "1", "--json", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the first step's line: the search is under way
            if step_lines(line):
                break
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rest.splitlines()[-1] == "qmqp-source: interrupted"
    value = load(out)
    assert value["status"] == "interrupted"
    assert value["find_rate"]["stopped"] == "interrupted"
    steps = value["find_rate"]["steps"]
    # The signal may land after a later step ended too (a slow machine): the answer is
    # the highest rate that held among the steps that ran, and the first was 50.
    assert steps and steps[0]["rate"] == 50
    assert value["find_rate"]["rate"] == max(step["rate"] for step in steps if step["ok"])
