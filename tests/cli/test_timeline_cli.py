"""The timeline of real runs (against the embedded sink), of --workers, and of qmqp-report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qmqpsource.results.timeline import COUNT_KEYS

SOURCE = [sys.executable, "-m", "qmqpsource"]
REPORT = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]


def run(command: list[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def source_json(tmp_path: Path, *args: str, name: str = "r.json") -> dict[str, Any]:
    out = tmp_path / name
    done = run(SOURCE, "--embedded-sink", "--json", out, *args)
    assert done.returncode in (0, 1), done.stderr
    value: dict[str, Any] = json.loads(out.read_text())
    return value


def assert_adds_up(value: dict[str, Any]) -> None:
    timeline = value["timeline"]
    assert timeline, "no timeline"
    for key in COUNT_KEYS:
        assert sum(entry["counts"][key] for entry in timeline) == value["counts"][key], key
    assert sum(e["latency_ms"]["total"]["count"] for e in timeline) == value["counts"]["attempted"]
    step = value["interval_s"]
    for n, entry in enumerate(timeline):
        assert entry["offset_s"] == pytest.approx(n * step, abs=1e-6)
    assert all(e["duration_s"] == step for e in timeline[:-1])
    assert 0 <= timeline[-1]["duration_s"] <= step


def test_a_real_runs_timeline_adds_up_to_its_counts(tmp_path: Path) -> None:
    value = source_json(tmp_path, "-s", "4", "-m", "300")
    assert value["schema"] == "qmqpsource.result/2"
    assert value["interval_s"] == 1.0
    assert sum(e["counts"]["accepted"] for e in value["timeline"]) == 300
    assert_adds_up(value)


def test_failures_with_keep_going_and_a_short_interval(tmp_path: Path) -> None:
    value = source_json(tmp_path, "--sink-options", "--tempfail 0.3 --reject 0.1 --seed 3",
                        "-A", "-s", "4", "-m", "200", "--interval", "0.05")
    assert value["interval_s"] == 0.05
    assert value["counts"]["tempfail"] > 0 and value["counts"]["permfail"] > 0
    assert_adds_up(value)


def test_quiet_keeps_the_step_and_drops_the_progress_lines(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = run(SOURCE, "--embedded-sink", "--json", out, "-q", "--interval", "0.05",
               "--rate", "200", "--duration", "0.5", "-s", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # -q: neither the summary nor a line per interval
    value = json.loads(out.read_text())
    assert value["interval_s"] == 0.05
    assert_adds_up(value)
    loud = run(SOURCE, "--embedded-sink", "--interval", "0.05", "--rate", "200",
               "--duration", "0.3", "-s", "2")
    assert re.search(r"0\.1 s: \d+ messages", loud.stderr), loud.stderr


def test_a_fatal_failure_is_in_the_timeline(tmp_path: Path) -> None:
    value = source_json(tmp_path, "--sink-options", "--reject 1", "-m", "3")
    assert value["status"] == "failed"
    assert value["counts"]["permfail"] == 1
    assert_adds_up(value)


def test_duration_and_rate_cover_the_run(tmp_path: Path) -> None:
    value = source_json(tmp_path, "--rate", "100", "--duration", "1.2", "-s", "2",
                        "--interval", "0.25", "-q")
    assert value["interval_s"] == 0.25
    assert len(value["timeline"]) >= 5  # 1.2 s in steps of 0.25 s
    # Open loop at 100 a second: every full interval has messages in it.
    assert all(e["counts"]["accepted"] > 0 for e in value["timeline"][:4])
    assert_adds_up(value)


def test_workers_merge_their_timelines(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    done = run(SOURCE, "--embedded-sink", "--workers", "2", "-s", "4", "-m", "400",
               "--interval", "0.5", "--json", out)
    assert done.returncode == 0, done.stderr
    # The timeline's step only: the parent sees no live counts to print lines of.
    assert not re.search(r"^qmqp-source: \d+\.\d s: ", done.stderr, re.MULTILINE)
    value = json.loads(out.read_text())
    assert value["workers"] == 2 and value["interval_s"] == 0.5
    assert_adds_up(value)


def test_report_merges_timelines_and_reads_schema_1(tmp_path: Path) -> None:
    a = source_json(tmp_path, "-m", "50", name="a.json")
    b = source_json(tmp_path, "-m", "70", "--interval", "2", name="b.json")
    # Two runs one after the other, against sinks of their own: merged only on demand.
    done = run(REPORT, "-q", "--merge-anyway", "--json", "-", tmp_path / "a.json",
               tmp_path / "b.json")
    assert done.returncode == 0, done.stderr
    merged = json.loads(done.stdout)
    assert merged["interval_s"] == 2.0  # the largest step
    assert merged["counts"]["accepted"] == 120 == a["counts"]["accepted"] + b["counts"]["accepted"]
    assert_adds_up(merged)
    # A file of schema /1 (no timeline) is read; a merge with it has none.
    del a["interval_s"], a["timeline"]
    a["schema"] = "qmqpsource.result/1"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(a))
    done = run(REPORT, "-q", "--merge-anyway", "--json", "-", old, tmp_path / "b.json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["timeline"] == []
    assert json.loads(done.stdout)["schema"] == "qmqpsource.result/2"


def test_report_refuses_a_bad_timeline_in_one_line(tmp_path: Path) -> None:
    value = source_json(tmp_path, "-m", "5")
    value["timeline"][0]["counts"]["accepted"] += 1
    value["timeline"][0]["counts"]["attempted"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(value))
    done = run(REPORT, bad)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert done.stderr.startswith(f"qmqp-report: fatal: {bad}: timeline[0].latency_ms.total:")


@pytest.mark.parametrize("interval", ["0.001", "0", "nan"])
def test_too_short_an_interval_is_refused(interval: str) -> None:
    done = run(SOURCE, "--embedded-sink", "--interval", interval)
    assert done.returncode == 1  # Postfix's usage status, as every usage failure here
    first = done.stderr.splitlines()[0]
    assert first.startswith("qmqp-source: fatal: --interval must be "), done.stderr
    assert "Traceback" not in done.stderr
