"""What the README tells a newcomer about running our commands, checked by running them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qmqpsource import __version__

README = (Path(__file__).parent.parent / "README.md").read_text()
POSTFIX = {"qmqp-source": "/usr/sbin/qmqp-source", "qmqp-sink": "/usr/sbin/qmqp-sink"}


def module_forms() -> dict[str, str]:
    """The README's table of module forms: command -> module."""
    rows = re.findall(r"^\| `(qmqp-[a-z]+)` \| `python -m ([\w.]+)` \|$", README, re.M)
    return dict(rows)


def test_readme_gives_a_module_form_for_each_command() -> None:
    assert sorted(module_forms()) == ["qmqp-report", "qmqp-sink", "qmqp-source"]


@pytest.mark.parametrize(("command", "module"), sorted(module_forms().items()))
def test_module_forms_run_ours(command: str, module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{command} {__version__}\n", "")
    # Each section's synopsis shows its module form too.
    assert f"python -m {module} [" in README


@pytest.mark.postfix
@pytest.mark.parametrize("command", sorted(POSTFIX))
def test_postfix_commands_refuse_version_as_the_readme_says(command: str) -> None:
    if shutil.which(POSTFIX[command]) is None:
        pytest.skip("Postfix's tools are missing: apt-get install postfix (CI installs it)")
    done = subprocess.run([POSTFIX[command], "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert f"{command}: invalid option -- '-'" in done.stderr
    if command == "qmqp-sink":  # the README quotes what Postfix's sink answers
        assert re.search(r"answers\s+`qmqp-sink: invalid option -- '-'`", README)
