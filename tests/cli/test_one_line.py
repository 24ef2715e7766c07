"""What a user gave, quoted in our lines (a target, a path, a hostname), cannot break
them in two or forge one: its control characters are escaped, in fatal lines and in
warnings, of every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qmqpsource.wording import one_line

SOURCE = [sys.executable, "-m", "qmqpsource"]
SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]
REPORT = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]
FORGED = "\nqmqp-source: 10000 messages: 10000 accepted"


def test_one_line_escapes_control_characters_only() -> None:
    assert one_line("host ünïcode:628") == "host ünïcode:628"
    assert one_line("a\nb\r\x1b[31mc\td\x00") == "a\\nb\\r\\x1b[31mc\\td\\x00"


@pytest.mark.parametrize(
    ("argv", "lines"),
    [([*SOURCE, "-m", "1", f"unix:/nonexistent/s{FORGED}"], 1),
     ([*SOURCE, "-m", "1", "-C", "2", f"unix:/nonexistent/s{FORGED}"], 2),  # a warning too
     ([*SOURCE, "-m", "1", f"127.0.0.1:628{FORGED}"], 1),
     ([*SOURCE, "-m", "1", "-M", f"a{FORGED}", "127.0.0.1:1"], 1),
     ([*SOURCE, "-m", "1", "--json", f"/nonexistent/a{FORGED}", "127.0.0.1:1"], 1),
     ([*SINK, "--json", f"/nonexistent/a{FORGED}", "127.0.0.1:0", "1"], 1),
     ([*REPORT, f"/nonexistent/a{FORGED}"], 1)],
)
def test_a_newline_in_what_was_given_stays_in_its_line(
    argv: list[str], lines: int, tmp_path: Path
) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    said = done.stderr.splitlines()
    assert len(said) == lines, done.stderr
    assert "\\nqmqp-source: 10000 messages" in said[-1]
    assert said[-1].split(": ")[1] == "fatal"
