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
# In the environment of a test's processes, which their children inherit: the embedded
# sink carries its source's mark, and no process of another test or user does.
MARK = "QMQPSOURCE_TEST_MARK"


def source(*args: str, mark: str = "", cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, MARK: mark} if mark else None
    return subprocess.run([*SOURCE, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def marked_processes(mark: str) -> list[int]:
    """This test's live processes, by the mark in their environment. Other sinks may run
    on the machine meanwhile (other tests, nox sessions, other users): a scan for
    qmqp-sink's command line saw them come and go, and failed."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as file:
                environ = file.read().split(b"\0")
        except OSError:
            continue  # another user's, or ended meanwhile
        if needle in environ:
            found.append(int(pid))
    return found


def test_only_the_marked_processes_are_seen(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK: mark}
    # A sink that is not ours, and a process that is: only the second is seen.
    other = subprocess.Popen([sys.executable, "-m", "qmqpsource.cli.sink", "-x", "30",
                              "127.0.0.1:0", "5"], stderr=subprocess.DEVNULL)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    try:
        assert marked_processes(mark) == [ours.pid]
    finally:
        for process in (other, ours):
            process.kill()
            process.wait(timeout=30)
    assert marked_processes(mark) == []


def test_main_job_counts_agree(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    out = tmp_path / "r.json"
    done = source("--embedded-sink", "-s", "8", "-m", "600", "-r", "2", "--json", str(out),
                  mark=mark)
    assert done.returncode == 0, done.stderr
    value = json.loads(out.read_text())
    assert value["counts"]["accepted"] == 600
    assert value["sink"]["messages"] == 600
    assert value["sink"]["recipients"] == 1200
    assert value["sink"]["replies"]["K"] == 600
    assert "sink: 600 connections, 600 messages, 1200 recipients" in done.stderr
    assert "(agrees)" in done.stderr
    assert marked_processes(mark) == [], "the embedded sink must not outlive the run"


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
        ("-x 0.5", "--sink-options: -x does not go with --embedded-sink: the sink runs as "
                   "long as the load"),
    ],
)
def test_sink_options_the_sink_cannot_take_are_refused_before_the_run(
    options: str, says: str, tmp_path: Path
) -> None:
    mark = uuid.uuid4().hex
    done = source("--embedded-sink", "--sink-options", options, "-m", "3", mark=mark,
                  cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert done.stderr.startswith("qmqp-source: fatal: --sink-options: ")
    assert not (tmp_path / "elsewhere.json").exists()
    assert marked_processes(mark) == []  # refused before any sink started
