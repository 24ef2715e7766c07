"""The real-Postfix test support works, shown with Postfix's own qmqp-source only."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import trio

from tests.postfix_fixtures import SinkFactory, qmqpd_target
from tests.postfix_support import (
    QMQP_SOURCE,
    PostfixInstance,
    free_port,
    ipv6_loopback_available,
    postfix_tools_missing,
    processes_in_group,
)

pytestmark = pytest.mark.postfix

SENDER = "sender@example.org"
RECIPIENT = "rcpt@example.org"
# qmqp-source -r 3 numbers the recipients.
RECIPIENTS = ["0rcpt@example.org", "1rcpt@example.org", "2rcpt@example.org"]


def qmqp_source(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QMQP_SOURCE), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_qmqp_source_into_qmqpd(postfix_qmqpd: PostfixInstance, family: str) -> None:
    target = qmqpd_target(postfix_qmqpd, family)
    done = qmqp_source("-m", "5", "-r", "3", "-f", SENDER, "-t", RECIPIENT, target)
    assert done.returncode == 0, done.stderr
    held = postfix_qmqpd.wait_held(5, timeout=10)
    assert len(held) == 5
    for message in held:
        assert message["queue_name"] == "hold"
        assert message["sender"] == SENDER
        assert sorted(message["recipients"]) == RECIPIENTS


def test_queue_is_empty_for_each_test(postfix_qmqpd: PostfixInstance) -> None:
    assert postfix_qmqpd.held() == []


@pytest.mark.parametrize("length", [4096, 10 * 1024 * 1024])
def test_message_size_and_text(postfix_qmqpd: PostfixInstance, length: int) -> None:
    done = qmqp_source(
        "-m", "1", "-l", str(length), "-f", SENDER, f"127.0.0.1:{postfix_qmqpd.port}"
    )
    assert done.returncode == 0, done.stderr
    [message] = postfix_qmqpd.wait_held(1, timeout=10)
    text = postfix_qmqpd.message_text(message["queue_id"])
    # Postfix adds its Received: header in front of the message as sent.
    received, _, sent = text.partition(b"\nFrom: ")
    assert received.startswith(b"Received: ")
    assert len(sent) + len(b"From: ") == length
    assert sent.startswith(f"<{SENDER}>\n".encode())
    assert sent.endswith(b"X\n")
    # Postfix reports sizes as if lines ended in CRLF.
    assert message["message_size"] == len(text) + text.count(b"\n")


def test_wait_held_is_bounded(postfix_qmqpd: PostfixInstance) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 messages held"):
        postfix_qmqpd.wait_held(1, timeout=0.2)


async def test_wait_held_async(postfix_qmqpd: PostfixInstance) -> None:
    target = f"127.0.0.1:{postfix_qmqpd.port}"
    with trio.fail_after(30):
        done = await trio.run_process([str(QMQP_SOURCE), "-m", "3", "-s", "3", target])
        assert done.returncode == 0
        held = await postfix_qmqpd.wait_held_async(3)
    assert len(held) == 3


def test_instance_stops_and_cleans_up_when_the_test_fails() -> None:
    reason = postfix_tools_missing()
    if reason is not None:
        pytest.skip(reason)
    with pytest.raises(ZeroDivisionError), PostfixInstance(ipv6=False) as instance:
        folder, master, port = instance.dir, instance.master_pid, instance.port
        assert master is not None
        assert processes_in_group(master)
        1 / 0  # noqa: B018 (a failing test body)
    assert not folder.exists()
    assert master is not None
    assert processes_in_group(master) == []
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def sink_endpoint(kind: str, tmp_path: Path) -> str:
    if kind == "inet":
        return f"127.0.0.1:{free_port()}"
    if kind == "inet6":
        if not ipv6_loopback_available():
            pytest.skip("IPv6 loopback is not available here")
        return f"[::1]:{free_port(socket.AF_INET6)}"
    return f"unix:{tmp_path / 'qmqp.sock'}"


@pytest.mark.parametrize("kind", ["inet", "inet6", "unix"])
def test_qmqp_source_into_qmqp_sink(postfix_sink: SinkFactory, tmp_path: Path, kind: str) -> None:
    sink = postfix_sink(sink_endpoint(kind, tmp_path), backlog=50)
    done = qmqp_source("-m", "200", "-s", "5", "-r", "2", sink.endpoint)
    assert done.returncode == 0, done.stderr


def test_sink_default_endpoint_and_close(postfix_sink: SinkFactory) -> None:
    sink = postfix_sink()
    assert sink.endpoint == f"127.0.0.1:{sink.port}"
    sink.close()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", sink.port))


def test_free_port_is_bindable() -> None:
    for family, host in [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]:
        if family == socket.AF_INET6 and not ipv6_loopback_available():
            continue
        port = free_port(family)
        with socket.socket(family) as s:
            s.bind((host, port))
