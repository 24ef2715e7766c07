"""qmqpsource COMMAND [ARGS]...: the one name no one can mistake for Postfix's commands,
running ours whatever comes first on PATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qmqpsource import __version__

# The module form of the qmqpsource command, as its console script runs it.
QMQPSOURCE = [sys.executable, "-m", "qmqpsource.cli"]


def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = None if path is None else {"PATH": path}
    return subprocess.run([*QMQPSOURCE, *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def test_each_command_runs_as_its_own_program() -> None:
    for command, prog in [("source", "qmqp-source"), ("sink", "qmqp-sink"),
                          ("report", "qmqp-report")]:
        done = run(command, "--version")
        assert (done.returncode, done.stdout, done.stderr) == (0, f"{prog} {__version__}\n", "")


def test_a_load_through_it_with_postfixs_commands_first_on_path(tmp_path: Path) -> None:
    # A PATH whose qmqp-source and qmqp-sink are not ours cannot change what runs.
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("qmqp-source", "qmqp-sink"):
        (fake / name).write_text("#!/bin/sh\necho not ours >&2\nexit 99\n")
        (fake / name).chmod(0o755)
    done = run("source", "--embedded-sink", "-s", "4", "-m", "50", path=f"{fake}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert "50 messages: 50 accepted" in done.stderr and "not ours" not in done.stderr


def test_arguments_and_errors_are_the_commands_own() -> None:
    done = run("source", "-m", "0", "127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr.startswith("qmqp-source: fatal: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(("args", "status", "out", "err"), [
    ((), 1, "", "usage: qmqpsource {source,sink,report}"),
    (("--help",), 0, "usage: qmqpsource {source,sink,report}", ""),
    (("--version",), 0, f"qmqpsource {__version__}\n", ""),
    (("bogus",), 1, "", "qmqpsource: fatal: no such command: 'bogus'; usage: "),
])
def test_its_own_usage(args: tuple[str, ...], status: int, out: str, err: str) -> None:
    done = run(*args)
    assert done.returncode == status
    assert done.stdout.startswith(out) and done.stderr.startswith(err)
    if "--help" in args:
        assert all(f"  {name} " in done.stdout for name in ("source", "sink", "report"))
