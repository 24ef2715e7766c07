"""The sans-IO core: netstrings and QMQP, every malformed case, fed in every split."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmqpsource.protocol import (
    NetstringDecoder,
    NetstringFormatError,
    NetstringSizeError,
    NetstringTruncatedError,
    ProtocolError,
    Reply,
    ReplyParser,
    RequestError,
    Status,
    decode_netstrings,
    decode_request,
    encode_reply,
    encode_request,
    netstring,
)

addresses = st.binary(max_size=60)


def test_netstring_encoding() -> None:
    assert netstring(b"") == b"0:,"
    assert netstring(b"hello") == b"5:hello,"
    assert netstring(b"a,b:c") == b"5:a,b:c,"


def test_request_layout_matches_qmqp() -> None:
    request = encode_request(b"Hi\n", b"a@b", [b"c@d", b"e@f"])
    inner = b"3:Hi\n,3:a@b,3:c@d,3:e@f,"
    assert request == b"%d:%s," % (len(inner), inner)


def test_request_needs_a_recipient() -> None:
    with pytest.raises(ValueError):
        encode_request(b"x", b"a", [])


@given(st.binary(max_size=300), addresses, st.lists(addresses, min_size=1, max_size=5))
def test_request_round_trip(message: bytes, sender: bytes, recipients: list[bytes]) -> None:
    raw = encode_request(message, sender, recipients)
    payload = NetstringDecoder(len(raw)).feed(raw)
    assert payload is not None
    request = decode_request(payload)
    assert request.message == message
    assert request.sender == sender
    assert list(request.recipients) == recipients


@given(st.binary(max_size=200), st.data())
def test_decoder_any_split(payload: bytes, data: st.DataObject) -> None:
    raw = netstring(payload) + b"trailing"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    decoder = NetstringDecoder(10_000)
    results = []
    start = 0
    for cut in [*cuts, len(raw)]:
        results.append(decoder.feed(raw[start:cut]))
        start = cut
    done = [r for r in results if r is not None]
    assert done == [payload]
    assert decoder.done
    assert decoder.trailing == b"trailing"
    decoder.eof()


@pytest.mark.parametrize(
    "raw",
    [b":", b"x:", b"5x", b"-1:", b" 5:hello,", b"5:hello;", b"05:hello,", b"00:,", b"5;hello,",
     b"1" * 25 + b":"],
)
def test_decoder_format_errors(raw: bytes) -> None:
    with pytest.raises(NetstringFormatError):
        NetstringDecoder(10**30).feed(raw)


def test_decoder_refuses_oversize_before_payload() -> None:
    decoder = NetstringDecoder(100)
    decoder.feed(b"10")
    with pytest.raises(NetstringSizeError) as info:
        decoder.feed(b"1")  # 101 > 100, known before any ':' or payload
    assert info.value.length == 101


def test_decoder_limit_is_inclusive() -> None:
    assert NetstringDecoder(5).feed(b"5:hello,") == b"hello"


@pytest.mark.parametrize("raw", [b"", b"5", b"5:", b"5:hel", b"5:hello"])
def test_decoder_truncated(raw: bytes) -> None:
    decoder = NetstringDecoder(100)
    assert decoder.feed(raw) is None
    with pytest.raises(NetstringTruncatedError):
        decoder.eof()


@pytest.mark.parametrize(
    ("raw", "status", "text"),
    [(b"3:Kok,", Status.OK, b"ok"), (b"5:Zbusy,", Status.TEMPFAIL, b"busy"),
     (b"3:Dno,", Status.PERMFAIL, b"no"), (b"2:Xy,", Status.UNKNOWN, b"y"),
     (b"1:K,", Status.OK, b"")],
)
def test_reply_classes(raw: bytes, status: Status, text: bytes) -> None:
    reply = ReplyParser().feed(raw)
    assert reply == Reply(raw[raw.index(b":") + 1 : -1])
    assert reply.status is status
    assert reply.text == text


def test_empty_reply_is_a_protocol_error_not_stale_bytes() -> None:
    parser = ReplyParser()
    with pytest.raises(NetstringFormatError, match="empty reply"):
        parser.feed(b"0:,")


def test_reply_size_limit() -> None:
    assert ReplyParser(limit=10240).feed(netstring(b"K" * 10240)) is not None
    with pytest.raises(NetstringSizeError):
        ReplyParser(limit=10240).feed(b"10241:")


@given(st.binary(max_size=64))
def test_reply_parser_never_raises_anything_else(data: bytes) -> None:
    parser = ReplyParser(limit=50)
    try:
        parser.feed(data)
        parser.eof()
    except ProtocolError:
        pass


@given(st.sampled_from([Status.OK, Status.TEMPFAIL, Status.PERMFAIL]), st.binary(max_size=50))
def test_reply_round_trip(status: Status, text: bytes) -> None:
    reply = ReplyParser().feed(encode_reply(status, text))
    assert reply is not None
    assert (reply.status, reply.text) == (status, text)


def test_encode_reply_refuses_unknown() -> None:
    with pytest.raises(ValueError):
        encode_reply(Status.UNKNOWN, b"")


@pytest.mark.parametrize(
    "payload",
    [b"", b"1:a,", b"1:a,1:b,", b"1:a,1:b,1:c", b"2:a,", b"x:a,1:b,1:c,", b"01:a,1:b,1:c,"],
)
def test_malformed_requests(payload: bytes) -> None:
    with pytest.raises(RequestError):
        decode_request(payload)


@given(st.binary(max_size=100))
def test_decode_request_only_raises_request_error(payload: bytes) -> None:
    with contextlib.suppress(RequestError):
        decode_request(payload)


def test_decode_netstrings_list() -> None:
    assert decode_netstrings(b"0:,1:a,2:bc,") == [b"", b"a", b"bc"]


@given(st.binary(max_size=80), st.integers(1, 100))
def test_whole_reply_fast_path_agrees_with_incremental(data: bytes, limit: int) -> None:
    """Fed whole, or a byte at a time (never the fast path), the outcome is the same."""

    def outcome(chunks: list[bytes]) -> object:
        parser = ReplyParser(limit)
        try:
            for chunk in chunks:
                reply = parser.feed(chunk)
                if reply is not None:
                    return reply
            parser.eof()
        except ProtocolError as exc:
            return type(exc)
        return None

    whole = outcome([data])
    drip = outcome([bytes([b]) for b in data])
    assert whole == drip


def test_fast_path_respects_limit() -> None:
    with pytest.raises(NetstringSizeError):
        ReplyParser(limit=2).feed(b"3:Kok,")
