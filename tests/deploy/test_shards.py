"""deploy/'s Jobs as processes on this machine: the load Job's command line, read from its
manifest, run as SHARDS qmqp-source processes at once, each with only the environment a
pod gets (the manifest's variables and its index), against one qmqp-sink; then the report
Job's script on their results. The merge must add up, and agree with the sink's counts.

Where root may make network namespaces, each shard runs in one of its own, as on a host of
its own (it reaches the sink through a UNIX socket, which a namespace does not hide);
elsewhere all run on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import (
    INDEX,
    LOAD_JOB,
    REPORT_JOB,
    command_line,
    environment,
    expand,
    mount_path,
)

SHARDS = 4
MESSAGES = 2000
SESSIONS = 8
TIMEOUT = 120  # a bound on each process, not a timed assertion
RUN_ID = "test-shards"
# Set when the test starts the pods: far enough ahead for all of them to be up.
START_AT = ""
LEAD = timedelta(seconds=8)


def bin_path() -> str:
    """PATH as the image has it: our commands, then the system's."""
    return os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def pod_environment(target: str, index: int) -> dict[str, str]:
    """The manifest's variables with this test's values (each one the manifest sets, no
    other), the index Kubernetes adds, and PATH."""
    env = environment(LOAD_JOB)
    ours = {"QMQP_TARGET": target, "SHARD_COUNT": str(SHARDS), "MESSAGES": str(MESSAGES),
            "SESSIONS": str(SESSIONS), "START_AT": START_AT, "RUN_ID": RUN_ID}
    assert set(ours) == set(env)
    return {**ours, INDEX: str(index), "PATH": bin_path()}


def pod_command(env: dict[str, str], results: Path) -> list[str]:
    """The container's command line as Kubernetes expands it, the volume's mount here."""
    mount = mount_path(LOAD_JOB)
    return [expand(word, env).replace(mount, str(results), 1) for word in command_line(LOAD_JOB)]


def netns_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True,
                          timeout=30, check=False)
    return done.returncode == 0


def start_sink(folder: Path, endpoint: str) -> tuple[subprocess.Popen[bytes], str]:
    ready = folder / "sink.addr"
    sink = subprocess.Popen(
        [sys.executable, "-m", "qmqpsource.cli.sink", "--json", str(folder / "sink.json"),
         "--ready-file", str(ready), endpoint, "1024"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while not ready.exists():
        assert sink.poll() is None and time.monotonic() < deadline, "the sink did not listen"
        time.sleep(0.02)
    return sink, ready.read_text().split()[0]


def run_shards(target: str, results: Path, prefix: list[str]) -> None:
    """Every pod at once, as parallelism asks, all with one START_AT; each must exit 0 (no
    message failed)."""
    global START_AT
    START_AT = (datetime.now(UTC) + LEAD).isoformat()
    pods = [subprocess.Popen([*prefix, *pod_command(env, results)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for env in (pod_environment(target, index) for index in range(SHARDS))]
    for index, pod in enumerate(pods):
        output, _ = pod.communicate(timeout=TIMEOUT)
        assert pod.returncode == 0, f"shard {index}: {output.decode(errors='replace')}"


def run_report(results: Path) -> subprocess.CompletedProcess[str]:
    mount = mount_path(REPORT_JOB)
    line = [word.replace(mount, str(results)) for word in command_line(REPORT_JOB)]
    env = {"SHARD_COUNT": str(SHARDS), "PATH": bin_path()}
    assert set(environment(REPORT_JOB)) == {"SHARD_COUNT"}
    return subprocess.run(line, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def stop(sink: subprocess.Popen[bytes]) -> None:
    sink.send_signal(signal.SIGTERM)
    sink.wait(timeout=TIMEOUT)


@pytest.mark.once
@pytest.mark.parametrize("hosts", ["loopback", "network namespaces"])
def test_the_shards_of_the_job_add_up(tmp_path: Path, hosts: str) -> None:
    prefix: list[str] = []
    endpoint = "127.0.0.1:0"
    if hosts == "network namespaces":
        if not netns_works():
            pytest.skip("no network namespace can be made here (unshare --net needs root)")
        prefix, endpoint = ["unshare", "--net", "--"], f"unix:{tmp_path / 'sink.sock'}"
    results = tmp_path / "results"
    results.mkdir()
    sink, target = start_sink(tmp_path, endpoint)
    try:
        run_shards(target, results, prefix)
        report = run_report(results)
    finally:
        stop(sink)
    assert report.returncode in (0, 3), report.stderr  # 3: a check of the manifest's failed
    merged = json.loads((results / "merged.json").read_text())
    assert_adds_up(merged, [json.loads(path.read_text())
                            for path in sorted(results.glob("shard-*.json"))])
    held = all(check["ok"] for check in merged["checks"])
    assert (report.returncode == 0) is held and len(merged["checks"]) == 2
    counted = json.loads((tmp_path / "sink.json").read_text())
    assert counted["messages"] == merged["counts"]["accepted"] == MESSAGES
    assert (results / "report.html").is_file()


def assert_adds_up(merged: dict[str, Any], shards: list[dict[str, Any]]) -> None:
    assert [shard["config"]["shard_index"] for shard in shards] == list(range(SHARDS))
    assert {shard["config"]["shard_count"] for shard in shards} == {SHARDS}
    assert sum(shard["counts"]["attempted"] for shard in shards) == MESSAGES
    assert merged["runs"] == SHARDS
    assert merged["run_id"] == RUN_ID
    assert merged["shards"] == {"count": SHARDS, "indices": list(range(SHARDS))}
    starts = {datetime.fromisoformat(shard["started_at"]) for shard in shards}
    assert max(starts) - min(starts) < timedelta(seconds=0.5)  # together, at START_AT
    assert merged["counts"]["attempted"] == merged["counts"]["accepted"] == MESSAGES
