"""Fuzzing the parsers that read what a peer sends: hypothesis, against plain oracles.

Each parser is fed arbitrary bytes, and bytes built to sit near the valid ones (right
and wrong lengths, leading zeros, missing or wrong separators, cuts anywhere), in
arbitrary splits. Nothing may escape but ProtocolError's subclasses; the outcome must
not depend on the split; and it must equal what a straightforward reference parser,
written from the netstring definition alone, says of the same bytes.

- the client's ReplyParser, and read_reply() over a real socket pair (what reaches the
  user: DeliveryError with Postfix's wording and the right outcome class);
- NetstringDecoder and decode_request as a server uses them (the test server, and
  qmqp-sink, whose request parsing is exactly these two plus private checks);
- decode_netstrings, the splitter under decode_request.
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmqpsource.protocol import (
    MAX_LENGTH_DIGITS,
    NetstringDecoder,
    NetstringFormatError,
    NetstringSizeError,
    NetstringTruncatedError,
    ProtocolError,
    Reply,
    ReplyParser,
    Request,
    RequestError,
    decode_netstrings,
    decode_request,
    encode_request,
    netstring,
)
from qmqpsource.results.outcome import DeliveryError, Outcome
from qmqpsource.source.client import read_reply

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- what to feed ------------------------------------------------------------------------


@st.composite
def near_netstrings(draw: st.DrawFn, payload_size: int = 40) -> bytes:
    """Netstrings, right and wrong: every part may be off, and the whole may be cut."""
    payload = draw(st.binary(max_size=payload_size))
    length = draw(st.one_of(st.just(len(payload)), st.integers(0, payload_size + 5)))
    digits = draw(st.one_of(
        st.just(b"%d" % length),
        st.just(b"0%d" % length),
        st.from_regex(rb"\A[0-9]{0,25}\Z"),
        st.integers(10**18, 10**22).map(lambda n: b"%d" % n),  # around the digit limit
        st.binary(max_size=3),
    ))
    colon = draw(st.sampled_from([b":", b":", b"", b";", b"::"]))
    comma = draw(st.sampled_from([b",", b",", b"", b";", b",,"]))
    data = digits + colon + payload + comma + draw(st.binary(max_size=8))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


peer_bytes = st.one_of(st.binary(max_size=80), near_netstrings())
# 10**30: a limit no length reaches, so that only the digit count stops a digit stream.
limits = st.one_of(st.sampled_from([0, 1, 5, 40, 10240, 10**30]), st.integers(0, 200))


def split(data: bytes, draw: st.DataObject) -> list[bytes]:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8), label="cuts"))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- the oracle --------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What one netstring at the start of a stream that then ends comes to."""

    payload: bytes | None = None  # the payload, when complete
    error: type[ProtocolError] | None = None
    trailing: bytes = b""


def reference(data: bytes, limit: int) -> Parsed:
    """The netstring definition read plainly: ``<digits>:<payload>,``; no leading zero;
    the length refused as soon as its digits exceed ``limit``."""
    digits = b""
    pos = 0
    while True:
        if pos == len(data):
            return Parsed(error=NetstringTruncatedError)
        byte = data[pos : pos + 1]
        pos += 1
        if byte == b":":
            if not digits:
                return Parsed(error=NetstringFormatError)
            break
        if not byte.isdigit() or digits == b"0":
            return Parsed(error=NetstringFormatError)
        digits += byte
        if len(digits) > MAX_LENGTH_DIGITS:
            return Parsed(error=NetstringFormatError)
        if int(digits) > limit:
            return Parsed(error=NetstringSizeError)
    end = pos + int(digits)
    if len(data) <= end:
        return Parsed(error=NetstringTruncatedError)
    if data[end : end + 1] != b",":
        return Parsed(error=NetstringFormatError)
    return Parsed(payload=data[pos:end], trailing=data[end + 1 :])


def reference_reply(data: bytes, limit: int) -> Parsed:
    parsed = reference(data, limit)
    if parsed.payload == b"":  # no status byte: not a reply
        return Parsed(error=NetstringFormatError)
    return parsed


def reference_netstrings(data: bytes) -> list[bytes] | None:
    """A buffer of nothing but complete netstrings; None when it is not that."""
    items = []
    while data:
        parsed = reference(data, 10**30)
        if parsed.payload is None:
            return None
        items.append(parsed.payload)
        data = parsed.trailing
    return items


# -- the client's reply parser -----------------------------------------------------------


def parse_reply(chunks: list[bytes], limit: int) -> Parsed:
    parser = ReplyParser(limit)
    try:
        for chunk in chunks:
            reply = parser.feed(chunk)
            if reply is not None:
                return Parsed(payload=reply.raw)
        parser.eof()
    except ProtocolError as exc:
        return Parsed(error=type(exc))
    raise AssertionError("eof() of an unfinished reply did not raise")


@FUZZ
@given(peer_bytes, limits, st.data())
def test_reply_parser_any_bytes_any_split(data: bytes, limit: int, draw: st.DataObject) -> None:
    expected = reference_reply(data, limit)
    expected = Parsed(payload=expected.payload, error=expected.error)  # trailing: not kept
    assert parse_reply([data], limit) == expected
    assert parse_reply(split(data, draw), limit) == expected
    assert parse_reply([data[i : i + 1] for i in range(len(data))], limit) == expected


@FUZZ
@given(st.binary(min_size=1, max_size=300), st.binary(max_size=20), st.data())
def test_reply_parser_reads_every_real_reply(raw: bytes, tail: bytes, draw: st.DataObject) -> None:
    data = netstring(raw) + tail
    assert parse_reply(split(data, draw), 10240) == Parsed(payload=raw)


@FUZZ
@given(peer_bytes, st.data())
def test_error_text_does_not_depend_on_the_split(data: bytes, draw: st.DataObject) -> None:
    def text(chunks: list[bytes]) -> str | None:
        parser = ReplyParser(40)
        try:
            for chunk in chunks:
                if parser.feed(chunk) is not None:
                    return None
            parser.eof()
        except ProtocolError as exc:
            return str(exc)
        raise AssertionError("unreachable")

    assert text([data]) == text(split(data, draw))


async def _read_over_socket(chunks: list[bytes], limit: int) -> Reply | DeliveryError:
    client, server = socket.socketpair()
    with client, server:
        client.setblocking(False)
        server.setblocking(False)

        async def serve() -> None:
            for chunk in chunks:
                await trio.lowlevel.wait_writable(server)
                server.send(chunk)
                await trio.lowlevel.checkpoint()
            server.shutdown(socket.SHUT_WR)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                try:
                    return await read_reply(client, limit)
                except DeliveryError as exc:
                    return exc


@settings(max_examples=150, deadline=None)
@given(peer_bytes, st.sampled_from([5, 40, 10240]), st.data())
async def test_read_reply_over_a_socket(data: bytes, limit: int, draw: st.DataObject) -> None:
    got = await _read_over_socket(split(data, draw), limit)
    expected = reference_reply(data, limit)
    if expected.payload is not None:
        assert got == Reply(expected.payload)
        return
    assert isinstance(got, DeliveryError)
    if expected.error is NetstringTruncatedError:
        assert (got.outcome, str(got)) == (
            Outcome.LOST_CONNECTION, "lost connection while receiving server reply"
        )
    elif expected.error is NetstringSizeError:
        assert (got.outcome, str(got)) == (
            Outcome.PROTOCOL_ERROR, "netstring size exceeds limit while receiving server reply"
        )
    else:
        assert got.outcome is Outcome.PROTOCOL_ERROR
        assert str(got).startswith("netstring format error")
        assert str(got).endswith(" while receiving server reply")


# -- the server's side: one request netstring, then its content --------------------------


def server_reads(chunks: list[bytes], limit: int) -> tuple[Request | type[ProtocolError], bytes]:
    """As a server reads a request: feed until done, then decode; EOF if never done."""
    decoder = NetstringDecoder(limit)
    try:
        payload = None
        for chunk in chunks:
            if payload is None:
                payload = decoder.feed(chunk)
            else:
                decoder.feed(chunk)  # after the comma: kept as trailing
        if payload is None:
            decoder.eof()
            raise AssertionError("eof() of an unfinished netstring did not raise")
        return decode_request(payload), decoder.trailing
    except ProtocolError as exc:
        return type(exc), b""


@st.composite
def near_requests(draw: st.DrawFn) -> bytes:
    """Real requests, then maybe damaged: a byte changed, bytes cut out or added."""
    addresses = st.binary(max_size=12)
    data = bytearray(encode_request(
        draw(st.binary(max_size=60)), draw(addresses),
        draw(st.lists(addresses, min_size=1, max_size=4)),
    ))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["change", "cut", "insert"]))
        if how == "change":
            data[at] = draw(st.sampled_from(b"0159:,x\n"))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 4))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        if not data:
            break
    return bytes(data)


# Outer netstrings around any number of inner items, good or not: requests with too
# few items, or with one bad item among good ones.
inner_items = st.lists(
    st.one_of(st.binary(max_size=12).map(netstring), near_netstrings(10)), max_size=4
).map(lambda items: netstring(b"".join(items)))
request_bytes = st.one_of(
    st.binary(max_size=120), near_netstrings(120), near_requests(), inner_items
)


@FUZZ
@given(request_bytes, st.sampled_from([0, 50, 10**6, 10**30]), st.data())
def test_server_request_parsing_any_bytes_any_split(
    data: bytes, limit: int, draw: st.DataObject
) -> None:
    whole = server_reads([data], limit)
    assert server_reads(split(data, draw), limit) == whole
    assert server_reads([data[i : i + 1] for i in range(len(data))], limit) == whole
    outer = reference(data, limit)
    if outer.payload is None:
        assert whole == (outer.error, b"")
        return
    items = reference_netstrings(outer.payload)
    if items is None or len(items) < 3:
        assert whole == (RequestError, b"")
    else:
        assert whole == (Request(items[0], items[1], tuple(items[2:])), outer.trailing)


@FUZZ
@given(st.binary(max_size=200), st.binary(max_size=20),
       st.lists(st.binary(max_size=20), min_size=1, max_size=6), st.data())
def test_every_real_request_is_read_back(
    message: bytes, sender: bytes, recipients: list[bytes], draw: st.DataObject
) -> None:
    data = encode_request(message, sender, recipients)
    assert server_reads(split(data, draw), len(data)) == (
        Request(message, sender, tuple(recipients)), b""
    )


@FUZZ
@given(st.one_of(
    st.binary(max_size=80),
    st.lists(near_netstrings(20), max_size=5).map(b"".join),
    st.lists(st.binary(max_size=20), max_size=5).map(lambda xs: b"".join(map(netstring, xs))),
))
def test_decode_netstrings_matches_the_reference(data: bytes) -> None:
    expected = reference_netstrings(data)
    try:
        got: list[bytes] | None = decode_netstrings(data)
    except NetstringFormatError:
        got = None
    assert got == expected
