"""Our qmqp-source against a real Postfix qmqpd: every envelope checked in the hold queue."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from tests.postfix_fixtures import qmqpd_target
from tests.postfix_support import PostfixInstance

pytestmark = pytest.mark.postfix

SOURCE = [sys.executable, "-m", "qmqpsource"]


def source(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOURCE, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_envelopes_intact(postfix_qmqpd: PostfixInstance, family: str) -> None:
    flag = "-4" if family == "ipv4" else "-6"
    done = source(flag, "-q", "-s", "5", "-m", "40", "-r", "4", "-f", "from@example.org",
                  "-t", "to@example.org", "-l", "3000", qmqpd_target(postfix_qmqpd, family))
    assert done.returncode == 0, done.stderr
    held = postfix_qmqpd.wait_held(40, timeout=30)
    assert len(held) == 40, "nothing lost, nothing doubled"
    for message in held:
        assert message["sender"] == "from@example.org"
        assert sorted(message["recipients"]) == [f"{n}to@example.org" for n in range(4)]
    text = postfix_qmqpd.message_text(held[0]["queue_id"])
    _, _, sent = text.partition(b"\nFrom: ")
    assert len(sent) + len(b"From: ") == 3000


def test_thousand_recipients(postfix_qmqpd: PostfixInstance) -> None:
    done = source("-q", "-m", "2", "-r", "1000", "-t", "r@example.org",
                  qmqpd_target(postfix_qmqpd, "ipv4"))
    assert done.returncode == 0, done.stderr
    held = postfix_qmqpd.wait_held(2, timeout=30)
    for message in held:
        assert Counter(message["recipients"]) == Counter(
            f"{n}r@example.org" for n in range(1000)
        )


def test_ten_mib_messages(postfix_qmqpd: PostfixInstance) -> None:
    length = 10 * 1024 * 1024
    done = source("-q", "-s", "2", "-m", "2", "-l", str(length),
                  qmqpd_target(postfix_qmqpd, "ipv4"))
    assert done.returncode == 0, done.stderr
    held = postfix_qmqpd.wait_held(2, timeout=60)
    assert len(held) == 2
    for message in held:
        text = postfix_qmqpd.message_text(message["queue_id"])
        _, _, sent = text.partition(b"\nFrom: ")
        assert len(sent) + len(b"From: ") == length
