"""Against Postfix's own tools: the same request bytes, and real runs against its sink."""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from qmqpsource.protocol import NetstringDecoder, encode_request
from qmqpsource.source.message import build_message, mail_date, recipient_list, system_hostname
from tests.postfix_fixtures import SinkFactory
from tests.postfix_support import free_port
from tests.qmqp_server import qmqp_server

POSTFIX_SOURCE = "/usr/sbin/qmqp-source"
POSTFIX_SINK = "/usr/sbin/qmqp-sink"

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(
        shutil.which(POSTFIX_SOURCE) is None,
        reason="Postfix's qmqp-source is missing: apt-get install postfix (CI installs it)",
    ),
]

OPTION_TABLE = [
    [],
    ["-l", "50"],
    ["-l", "5000", "-r", "5", "-f", "x@y.example", "-t", "z@w.example"],
    ["-M", "[127.0.0.1]", "-l", "2000"],
    ["-M", "[ipv6:::1]"],
    ["-M", "host.example", "-r", "1000", "-l", "100000"],
    ["-f", "a@b", "-t", "only@example.org", "-l", "1"],
]


async def capture(command: list[str], env: dict[str, str] | None = None) -> list[bytes]:
    async with qmqp_server() as server:
        with trio.fail_after(30):
            done = await trio.run_process([*command, server.target], capture_stderr=True,
                                          check=False, env=env)
    assert done.returncode == 0, done.stderr
    return server.raw


def options_of(args: list[str]) -> dict[str, str]:
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    return pairs


def rebuild(raw: bytes, args: list[str]) -> bytes:
    """Our request for ``args``, with the Date and pid that ``raw`` carries."""
    date = re.search(rb"\nDate: ([^\n]*)\n", raw)
    pid = re.search(rb"\nMessage-Id: <(\d+)@", raw)
    options = options_of(args)
    host = options.get("-M", system_hostname())
    default = f"foo@{host}"
    sender = options.get("-f", default)
    recipient = options.get("-t", default)
    length = int(options.get("-l", "1024"))
    # A length shorter than the headers may cut the Date or pid away: then nothing to take.
    message = build_message(
        sender, recipient, length, host,
        date=date.group(1).decode() if date else "",
        pid=int(pid.group(1)) if pid else 0,
    )
    recipients = recipient_list(recipient, int(options.get("-r", "1")))
    return encode_request(message, sender.encode(), [r.encode() for r in recipients])


@pytest.mark.parametrize("args", OPTION_TABLE, ids=lambda a: " ".join(a) or "defaults")
async def test_same_request_bytes_as_postfix(args: list[str]) -> None:
    theirs = await capture([POSTFIX_SOURCE, *args])
    ours = await capture([sys.executable, "-m", "qmqpsource", *args])
    assert len(theirs) == len(ours) == 1
    assert rebuild(theirs[0], args) == theirs[0], "our builder differs from Postfix's bytes"
    assert rebuild(ours[0], args) == ours[0], "our command does not send what the builder builds"
    assert len(ours[0]) == len(theirs[0]) or b"Message-Id" in theirs[0]


def date_of(raw: bytes) -> str:
    found = re.search(rb"\nDate: ([^\n]*)\n", raw)
    assert found is not None, raw[:200]
    return found.group(1).decode()


def instant_of(date: str) -> int:
    parsed = email.utils.parsedate_tz(date)
    assert parsed is not None, date
    return email.utils.mktime_tz(parsed)


# Postfix's qmqp-source cannot be told the time; libfaketime tells it (and ours) a day
# below 10, where %e and %d differ. The time given is local time in the TZ set.
FAKETIME = shutil.which("faketime")
DAY_1 = "2026-12-01 09:05:03"


@pytest.mark.parametrize("tz", ["UTC0", "CET-1", "NST3:30", "IST-5:30", "HST10"])
async def test_date_header_is_postfixs_on_a_day_below_10(
    tz: str, local_zone: Callable[[str], None]
) -> None:
    if FAKETIME is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have faketime installed (apt-get install faketime)")
        pytest.skip("faketime is missing: apt-get install faketime (CI installs it)")
    env = {**os.environ, "TZ": tz}
    theirs = date_of((await capture([FAKETIME, DAY_1, POSTFIX_SOURCE], env))[0])
    ours = date_of((await capture([FAKETIME, DAY_1, sys.executable, "-m", "qmqpsource"],
                                  env))[0])
    assert theirs.startswith("Tue,  1 Dec 2026 "), theirs  # the clock was faked
    # Our formatter, given the instant Postfix's header names, writes the same bytes;
    # and our command's header is our formatter's (the seconds may differ).
    local_zone(tz)
    assert mail_date(instant_of(theirs)) == theirs
    assert mail_date(instant_of(ours)) == ours
    assert ours.startswith("Tue,  1 Dec 2026 ")


DATE_SHAPE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 123]\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\)"
)


async def test_date_header_has_postfixs_shape_today() -> None:
    # Without a faked clock: today's date, in this machine's zone, from both tools.
    theirs = date_of((await capture([POSTFIX_SOURCE]))[0])
    ours = date_of((await capture([sys.executable, "-m", "qmqpsource"]))[0])
    assert DATE_SHAPE.fullmatch(theirs), theirs
    assert DATE_SHAPE.fullmatch(ours), ours
    assert mail_date(instant_of(theirs)) == theirs


def test_decoded_shape_of_a_postfix_request() -> None:
    # Guards rebuild(): a request it could not parse would make the comparison above vacuous.
    raw = encode_request(b"m\n", b"s", [b"r"])
    assert NetstringDecoder(100).feed(raw) == b"2:m\n,1:s,1:r,"


@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_run_against_postfix_sink(family: str, tmp_path: Path, postfix_sink: SinkFactory) -> None:
    endpoint = {
        "inet": None,
        "inet6": f"[::1]:{free_port(socket.AF_INET6)}",
        "unix": f"unix:{tmp_path}/sink.sock",
    }[family]
    sink = postfix_sink(endpoint, backlog=256)
    done = subprocess.run(
        [sys.executable, "-m", "qmqpsource", "-q", "-s", "10", "-m", "2000", "-r", "3", "-c",
         sink.endpoint],
        capture_output=True, check=False, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.endswith(b"2000\r\n")


def test_usage_exit_status_matches_postfix() -> None:
    for args in (["-s", "0", "h"], ["-w", "1", "-R", "1", "h"], []):
        theirs = subprocess.run([POSTFIX_SOURCE, *args], capture_output=True, check=False)
        ours = subprocess.run([sys.executable, "-m", "qmqpsource", *args], capture_output=True,
                              check=False)
        assert theirs.returncode == ours.returncode == 1
        assert theirs.stderr.count(b"\n") == ours.stderr.count(b"\n") == 1
