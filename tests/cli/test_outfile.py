"""--json files: plain ones replaced whole, symlinks followed, devices and FIFOs written
directly, the earlier result kept until the end (issue 14, items 1 and 2)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from qmqpsource.cli import outfile
from qmqpsource.cli.outfile import OutputError, OutputFile
from tests.cli.test_report import run_a, write
from tests.qmqp_server import qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]
SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]
REPORT = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]
RUN_LIMIT = 60.0


def device(path: Path, major: int, minor: int) -> Path:
    """A character device of our own (never the machine's /dev/null: a bug would replace it)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


@contextmanager
def fifo_reader(path: Path) -> Iterator[list[bytes]]:
    """A FIFO at ``path`` and a thread that reads it whole once; what it read, after."""
    os.mkfifo(path)
    got: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            got.append(fifo.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield got
    finally:
        reader.join(RUN_LIMIT)


# -- OutputFile itself


def test_plain_file_is_replaced_whole_keeping_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("earlier\n")
    path.chmod(0o640)
    out = OutputFile.at(str(path))
    assert path.read_text() == "earlier\n"  # untouched until the end
    out.write("later\n")
    assert path.read_text() == "later\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_symlink_is_followed_and_its_target_written(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("earlier\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    OutputFile.at(str(link)).write("later\n")
    assert link.is_symlink() and target.read_text() == "later\n"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "new.json")
    OutputFile.at(str(dangling)).write("new\n")
    assert dangling.is_symlink() and (tmp_path / "new.json").read_text() == "new\n"


def test_device_is_written_directly_never_replaced(tmp_path: Path) -> None:
    null = device(tmp_path / "null", 1, 3)
    OutputFile.at(str(null)).write("gone\n")
    assert stat.S_ISCHR(null.stat().st_mode)
    full = device(tmp_path / "full", 1, 7)
    out = OutputFile.at(str(full))
    with pytest.raises(OutputError, match=f"^write {full}: No space left on device$"):
        out.write("x" * 10000)
    assert stat.S_ISCHR(full.stat().st_mode)


def test_fifo_is_written_directly(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    with fifo_reader(path) as got:
        OutputFile.at(str(path)).write("through\n")
    assert got == [b"through\n"] and stat.S_ISFIFO(path.stat().st_mode)


def test_fifo_without_a_reader_fails_at_the_end_after_a_bounded_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outfile, "FIFO_WAIT", 0.1)
    path = tmp_path / "fifo"
    os.mkfifo(path)
    out = OutputFile.at(str(path))  # a reader may still come
    with pytest.raises(OutputError, match="no process reads the FIFO"):
        out.write("nobody\n")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "missing" / "r.json", "No such file or directory"),
        (lambda p: p, "Is a directory"),
    ],
    ids=["missing-folder", "directory"],
)
def test_bad_paths_fail_when_checked(make: Callable[[Path], Path], says: str,
                                     tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=f"^open {make(tmp_path)}: {says}$"):
        OutputFile.at(str(make(tmp_path)))


# -- the three commands


async def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(RUN_LIMIT):
        return await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                      check=False)


def command_writing(kind: str, target: str, path: Path, tmp_path: Path) -> list[str]:
    if kind == "sink":
        return [*SINK, "-x", "0.2", "--json", str(path), "127.0.0.1:0", "5"]
    if kind == "source":
        return [*SOURCE, "-q", "-m", "2", "--json", str(path), target]
    return [*REPORT, "-q", "--json", str(path), str(write(tmp_path / "in.json", run_a()))]


KINDS = ["sink", "source", "report"]


@pytest.mark.parametrize("kind", KINDS)
async def test_commands_write_a_device_directly(kind: str, tmp_path: Path) -> None:
    null = device(tmp_path / "null", 1, 3)
    async with qmqp_server() as server:
        done = await run(command_writing(kind, server.target, null, tmp_path))
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(null.stat().st_mode)  # run as root, --json /dev/null replaced it


@pytest.mark.parametrize("kind", KINDS)
async def test_commands_follow_a_symlink(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    async with qmqp_server() as server:
        done = await run(command_writing(kind, server.target, link, tmp_path))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert isinstance(json.loads(target.read_text()), dict)


@pytest.mark.parametrize("kind", KINDS)
async def test_commands_report_a_full_device_in_one_line(kind: str, tmp_path: Path) -> None:
    full = device(tmp_path / "full", 1, 7)
    async with qmqp_server() as server:
        done = await run(command_writing(kind, server.target, full, tmp_path))
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1
    # The sink prints its summary first, as it always does at the end.
    assert len(lines) == (3 if kind == "sink" else 1) and "Traceback" not in lines, lines
    assert lines[-1].endswith(f"write {full}: No space left on device"), lines
    assert stat.S_ISCHR(full.stat().st_mode)


async def test_source_json_to_dev_full_is_one_line() -> None:
    async with qmqp_server() as server:
        done = await run([*SOURCE, "-q", "-m", "1", "--json", "/dev/full", server.target])
    assert done.returncode == 1
    assert done.stderr == b"qmqp-source: fatal: write /dev/full: No space left on device\n"


async def test_killed_source_leaves_the_earlier_result(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"earlier": true}\n')
    async with qmqp_server(delay=0.05) as server:
        proc = await trio.lowlevel.open_process(
            [*SOURCE, "-q", "--duration", "60", "--json", str(path), server.target]
        )
        try:
            with trio.fail_after(RUN_LIMIT):
                while server.connections < 3:  # noqa: ASYNC110 - polls plain state, bounded
                    await trio.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    assert path.read_text() == '{"earlier": true}\n'
    assert os.listdir(tmp_path) == ["r.json"]


async def test_sink_json_in_a_missing_folder_fails_at_the_start(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "sink.json"
    done = await run([*SINK, "--json", str(path), "127.0.0.1:0", "5"])  # no -x: serves on
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"qmqp-sink: fatal: --json: open {path}: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("command", "option", "prog"),
    [(SOURCE, "--json", "qmqp-source"), ([*SOURCE, "--workers", "2"], "--json", "qmqp-source"),
     (SINK, "--json", "qmqp-sink"), (REPORT, "--json", "qmqp-report"),
     (REPORT, "--html", "qmqp-report")],
)
async def test_an_empty_output_path_is_refused_at_the_start(
    tmp_path: Path, command: list[str], option: str, prog: str
) -> None:
    # Before, each ran (the sink served on) and failed at the end: "rename to : ...".
    rest = ([str(write(tmp_path / "a.json", run_a()))] if command is REPORT
            else ["127.0.0.1:0", "5"] if command is SINK else ["-m", "3", "127.0.0.1:1"])
    done = await run([*command, option, "", *rest])
    assert (done.returncode, done.stderr.decode()) == (
        1, f"{prog}: fatal: {option} wants a path, not ''\n")


def test_output_file_refuses_an_empty_path() -> None:
    with pytest.raises(OutputError, match=r"an empty path \(''\) names no file"):
        OutputFile.at("")
