"""--maildir: durable delivery, K only once the file is in new/, nothing acknowledged lost."""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from qmqpsource.load.embedded import embedded_sink
from qmqpsource.protocol import Status
from qmqpsource.sink.maildir import Maildir, envelope_headers
from tests.sink_support import (
    POSTFIX_SOURCE,
    exchange,
    no_fd_leak,
    parse_reply,
    postfix_source_missing,
    request,
    running_sink,
)

SENDER = b"alice@example.test"
RCPTS = (b"bob@example.test", b"carol@example.test")


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_fd_leak():
        yield


def test_deliver_writes_envelope_then_message(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    name = box.deliver(b"Subject: hi\n\nbody\n", SENDER, RCPTS)
    path = tmp_path / "md" / "new" / name
    assert path.read_bytes() == (
        b"Return-Path: <alice@example.test>\n"
        b"Delivered-To: bob@example.test\n"
        b"Delivered-To: carol@example.test\n"
        b"Subject: hi\n\nbody\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path / "md" / "tmp") == []
    assert (tmp_path / "md" / "cur").is_dir()


def test_null_sender_and_existing_maildir(tmp_path: Path) -> None:
    Maildir(tmp_path / "md")
    box = Maildir(tmp_path / "md")  # reopening is fine
    name = box.deliver(b"x\n", b"", [b"bob@example.test"])
    assert (tmp_path / "md" / "new" / name).read_bytes().startswith(b"Return-Path: <>\n")


def test_names_unique_across_threads(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    names: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(40):
            name = box.deliver(b"m\n", SENDER, RCPTS)
            with lock:
                names.append(name)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(set(names)) == 240
    assert len(os.listdir(tmp_path / "md" / "new")) == 240


def test_failed_delivery_leaves_nothing(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    new = tmp_path / "md" / "new"
    new.rmdir()
    new.write_text("not a directory")
    with pytest.raises(OSError):
        box.deliver(b"m\n", SENDER, RCPTS)
    assert os.listdir(tmp_path / "md" / "tmp") == []


async def test_k_reply_names_the_file(tmp_path: Path) -> None:
    message = b"Subject: kept\n\nkept\n"
    async with running_sink(maildir=str(tmp_path / "md")) as run:
        reply = parse_reply(await exchange(run.target, request(message, SENDER, RCPTS)))
    assert reply.status is Status.OK
    name = reply.text.decode().rsplit(" ", 1)[1]
    stored = (tmp_path / "md" / "new" / name).read_bytes()
    assert stored == envelope_headers(SENDER, RCPTS) + message


async def test_maildir_failure_is_a_tempfail(tmp_path: Path) -> None:
    async with running_sink(maildir=str(tmp_path / "md")) as run:
        new = tmp_path / "md" / "new"
        new.rmdir()
        new.write_text("not a directory")
        reply = parse_reply(await exchange(run.target, request()))
    assert reply.status is Status.TEMPFAIL
    assert b"maildir delivery failed" in reply.text
    assert run.sink.stats.replies_z == 1 and run.sink.stats.replies_k == 0
    assert len(run.log_lines) == 1


@pytest.mark.postfix
async def test_postfix_source_into_maildir_count_exact(tmp_path: Path) -> None:
    reason = postfix_source_missing()
    if reason is not None:
        pytest.skip(reason)
    md = tmp_path / "md"
    async with running_sink(maildir=str(md), backlog=1024) as run:
        with trio.fail_after(120):
            done = await trio.run_process(
                [POSTFIX_SOURCE, "-s", "10", "-m", "2000", "-f", "from@src.test",
                 "-t", "to@dst.test", run.target],
                capture_stderr=True, check=False,
            )
    assert done.returncode == 0, done.stderr
    files = os.listdir(md / "new")
    assert len(files) == 2000
    assert os.listdir(md / "tmp") == []
    assert run.sink.stats.replies_k == 2000
    text = (md / "new" / files[0]).read_bytes()
    assert text.startswith(b"Return-Path: <from@src.test>\nDelivered-To: to@dst.test\nFrom: ")
    assert len(text) == len(b"Return-Path: <from@src.test>\nDelivered-To: to@dst.test\n") + 1024


async def test_nothing_acknowledged_is_lost_on_sigterm_mid_load(tmp_path: Path) -> None:
    md = tmp_path / "md"
    sent: dict[bytes, bytes] = {}  # every message sent, by its Subject
    acked: dict[str, bytes] = {}  # file name from the K reply -> expected file content
    stop_after = 150

    async with embedded_sink(["--maildir", str(md)]) as sink:

        async def session(number: int) -> None:
            for i in range(1000):  # bounded; the sink's stop ends it much sooner
                subject = b"%d-%d" % (number, i)
                message = b"Subject: " + subject + b"\n\n" + b"x" * (i * 37 % 3000) + b"\n"
                sent[subject] = envelope_headers(SENDER, RCPTS) + message
                try:
                    raw = await exchange(sink.target, request(message, SENDER, RCPTS))
                except OSError:
                    return  # refused or reset: the sink is gone
                if not raw:
                    return  # closed without a reply: stopped mid-request
                reply = parse_reply(raw)
                assert reply.status is Status.OK, reply
                acked[reply.text.decode().rsplit(" ", 1)[1]] = sent[subject]
                if len(acked) == stop_after:
                    sink.process.send_signal(signal.SIGTERM)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for number in range(8):
                    nursery.start_soon(session, number)

    assert len(acked) >= stop_after
    new = md / "new"
    for name, content in acked.items():
        assert (new / name).read_bytes() == content  # present and whole
    # Files the client never heard of (stopped before the K went out) are whole too.
    contents = set(sent.values())
    for name in os.listdir(new):
        assert (new / name).read_bytes() in contents
    assert sink.result is not None
    assert sink.result["replies"]["K"] >= len(acked)
    assert sink.returncode == 0
