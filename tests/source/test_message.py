"""Postfix's generated message, byte for byte."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmqpsource.protocol import encode_request
from qmqpsource.source.message import (
    HostnameError,
    build_message,
    check_myhostname,
    default_address,
    mail_date,
    recipient_list,
)

DATE = "Tue, 24 Nov 2026 15:53:59 +0000 (UTC)"

# Captured from Postfix 3.7's qmqp-source -l 300 -r 3 -f a@b -M myhost.example (pid 2915).
POSTFIX_REQUEST = (
    b"380:300:From: <a@b>\nTo: <foo@myhost.example>\nDate: Tue, 24 Nov 2026 15:53:59 +0000 (UTC)"
    b"\nMessage-Id: <2915@myhost.example>\n\nX\nXX\nXXX\nXXXX\nXXXXX\nXXXXXX\nXXXXXXX\nXXXXXXXX\n"
    b"XXXXXXXXX\nXXXXXXXXXX\nXXXXXXXXXXX\nXXXXXXXXXXXX\nXXXXXXXXXXXXX\nXXXXXXXXXXXXXX\n"
    b"XXXXXXXXXXXXXXX\nXXXXXXXXXXXXXXXX\nXXXXXXXXXXXXXXXXX\nXXXXXXXXXXXXX\n,3:a@b,"
    b"19:0foo@myhost.example,19:1foo@myhost.example,19:2foo@myhost.example,,"
)


def postfix_reference(sender: str, recipient: str, length: int, host: str, pid: int) -> bytes:
    """Postfix's loop, transcribed literally: one X line at a time, then cut."""
    buf = bytearray(
        f"From: <{sender}>\nTo: <{recipient}>\nDate: {DATE}\n"
        f"Message-Id: <{pid}@{host}>\n\n".encode()
    )
    n = 1
    while len(buf) < length:
        buf += b"X" * min(n, 79) + b"\n"
        n += 1
    buf[length - 1] = ord("\n")
    return bytes(buf[:length])


def test_same_request_as_postfix() -> None:
    message = build_message("a@b", "foo@myhost.example", 300, "myhost.example", date=DATE, pid=2915)
    recipients = [r.encode() for r in recipient_list("foo@myhost.example", 3)]
    assert encode_request(message, b"a@b", recipients) == POSTFIX_REQUEST


@pytest.mark.parametrize("length", [1, 2, 10, 50, 117, 118, 119, 1024, 5000, 100_000])
def test_lengths_table(length: int) -> None:
    message = build_message("s@h", "r@h", length, "h", date=DATE, pid=7)
    assert len(message) == length
    assert message.endswith(b"\n")
    assert message == postfix_reference("s@h", "r@h", length, "h", 7)


def test_length_shorter_than_headers_cuts_into_them() -> None:
    message = build_message("s@h", "r@h", 20, "h", date=DATE, pid=7)
    assert message == b"From: <s@h>\nTo: <r@\n"


def test_body_lines_grow_to_79_and_stay() -> None:
    message = build_message("s@h", "r@h", 20_000, "h", date=DATE, pid=7)
    body = message.split(b"\n\n", 1)[1].split(b"\n")[:-1]
    assert [len(line) for line in body[:79]] == list(range(1, 80))
    assert {len(line) for line in body[79:-1]} == {79}


@given(st.integers(1, 30_000), st.sampled_from(["a@b", "sender@example.org"]))
def test_matches_reference(length: int, sender: str) -> None:
    assert build_message(sender, "t@x", length, "x", date=DATE, pid=12345) == postfix_reference(
        sender, "t@x", length, "x", 12345
    )


def test_defaults_use_hostname_and_pid() -> None:
    message = build_message("foo@h.example", "foo@h.example", 1024, "h.example")
    assert re.search(rb"^Message-Id: <\d+@h\.example>$", message, re.M)
    assert default_address("h.example") == "foo@h.example"


# 2026-12-01 09:05:03 UTC: a Tuesday, a day of the month below 10.
DECEMBER_1 = calendar.timegm((2026, 12, 1, 9, 5, 3, 0, 0, 0))


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC0", "Tue,  1 Dec 2026 09:05:03 +0000 (UTC)"),
        ("CET-1", "Tue,  1 Dec 2026 10:05:03 +0100 (CET)"),
        ("NST3:30", "Tue,  1 Dec 2026 05:35:03 -0330 (NST)"),
        ("IST-5:30", "Tue,  1 Dec 2026 14:35:03 +0530 (IST)"),
        # West of UTC past midnight: the day before, the last of November.
        ("HST10", "Mon, 30 Nov 2026 23:05:03 -1000 (HST)"),
        # East of UTC past midnight, and a year's end: the offset counts the day.
        ("LINT-14", "Tue,  1 Dec 2026 23:05:03 +1400 (LINT)"),
    ],
)
def test_mail_date_is_postfixs_format(
    local_zone: Callable[[str], None], tz: str, expected: str
) -> None:
    # Postfix's mail_date(): "%a, %e %b %Y %H:%M:%S ", "%+03d%02d", " (%Z)"; %e pads the
    # day with a space. Bytes checked against Postfix's own tool in test_postfix_compat.
    local_zone(tz)
    assert mail_date(DECEMBER_1) == expected


def test_mail_date_across_a_year_end(local_zone: Callable[[str], None]) -> None:
    new_year = calendar.timegm((2027, 1, 1, 0, 30, 0, 0, 0, 0))
    local_zone("EST5")
    assert mail_date(new_year) == "Thu, 31 Dec 2026 19:30:00 -0500 (EST)"
    local_zone("JST-9")
    assert mail_date(new_year) == "Fri,  1 Jan 2027 09:30:00 +0900 (JST)"


def test_generated_message_carries_the_date_of_now(local_zone: Callable[[str], None]) -> None:
    local_zone("UTC0")
    before = int(time.time())
    message = build_message("s@h", "r@h", 1024, "h")
    after = int(time.time())
    found = re.search(rb"^Date: (.*)$", message, re.M)
    assert found is not None
    assert found.group(1).decode() in {mail_date(t) for t in range(before, after + 1)}


def test_recipient_list() -> None:
    assert recipient_list("t@x", 1) == ["t@x"]
    assert recipient_list("t@x", 3) == ["0t@x", "1t@x", "2t@x"]
    assert len(recipient_list("t@x", 1000)) == 1000
    with pytest.raises(ValueError):
        recipient_list("t@x", 0)


@pytest.mark.parametrize(
    "name", ["foo", "a_b", "mail.example.org", "[127.0.0.1]", "[ipv6:::1]", "[IPv6:2001:db8::1]",
             "x1.y2", "a" * 63]
)
def test_myhostname_accepted(name: str) -> None:
    check_myhostname(name)


@pytest.mark.parametrize(
    ("name", "wording"),
    [("123", "bad hostname"), ("1.2.3.4", "bad hostname"), ("-foo", "bad hostname"),
     ("a..b", "bad hostname"), ("foo.", "bad hostname"), ("bad host", "bad hostname"),
     ("a" * 64, "bad hostname"), ("", "bad hostname"), ("[::1]", "bad address literal"),
     ("[999.1.1.1]", "bad address literal"), ("[1.2.3]", "bad address literal"),
     ("[ipv6:zz]", "bad address literal"), ("[1.2.3.4", "bad address literal")],
)
def test_myhostname_refused_as_postfix(name: str, wording: str) -> None:
    with pytest.raises(HostnameError, match=re.escape(f"{wording}: {name}")):
        check_myhostname(name)
