"""Postfix's address syntax, to connect to (the source's target) and to listen on (the sink's)."""

from __future__ import annotations

import pytest

from qmqpsource.addresses import AddressError, InetAddress, UnixAddress, parse_address
from qmqpsource.sink import ListenError, parse_endpoint


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("localhost", InetAddress("localhost", "628")),
        ("localhost:7000", InetAddress("localhost", "7000")),
        ("inet:localhost:7000", InetAddress("localhost", "7000")),
        ("inet:mail.example.org", InetAddress("mail.example.org", "628")),
        ("127.0.0.1:25", InetAddress("127.0.0.1", "25")),
        ("[::1]:7000", InetAddress("::1", "7000")),
        ("[::1]", InetAddress("::1", "628")),
        ("inet:[::1]:7000", InetAddress("::1", "7000")),
        ("[127.0.0.1]:9", InetAddress("127.0.0.1", "9")),
        ("localhost:qmqp", InetAddress("localhost", "qmqp")),
        ("unix:/tmp/qmqp.sock", UnixAddress("/tmp/qmqp.sock")),
        ("unix:relative/path", UnixAddress("relative/path")),
    ],
)
def test_target_table(target: str, parsed: object) -> None:
    assert parse_address(target) == parsed


@pytest.mark.parametrize(
    ("target", "wording"),
    [
        (":7000", "missing host information"),
        ("", "missing host information"),
        ("host:", "missing port information"),
        ("::1", "valid hostname or network address required"),
        ("[::1", "missing ']'"),
        ("[::1]x", "garbage after ']'"),
        ("host:0", "port out of range"),
        ("host:65536", "port out of range"),
        ("unix:", "missing pathname"),
        ("unix:/" + "x" * 200, "unix-domain name too long"),
    ],
)
def test_bad_targets(target: str, wording: str) -> None:
    with pytest.raises(AddressError, match=wording):
        parse_address(target)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:628", InetAddress("127.0.0.1", "628")),
        ("inet:127.0.0.1:0", InetAddress("127.0.0.1", "0")),
        (":628", InetAddress("", "628")),
        ("inet::628", InetAddress("", "628")),
        ("[::1]:25", InetAddress("::1", "25")),
        ("localhost:2525", InetAddress("localhost", "2525")),
        ("unix:/tmp/x.sock", UnixAddress("/tmp/x.sock")),
    ],
)
def test_parse_endpoint(text: str, expected: object) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "host:port", "host:70000", "::1:25", "[::1]25", "unix:", "[::1"]
)
def test_parse_endpoint_errors(text: str) -> None:
    with pytest.raises(ListenError):
        parse_endpoint(text)


@pytest.mark.parametrize("listen", [False, True])
@pytest.mark.parametrize("path", ["/tmp/qmqp.sock", "./qmqp.sock", "run/qmqp.sock:628"])
def test_a_bare_path_is_told_to_write_unix(path: str, listen: bool) -> None:
    # Resolved as a host name, it said "Name or service not known" (or, to listen,
    # "missing port information"): no word of what was wrong.
    with pytest.raises(AddressError) as info:
        parse_address(path, listen=listen)
    assert str(info.value) == (f"{path}: valid hostname or network address required; "
                               f"for a UNIX-domain socket, write unix:{path}")
