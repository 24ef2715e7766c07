"""qmqp-source --embedded-sink: the zero-setup main job, both sides' counts in agreement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SOURCE = [sys.executable, "-m", "qmqpsource"]


def source(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOURCE, *args], capture_output=True, text=True, timeout=120,
                          env=env)


MARK = "QMQP_TEST_RUN"


def sink_processes(mark: str) -> list[int]:
    """The sinks whose environment has MARK=``mark``: those of one test's run alone (the
    machine is shared: other runs' sinks come and go meanwhile)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if b"qmqpsource.cli.sink" not in file.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as file:
                if f"{MARK}={mark}".encode() in file.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_main_job_counts_agree(tmp_path: Path) -> None:
    mark = str(uuid.uuid4())  # in the environment, which the embedded sink inherits
    out = tmp_path / "r.json"
    done = source("--embedded-sink", "-s", "8", "-m", "600", "-r", "2", "--json", str(out),
                  env={**os.environ, MARK: mark})
    assert done.returncode == 0, done.stderr
    value = json.loads(out.read_text())
    assert value["counts"]["accepted"] == 600
    assert value["sink"]["messages"] == 600
    assert value["sink"]["recipients"] == 1200
    assert value["sink"]["replies"]["K"] == 600
    assert "sink: 600 connections, 600 messages, 1200 recipients" in done.stderr
    assert "(agrees)" in done.stderr
    assert sink_processes(mark) == [], "the embedded sink must not outlive the run"


def test_sink_faults_reach_the_source() -> None:
    done = source("--embedded-sink", "--sink-options", "--reject 1", "-m", "3")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("qmqp-source: fatal: unrecoverable error:")


def test_keep_going_against_a_tempfailing_sink(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = source("--embedded-sink", "--sink-options", "--tempfail 0.5 --seed 7", "-A",
                  "-s", "4", "-m", "200", "--json", str(out))
    assert done.returncode == 1
    value = json.loads(out.read_text())
    assert value["counts"]["tempfail"] == value["sink"]["replies"]["Z"] > 0
    assert value["counts"]["accepted"] == value["sink"]["replies"]["K"] > 0
    assert value["counts"]["attempted"] == 200


def test_embedded_sink_refuses_a_target() -> None:
    done = source("--embedded-sink", "127.0.0.1:9")
    assert done.returncode == 1
    assert "--embedded-sink brings its own target" in done.stderr
    done = source("--sink-options", "--reject 1", "127.0.0.1:9")
    assert done.returncode == 1
    assert "--sink-options goes with --embedded-sink" in done.stderr


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ("--json elsewhere.json", "--sink-options: --json is --embedded-sink's own"),
        ("--json=elsewhere.json", "--sink-options: --json is --embedded-sink's own"),
        ("--control-fd 0", "--sink-options: --control-fd is --embedded-sink's own"),
        ("unix:/tmp/x.sock 5",
         "--sink-options: unexpected extra arguments: unix:/tmp/x.sock 5"),
        ("--tempfail", "--sink-options: --tempfail requires an argument"),
        ("-c", "--sink-options: -c does not go with --embedded-sink"),
    ],
)
def test_sink_options_the_sink_cannot_take_are_refused_before_the_run(
    options: str, says: str, tmp_path: Path
) -> None:
    mark = str(uuid.uuid4())
    done = subprocess.run([*SOURCE, "--embedded-sink", "--sink-options", options, "-m", "3"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, MARK: mark})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert done.stderr.startswith("qmqp-source: fatal: --sink-options: ")
    assert not (tmp_path / "elsewhere.json").exists()
    assert sink_processes(mark) == []  # refused before any sink started
