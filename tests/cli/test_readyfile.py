"""qmqp-sink --ready-file: the listening addresses, in a file that appears whole once the
sink listens, checked at the start, removed at exit if it is still ours; written through
symlinks; ReadyFile itself."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from qmqpsource.cli import readyfile
from qmqpsource.cli.outfile import OutputError
from qmqpsource.cli.readyfile import ReadyFile
from qmqpsource.cli.sink import main
from qmqpsource.protocol import Status
from tests.sink_support import exchange, ipv6_available, parse_reply, reaped, request, stopped

SINK = [sys.executable, "-m", "qmqpsource.cli.sink"]


async def _wait_for_file(path: Path, proc: trio.Process) -> list[str]:
    ready = trio.Path(path)
    with trio.fail_after(30):
        while not await ready.exists():
            assert proc.returncode is None, "the sink exited before it listened"
            await trio.sleep(0.02)
    return (await ready.read_text()).splitlines()


async def _run_sink_until_ready(tmp_path: Path, endpoint: str) -> None:
    """Start a sink, read its ready file, load every address in it, stop it."""
    ready = tmp_path / "ready"
    proc = await trio.lowlevel.open_process(
        [*SINK, "--ready-file", str(ready), endpoint, "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    async with reaped(proc):
        addresses = await _wait_for_file(ready, proc)
        expected = {"127.0.0.1:0": r"127\.0\.0\.1:[1-9]\d*", "[::1]:0": r"\[::1\]:[1-9]\d*"}
        pattern = expected.get(endpoint, re.escape(endpoint))
        assert len(addresses) == 1 and re.fullmatch(pattern, addresses[0]), addresses
        # Read the moment it appeared: the sink listened before it wrote the file.
        reply = parse_reply(await exchange(addresses[0], request()))
        assert reply.status is Status.OK
        assert await stopped(proc) == 0
    left = [p.name for p in await trio.Path(tmp_path).iterdir()]
    assert [name for name in left if name != "s.sock"] == []  # removed at exit


async def test_the_file_gives_the_port_the_sink_listens_on(tmp_path: Path) -> None:
    await _run_sink_until_ready(tmp_path, "127.0.0.1:0")


async def test_a_unix_socket_is_given_as_a_target(tmp_path: Path) -> None:
    await _run_sink_until_ready(tmp_path, f"unix:{tmp_path}/s.sock")


async def test_ipv6_is_given_in_brackets(tmp_path: Path) -> None:
    if not ipv6_available():
        pytest.skip("[::1] cannot be bound on this machine (IPv6 is off)")
    await _run_sink_until_ready(tmp_path, "[::1]:0")


def _taken_port() -> socket.socket:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    return taken


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing/ready", "open {path}: No such file or directory"),
        ("folder", "open {path}: Is a directory"),
        ("/dev/null", "open {path}: not a regular file"),
    ],
)
def test_a_bad_path_is_one_line_before_the_sink_listens(
    tmp_path: Path, name: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder").mkdir()
    path = str(tmp_path / name)
    # Its port is taken: a sink that tried to listen first would fail on that instead.
    with _taken_port() as taken, pytest.raises(SystemExit) as exit_info:
        main(["--ready-file", path, f"127.0.0.1:{taken.getsockname()[1]}", "5"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"qmqp-sink: fatal: --ready-file: {says.format(path=path)}\n"


def test_an_empty_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--ready-file", "", "127.0.0.1:0", "5"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("qmqp-sink: fatal: --ready-file wants a path, not ''; usage: ")
    assert err.count("\n") == 1


def test_a_sink_that_cannot_listen_leaves_the_file_there_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file of another sink, which listens there: a second sink given the same path
    # by mistake, failing to bind, used to remove it (and the first one's script lost it).
    ready = tmp_path / "ready"
    ready.write_text("127.0.0.1:6280\n")
    with _taken_port() as taken, pytest.raises(SystemExit) as exit_info:
        main(["--ready-file", str(ready), f"127.0.0.1:{taken.getsockname()[1]}", "5"])
    assert exit_info.value.code == 1
    assert "Address already in use" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["ready"]
    assert ready.read_text() == "127.0.0.1:6280\n"


async def test_a_symlink_is_written_through_and_left_in_place(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "ready"
    link.symlink_to(elsewhere / "sink.addr")  # nothing there yet
    proc = await trio.lowlevel.open_process(
        [*SINK, "--ready-file", str(link), "127.0.0.1:0", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    async with reaped(proc):
        addresses = await _wait_for_file(link, proc)
        assert link.is_symlink()  # the target was written, not the link replaced
        assert (elsewhere / "sink.addr").read_text().splitlines() == addresses
        assert await stopped(proc) == 0
    assert link.is_symlink() and link.readlink() == elsewhere / "sink.addr"
    assert list(elsewhere.iterdir()) == []  # the file it wrote, removed at exit


@pytest.mark.parametrize("device", ["/dev/null", "fifo"])
def test_a_symlink_to_a_device_is_refused_and_kept(
    tmp_path: Path, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # As /dev/stdout is a symlink (to a terminal or a pipe): run as root, the sink used
    # to remove it for everyone.
    if device == "fifo":
        device = str(tmp_path / "fifo")
        os.mkfifo(device)
    link = tmp_path / "ready"
    link.symlink_to(device)
    with _taken_port() as taken, pytest.raises(SystemExit) as exit_info:
        main(["--ready-file", str(link), f"127.0.0.1:{taken.getsockname()[1]}", "5"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"qmqp-sink: fatal: --ready-file: open {link}: not a regular file\n"
    )
    assert link.is_symlink() and str(link.readlink()) == device


def test_a_sink_that_cannot_write_the_file_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(readyfile, "write_all", disk_full)
    ready = tmp_path / "ready"
    with pytest.raises(SystemExit) as exit_info:
        # -x bounds the test: a sink that kept serving would exit 0 then.
        main(["-x", "60", "--ready-file", str(ready), "127.0.0.1:0", "5"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == f"qmqp-sink: fatal: --ready-file: write {ready}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_write_puts_one_address_a_line_whole(tmp_path: Path) -> None:
    ready = ReadyFile.at(str(tmp_path / "ready"))
    assert list(tmp_path.iterdir()) == []  # checked, nothing left
    ready.write(["0.0.0.0:6280", "[::]:6280"])
    assert (tmp_path / "ready").read_text() == "0.0.0.0:6280\n[::]:6280\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ready"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt, MemoryError])
def test_no_temporary_file_is_left_by_an_interrupted_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    def interrupted(fd: int, data: bytes) -> None:
        raise failure()

    ready = ReadyFile.at(str(tmp_path / "ready"))
    monkeypatch.setattr(readyfile, "write_all", interrupted)
    with pytest.raises(failure):
        ready.write(["127.0.0.1:6280"])
    assert list(tmp_path.iterdir()) == []


def test_remove_takes_only_the_file_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    ready = ReadyFile.at(str(path))
    ready.write(["127.0.0.1:6280"])
    ready.remove()
    assert not path.exists()
    ready.write(["127.0.0.1:6280"])
    path.unlink()
    path.write_text("another sink's\n")  # replaced since: not ours to remove
    ready.remove()
    assert path.read_text() == "another sink's\n"
    ready.write(["127.0.0.1:6280"])
    path.unlink()
    path.write_text("127.0.0.1:6280\n")  # another sink's that says the same: still not ours
    ready.remove()
    assert path.read_text() == "127.0.0.1:6280\n"


def test_a_folder_that_takes_no_file_is_refused_at_the_start(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="wants a path"):
        ReadyFile.at("")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"open {blocker}/ready: Not a directory"):
        ReadyFile.at(str(blocker / "ready"))
