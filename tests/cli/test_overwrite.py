"""An output that is one of the inputs is refused, by the file's identity (device and
inode), before any work: qmqp-source --json against -F, qmqp-report --json and --html
against its FILEs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qmqpsource.cli import report as report_cli
from qmqpsource.cli import source as source_cli
from qmqpsource.cli.overwrite import overwritten

REPORT = [sys.executable, "-m", "qmqpsource.cli.report"]
NOWHERE = "127.0.0.1:1"  # a run let through fails at once, and writes its --json
MESSAGE = "Subject: kept\n\nThe message -F sends.\n"


@pytest.fixture(scope="module")
def result_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real result, as qmqp-source writes it (a short run against its own sink)."""
    path = tmp_path_factory.mktemp("result") / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "qmqpsource", "-q", "--embedded-sink", "-m", "3",
         "--json", str(path)],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return path.read_bytes()


def _fatal(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)  # type: ignore[operator]
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    return err


def _same_file(tmp_path: Path, how: str, name: str) -> Path:
    """Another name for the file ``name``: the path itself, a symlink or a hard link."""
    original = tmp_path / name
    if how == "path":
        return tmp_path / "." / name
    other = tmp_path / f"{how}-{name}"
    if how == "symlink":
        other.symlink_to(original.name)
    else:
        os.link(original, other)
    return other


@pytest.mark.parametrize("how", ["path", "symlink", "hardlink"])
def test_source_json_onto_the_message_file_is_refused(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    message = tmp_path / "msg.eml"
    message.write_text(MESSAGE)
    json_path = _same_file(tmp_path, how, "msg.eml")
    err = _fatal(source_cli.main, ["-F", str(message), "--json", str(json_path), NOWHERE],
                 capsys)
    assert err == f"qmqp-source: fatal: --json {json_path} would overwrite -F {message}\n"
    assert message.read_text() == MESSAGE


def test_source_json_elsewhere_is_written(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "msg.eml").write_text(MESSAGE)
    err = _fatal(source_cli.main, ["-F", str(tmp_path / "msg.eml"), "--json",
                                   str(tmp_path / "r.json"), NOWHERE], capsys)
    assert err.startswith("qmqp-source: fatal: connect") and "Connection refused" in err
    assert (tmp_path / "r.json").exists() and (tmp_path / "msg.eml").read_text() == MESSAGE


@pytest.mark.parametrize("option", ["--html", "--json"])
@pytest.mark.parametrize("how", ["path", "symlink", "hardlink"])
def test_report_output_onto_an_input_is_refused(
    tmp_path: Path, option: str, how: str, result_file: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("run1.json", "run2.json"):
        (tmp_path / name).write_bytes(result_file)
    output = _same_file(tmp_path, how, "run1.json")
    run1, run2 = str(tmp_path / "run1.json"), str(tmp_path / "run2.json")
    err = _fatal(report_cli.main, ["-q", option, str(output), run2, run1], capsys)
    assert err == f"qmqp-report: fatal: {option} {output} would overwrite the input {run1}\n"
    assert (tmp_path / "run1.json").read_bytes() == result_file


def test_report_stdout_appended_to_an_input_is_refused(tmp_path: Path,
                                                       result_file: bytes) -> None:
    run1 = tmp_path / "run1.json"
    run1.write_bytes(result_file)
    with run1.open("ab") as appended:  # qmqp-report --json - run1.json >> run1.json
        done = subprocess.run([*REPORT, "-q", "--json", "-", str(run1)], stdout=appended,
                              stderr=subprocess.PIPE, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"qmqp-report: fatal: --json - (stdout) would overwrite the input {run1}\n"
    )
    assert run1.read_bytes() == result_file


def test_report_html_onto_its_stdin_is_refused(tmp_path: Path, result_file: bytes) -> None:
    run1 = tmp_path / "run1.json"
    run1.write_bytes(result_file)
    with run1.open("rb") as stdin:  # qmqp-report --html run1.json - < run1.json
        done = subprocess.run([*REPORT, "-q", "--html", str(run1), "-"], stdin=stdin,
                              capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"qmqp-report: fatal: --html {run1} would overwrite the input - (stdin)\n"
    )
    assert run1.read_bytes() == result_file


def test_only_plain_files_are_compared(tmp_path: Path) -> None:
    # A terminal or a pipe is both stdin and stdout; /dev/null is written, never replaced.
    assert overwritten([("--json", "-")], [("the input", "-")]) is None
    assert overwritten([("--json", "/dev/null")], [("-F", "/dev/null")]) is None
    assert overwritten([("--json", str(tmp_path / "new.json"))],
                       [("-F", str(tmp_path / "new.json"))]) is None  # nothing there yet
