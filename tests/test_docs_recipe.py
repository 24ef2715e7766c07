"""The manual's nox recipe (docs/nox-load-tests.md), run as a project would run it: its
code block written out as a noxfile.py, and `nox -s load` against a qmqp-sink, once where
the checks hold and once with sink faults that make one fail. Nothing may outlive it: the
recipe stops its server."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_support import page, python_blocks


def recipe() -> str:
    [noxfile] = [block for block in python_blocks(page("nox-load-tests.md"))
                 if "@nox.session" in block]
    return noxfile


def processes_naming(text: str) -> list[str]:
    """The command lines of this machine's processes that name ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        line = " ".join(arg.decode(errors="replace") for arg in args)
        if text in line:
            found.append(line)
    return found


@pytest.mark.parametrize(
    ("posargs", "holds", "says"),
    [
        ([], True, r"check failed<1%: 0%, held\n"),
        (["--", "--tempfail", "0.5", "--seed", "1"], False,
         r"qmqp-source: 1 of 2 checks failed: failed<1%\n"
         r"nox > Command qmqpsource source .* failed with exit code 3\n"),
    ],
    ids=["checks hold", "a check fails"],
)
def test_the_recipe_fails_the_session_on_a_failed_check(
    tmp_path: Path, posargs: list[str], holds: bool, says: str
) -> None:
    if importlib.util.find_spec("nox") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have nox (the dev extra installs it)")
        pytest.skip("nox is missing: pip install nox (the dev extra has it)")
    (tmp_path / "noxfile.py").write_text(recipe())
    scratch = tmp_path / "tmp"  # the recipe's temporary folder, and so its ready file's
    scratch.mkdir()
    # qmqp-sink and qmqp-source from the environment that runs the tests.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-f", "noxfile.py", "-s", "load", *posargs],
        cwd=tmp_path, env={**os.environ, "PATH": path, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False,
    )
    assert (done.returncode == 0) is holds, done.stdout
    assert re.search(says, done.stdout), done.stdout
    assert ("nox > Session load was successful" in done.stdout) is holds
    assert processes_naming(str(scratch)) == []  # the server was stopped
    assert list(scratch.iterdir()) == []  # and its folder removed
    assert not (tmp_path / ".nox").exists()  # python=False: no virtualenv made
