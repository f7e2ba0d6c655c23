"""The protocol core, with no sockets: table-driven codec cases fed at every split point."""

import json
import struct

import pytest
from hypothesis import given, strategies as st

from socketlab.protocol import (
    MAX_CONTENT_LENGTH,
    NEED_DATA,
    REQUIRED_HEADERS,
    LocalProtocolError,
    Message,
    MessageDecoder,
    RemoteProtocolError,
    encode_message,
    json_message,
)



def decode_all(data: bytes, chunks) -> list[Message]:
    """Feed ``data`` cut into ``chunks`` (a list of lengths); then EOF; return every message."""
    decoder = MessageDecoder()
    messages, offset = [], 0
    for size in [*chunks, len(data)]:
        if size:  # an empty chunk would mean end of stream
            decoder.receive_data(data[offset : offset + size])
            offset += size
        while (message := decoder.next_message()) is not NEED_DATA:
            messages.append(message)
        if offset >= len(data):
            break
    decoder.receive_data(b"")
    assert decoder.next_message() is NEED_DATA
    return messages


def splits(data: bytes):
    """Every way to cut ``data`` in two, plus one byte at a time (wsproto's split test)."""
    for cut in range(len(data) + 1):
        yield [cut]
    yield [1] * len(data)


def raw_message(header, content: bytes = b"") -> bytes:
    raw = json.dumps(header, ensure_ascii=False).encode()
    return struct.pack(">H", len(raw)) + raw + content


GOOD = [
    pytest.param(json_message({"action": "search", "value": "ring"}, byteorder="little"), id="json"),
    pytest.param(json_message({"value": "\U0001f436 ñ 漢字"}, byteorder="big"), id="json-emoji"),
    pytest.param(json_message({"value": "üñí"}, byteorder="big", encoding="utf-16"), id="json-utf16"),
    pytest.param(encode_message(b"", content_type="binary/x", content_encoding="binary",
                                byteorder="little"), id="empty-content"),
    pytest.param(encode_message(bytes(range(256)) * 3, content_type="binary/custom-client-binary-type",
                                content_encoding="binary", byteorder="network"), id="binary"),
    pytest.param(encode_message(b"\x01\x02", content_type="binary/x; dtype=int16",
                                content_encoding="binary", byteorder="big",
                                extra={"x-stats": {"count": 1}}), id="extra-header"),
]


@pytest.mark.parametrize("wire", GOOD)
def test_every_split_gives_the_same_message(wire):
    expected = decode_all(wire, [len(wire)])
    assert len(expected) == 1
    for chunks in splits(wire):
        assert decode_all(wire, chunks) == expected


def test_many_messages_in_one_chunk_and_across_chunks():
    wires = [param.values[0] for param in GOOD]
    stream = b"".join(wires)
    one = [decode_all(w, [len(w)])[0] for w in wires]
    assert decode_all(stream, [len(stream)]) == one
    assert decode_all(stream, [7] * (len(stream) // 7 + 1)) == one


def test_json_content_is_decoded_with_the_declared_encoding():
    [message] = decode_all(json_message({"value": "üñí"}, byteorder="big", encoding="utf-16"), [])
    assert message.content_encoding == "utf-16"
    assert message.content.startswith(b"\xff\xfe") or message.content.startswith(b"\xfe\xff")
    assert message.json() == {"value": "üñí"}


def test_header_fields_and_content_type_parameters():
    [message] = decode_all(GOOD[-1].values[0], [])
    assert message.byteorder == "big"
    assert message.media_type == "binary/x"
    assert message.params == {"dtype": "int16"}
    assert message.header["x-stats"] == {"count": 1}
    assert message.content == b"\x01\x02"


@given(
    content=st.binary(max_size=2048),
    content_type=st.text(min_size=1, max_size=40),
    byteorder=st.sampled_from(["little", "big", "network"]),
    extra=st.dictionaries(st.text(max_size=10).filter(lambda k: k not in REQUIRED_HEADERS),
                          st.one_of(st.integers(), st.text(max_size=20), st.none()), max_size=4),
    cut=st.integers(min_value=0),
)
def test_round_trip_property(content, content_type, byteorder, extra, cut):
    wire = encode_message(content, content_type=content_type, content_encoding="binary",
                          byteorder=byteorder, extra=extra)
    [message] = decode_all(wire, [cut % (len(wire) + 1)])
    assert message.content == content
    assert message.header == {"byteorder": byteorder, "content-type": content_type,
                              "content-encoding": "binary", "content-length": len(content), **extra}


def header(**changes):
    h = {"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8",
         "content-length": 0}
    h.update(changes)
    return {k: v for k, v in h.items() if v is not ...}


BAD = [
    (b"\x00\x00", "header length 0 is outside"),
    (b"\xff\xff", "header length 65535 is outside"),
    (struct.pack(">H", 4) + b"\xff\xfe{}", "header is not UTF-8"),
    (struct.pack(">H", 4) + b"{{}}", "header is not valid JSON"),
    (raw_message([1, 2]), "header must be a JSON object, got list [1, 2]"),
    *[(raw_message(header(**{name: ...})), f"missing required header {name!r}")
      for name in REQUIRED_HEADERS],
    (raw_message(header(**{"content-length": -1})), "content-length must be a non-negative integer, got -1"),
    (raw_message(header(**{"content-length": "5"})), "got '5'"),
    (raw_message(header(**{"content-length": True})), "got True"),
    (raw_message(header(**{"content-length": MAX_CONTENT_LENGTH + 1})),
     f"content-length {MAX_CONTENT_LENGTH + 1} is over the limit"),
    (raw_message(header(byteorder="middle")), "got 'middle'"),
    (raw_message(header(**{"content-type": 7})), "content-type must be a non-empty string, got 7"),
    (raw_message(header(**{"content-encoding": ""})), "content-encoding must be a non-empty string"),
]


@pytest.mark.parametrize(("wire", "error"), BAD)
def test_bad_input_names_the_bad_value(wire, error):
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    with pytest.raises(RemoteProtocolError, match=error.replace("[", r"\[").replace("]", r"\]")):
        decoder.next_message()


def test_over_limit_length_is_refused_before_any_content_arrives():
    decoder = MessageDecoder(max_content_length=1000)
    decoder.receive_data(raw_message(header(**{"content-length": 1001})))
    with pytest.raises(RemoteProtocolError, match="content-length 1001 is over the limit of 1000"):
        decoder.next_message()  # no content byte was sent: refused on the header alone


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"\x00", "the 2-byte header length"),
        (struct.pack(">H", 50) + b"{", "a 50-byte header"),
        (raw_message(header(**{"content-length": 9}), b"abc"), "9 content bytes"),
    ],
)
def test_end_of_stream_inside_a_message_is_an_error(wire, error):
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    assert decoder.next_message() is NEED_DATA
    decoder.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match=f"connection closed while waiting for {error}"):
        decoder.next_message()


def test_data_after_end_of_stream_is_our_mistake():
    decoder = MessageDecoder()
    decoder.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="after end of stream"):
        decoder.receive_data(b"x")


def test_encoder_refuses_what_the_decoder_would_refuse():
    with pytest.raises(LocalProtocolError, match="over the limit of 10 bytes"):
        encode_message(b"x" * 11, content_type="binary/x", content_encoding="binary",
                       byteorder="big", max_content_length=10)
    with pytest.raises(LocalProtocolError, match="got 'sideways'"):
        encode_message(b"", content_type="binary/x", content_encoding="binary", byteorder="sideways")
    with pytest.raises(LocalProtocolError, match="header of .* bytes is over the limit"):
        encode_message(b"", content_type="x" * 20000, content_encoding="binary", byteorder="big")


@pytest.mark.parametrize(
    ("content", "encoding", "content_type", "error"),
    [
        (b"\xff", "utf-8", "text/json", "content is not valid 'utf-8'"),
        (b"{}", "klingon", "text/json", "content-encoding 'klingon' is not a text encoding"),
        (b"{nope", "utf-8", "text/json", "content is not valid JSON"),
        (b"{}", "utf-8", "binary/x", "expected text/json content, got 'binary/x'"),
    ],
)
def test_bad_json_content_names_the_problem(content, encoding, content_type, error):
    message = Message(header(**{"content-type": content_type, "content-encoding": encoding,
                                "content-length": len(content)}), content)
    with pytest.raises(RemoteProtocolError, match=error):
        message.json()


def test_malformed_content_type_parameter():
    message = Message(header(**{"content-type": "binary/x; dtype"}), b"")
    with pytest.raises(RemoteProtocolError, match="malformed content-type parameter 'dtype'"):
        message.params


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@given(_JSON_VALUES, st.sampled_from(["", " ", "\n", "\t \r\n"]), st.sampled_from(["", " ", "\r\n"]),
       st.sampled_from(["", "x", ",", "}", "]", " 1", "{}"]))
def test_loads_is_json_s_decode_with_limits_whatever_surrounds_the_value(value, before, after, junk):
    """``protocol.loads`` takes the scanner's short cut only for a value that fills the text:
    with whitespace around it, or anything after it, it says what ``json`` says."""
    from socketlab.protocol import loads
    text = before + json.dumps(value) + after + junk
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(RemoteProtocolError) as refused:
            loads(text)
        assert str(exc) in str(refused.value)
        return
    assert loads(text) == expected
