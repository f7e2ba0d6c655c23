"""The guide's application behaviour, request bytes in, response bytes out."""

import sys

import pytest
from hypothesis import given, strategies as st

from lab_tests import guide
from socketlab import app, arrays
from socketlab.protocol import (NEED_DATA, LocalProtocolError, MessageDecoder, RemoteProtocolError,
                                 encode_message, json_message)


FOREIGN = "big" if sys.byteorder == "little" else "little"


def one_message(wire: bytes):
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    message = decoder.next_message()
    assert message is not NEED_DATA and decoder.at_boundary
    return message


def answer(wire: bytes, **kwargs):
    return app.describe_response(one_message(app.respond(one_message(wire), **kwargs)))


@pytest.mark.parametrize(
    ("action", "value", "expected"),
    [
        ("search", "morpheus", guide.MORPHEUS),
        ("search", "ring", guide.RING),
        ("search", guide.DOG_QUERY, guide.DOG),
        ("search", "neo", guide.no_match("neo")),
        # The guide's client sends every other action as binary, ACTION + VALUE...
        ("double", "10", repr(guide.binary_answer(b"double10"))),
        ("binary", "ABCDEFGHIJKLMNOP", repr(guide.binary_answer(b"binaryABCDEFGHIJKLMNOP"))),
    ],
)
def test_the_guides_answers(action, value, expected):
    assert answer(app.make_request(action, value)) == expected


def test_an_action_sent_as_json_gets_the_invalid_action_answer():
    # ...and socketlab's --json-request reaches the server's invalid-action answer.
    wire = app.make_request("double", "10", json_request=True)
    assert answer(wire) == guide.invalid_action("double")


def test_socketlab_answers_are_the_guides_pinned_answers():
    """app.py is socketlab's home of the answers, lab_tests/guide.py the tests' pin of them."""
    assert app.SEARCH == guide.ANSWERS
    assert app.NO_MATCH.format("x") == guide.no_match("x")
    assert app.INVALID_ACTION.format("x") == guide.invalid_action("x")
    assert app.binary_answer(b"0123456789abc") == guide.binary_answer(b"0123456789abc")


def test_response_headers_follow_the_guide():
    response = one_message(app.respond(one_message(app.make_request("search", "ring"))))
    assert response.header["content-type"] == "text/json"
    assert response.header["content-encoding"] == "utf-8"
    assert response.header["byteorder"] == sys.byteorder
    binary = one_message(app.respond(one_message(app.make_request("binary", "x"))))
    assert binary.header["content-type"] == "binary/custom-server-binary-type"
    assert binary.header["content-encoding"] == "binary"


@pytest.mark.parametrize("byteorder", ["little", "big", "network"])
def test_array_answer_is_in_the_clients_order_with_exact_stats(byteorder):
    values = [0x0102, -2, 300]
    response = one_message(app.respond(one_message(
        app.make_request("stats", "0x0102,-2,300", dtype="int16", byteorder=byteorder))))
    assert response.byteorder == byteorder
    assert response.content == arrays.encode_array(values, "int16", byteorder)
    assert response.header["x-stats"] == {"count": 3, "sum": 0x0102 - 2 + 300, "min": -2, "max": 300}


def test_negative_control_naive_server_gets_foreign_arrays_wrong():
    wire = app.make_request("stats", "0x0102,-2,300", dtype="int16", byteorder=FOREIGN)
    right = {"values": [258, -2, 300], "stats": {"count": 3, "sum": 556, "min": -2, "max": 300}}
    assert answer(wire) == right
    assert answer(wire, array_decoder=arrays.decode_array_naive) != right
    native = app.make_request("stats", "0x0102,-2,300", dtype="int16", byteorder=sys.byteorder)
    assert answer(native, array_decoder=arrays.decode_array_naive) == right


def test_a_json_request_that_is_not_an_object_is_refused():
    wire = encode_message(b"[1]", content_type="text/json", content_encoding="utf-8", byteorder="big")
    with pytest.raises(RemoteProtocolError, match=r"request must be a JSON object, got list"):
        app.respond(one_message(wire))


def test_bad_numbers_are_refused_before_sending():
    with pytest.raises(LocalProtocolError, match="cannot read 'one,two' as int32 values"):
        app.make_request("stats", "one,two")


def test_the_commentary_cuts_long_messages_and_keeps_short_ones_whole():
    assert app.shown(b"x" * 512) == repr(b"x" * 512)
    long = b"y" * 4096
    assert app.shown(long) == f"{long[:512]!r}... (4096 bytes)"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=700),
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=600), inner, max_size=40),
    max_leaves=60,
)


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=600)


@given(st.dictionaries(st.text(max_size=600), _scalars, max_size=40) | _json_values)
def test_the_commentarys_short_cut_shows_what_reprlib_shows(value):
    # brief() takes a short cut for flat objects (a guide request); long strings, strings
    # whose repr is long (control characters), nested values and over 32 keys go to reprlib.
    assert app.brief(value) == app._brief.repr(value)


def test_a_found_answer_is_encoded_once_and_equals_a_fresh_encoding():
    request = one_message(app.make_request("search", "morpheus"))
    fresh = json_message({"result": app.SEARCH["morpheus"]}, byteorder=sys.byteorder)
    assert app.respond(request) == fresh
    assert app.respond(request) is app.respond(request)  # the cache answers
