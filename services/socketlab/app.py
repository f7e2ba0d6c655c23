"""The guide's application, with no I/O: requests in, responses out.

Wire-compatible with the guide's reference ``app-server.py`` / ``app-client.py``:

* ``text/json`` ``{"action": "search", "value": V}`` answers ``{"result": ...}`` from
  :data:`SEARCH`, or :data:`NO_MATCH` (``No match for 'V'.``); any other action answers
  :data:`INVALID_ACTION` (``Error: invalid action 'A'.``), in the current reference's words;
* any other binary content is answered with ``b"First 10 bytes of request: " + content[:10]``
  as ``binary/custom-server-binary-type`` (the guide's client sends every action but
  ``search`` that way: ``action + value`` in UTF-8);
* (socketlab's addition) a ``binary/x-socketlab-array`` request is answered with the same
  values packed in the client's declared byte order, and their statistics in the ``x-stats``
  header field.

The contract (h11's, as for the decoder): for any decoded :class:`~socketlab.protocol.Message`,
:func:`respond` returns the answer's bytes or raises
:class:`~socketlab.protocol.RemoteProtocolError`; anything else is a bug. A server answers that
error with :func:`error_response` (the guide's ``{"result": "Error: ..."}`` form) and closes.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from socketlab import arrays
from socketlab.protocol import (
    LocalProtocolError,
    Message,
    RemoteProtocolError,
    encode_message,
    json_message,
)

__all__ = [
    "SEARCH",
    "NO_MATCH",
    "INVALID_ACTION",
    "BINARY_ANSWER_PREFIX",
    "binary_answer",
    "BINARY_REQUEST_TYPE",
    "BINARY_RESPONSE_TYPE",
    "respond",
    "error_response",
    "make_request",
    "describe_response",
    "result_lines",
    "received_line",
    "shown",
    "printable",
    "brief",
    "Narrate",
    "parse_numbers",
    "ArrayDecoder",
]

SEARCH = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}
#: The guide's answers when nothing matches (the current reference's words; an older revision
#: of the guide used double quotes).
NO_MATCH = "No match for '{}'."
INVALID_ACTION = "Error: invalid action '{}'."
BINARY_ANSWER_PREFIX = b"First 10 bytes of request: "
BINARY_REQUEST_TYPE = "binary/custom-client-binary-type"
BINARY_RESPONSE_TYPE = "binary/custom-server-binary-type"

ArrayDecoder = Callable[[Message], Sequence[int | float]]


def _text_answer(request: Any) -> str:
    if not isinstance(request, dict):
        raise RemoteProtocolError(f"request must be a JSON object, got {type(request).__name__}")
    action = request.get("action")
    if action == "search":
        query = request.get("value")
        answer = SEARCH.get(query) if isinstance(query, str) else None  # a list is unhashable
        return answer or NO_MATCH.format(query)
    return INVALID_ACTION.format(action)


def respond(request: Message, *, array_decoder: ArrayDecoder = arrays.decode_array) -> bytes:
    """The wire bytes answering ``request``; raises only :class:`RemoteProtocolError`.

    ``array_decoder`` is :func:`socketlab.arrays.decode_array`; the negative control passes
    :func:`socketlab.arrays.decode_array_naive`. An answer that would break a limit (a
    10 KB latin-1 value quoted back as UTF-8 is over :data:`~socketlab.protocol.MAX_JSON_CONTENT_LENGTH`) is replaced
    by the guide's error form saying so, never by silence.
    """
    try:
        return _answer(request, array_decoder)
    except LocalProtocolError as exc:
        return error_response(f"the answer cannot be sent: {exc}")


#: The longest reason an error answer carries, in characters: a reason may quote what the peer
#: sent, and the answer must stay within the text/json limit whatever it quotes.
MAX_REASON = 2048


def error_response(reason: str) -> bytes:
    """The guide's error form, ``{"result": "Error: REASON"}``, for a request we cannot answer;
    a reason over :data:`MAX_REASON` characters is cut."""
    if len(reason) > MAX_REASON:
        reason = f"{reason[:MAX_REASON]}... ({len(reason)} characters)"
    return json_message({"result": f"Error: {reason}"}, byteorder=sys.byteorder)


#: The wire form of each of :data:`SEARCH`'s answers, a handful of fixed strings, encoded once
#: (a no-match or an error quotes the peer, and is encoded every time).
_FOUND = {answer: json_message({"result": answer}, byteorder=sys.byteorder) for answer in SEARCH.values()}


def _answer(request: Message, array_decoder: ArrayDecoder) -> bytes:
    if request.content_type == "text/json":
        answer = _text_answer(request.json())
        return _FOUND.get(answer) or json_message({"result": answer}, byteorder=sys.byteorder)
    if request.media_type == arrays.ARRAY_MEDIA_TYPE:
        dtype = request.params.get("dtype")
        values = array_decoder(request)
        return encode_message(
            arrays.encode_array(values, dtype, request.byteorder),
            content_type=arrays.array_content_type(dtype),
            content_encoding="binary",
            byteorder=request.byteorder,
            extra={"x-stats": arrays.array_stats(values)},
        )
    return encode_message(
        binary_answer(request.content),
        content_type=BINARY_RESPONSE_TYPE,
        content_encoding="binary",
        byteorder=sys.byteorder,
    )


def binary_answer(content: bytes) -> bytes:
    """The content of the guide's answer to binary ``content``."""
    return BINARY_ANSWER_PREFIX + content[:10]


def parse_numbers(text: str, dtype: str) -> list[int | float]:
    """``"1,-2,0x10"`` -> numbers of ``dtype`` (ints accept 0x/0o/0b prefixes)."""
    arrays.array_content_type(dtype)
    convert = float if dtype.startswith("float") else lambda item: int(item, 0)
    try:
        return [convert(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise LocalProtocolError(f"cannot read {text!r} as {dtype} values: {exc}") from None


def make_request(
    action: str,
    value: str,
    *,
    dtype: str = "int32",
    byteorder: str = sys.byteorder,
    json_request: bool = False,
) -> bytes:
    """The wire bytes of the app client's request, as the guide's client makes them.

    ``search`` goes as ``text/json`` ``{"action": "search", "value": VALUE}``; any other action
    as ``binary/custom-client-binary-type`` with ``(action + value)`` in UTF-8. socketlab's
    additions: ``stats`` sends VALUE (comma-separated numbers) as a numeric array of ``dtype``
    packed in ``byteorder``; ``json_request`` sends any action as ``text/json``, so the
    server's invalid-action answer can be seen.
    """
    if action == "search" or json_request:
        return json_message({"action": action, "value": value}, byteorder=sys.byteorder)
    if action == "stats":
        return encode_message(
            arrays.encode_array(parse_numbers(value, dtype), dtype, byteorder),
            content_type=arrays.array_content_type(dtype),
            content_encoding="binary",
            byteorder=byteorder,
        )
    try:
        content = (action + value).encode("utf-8")
    except UnicodeEncodeError as exc:  # an argument that was not valid text to begin with
        raise LocalProtocolError(f"cannot send {exc.object!r} as UTF-8: {exc.reason}") from None
    return encode_message(
        content,
        content_type=BINARY_REQUEST_TYPE,
        content_encoding="binary",
        byteorder=sys.byteorder,
    )


#: Where the guide's running commentary goes (``print``; None: quiet).
Narrate = Callable[[str], None] | None


def shown(data: bytes, limit: int = 512) -> str:
    """``repr(data)`` as the guide prints it, cut after ``limit`` bytes on a long message."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def printable(text: str) -> str:
    """``text`` with every character that could start a line or drive a terminal (control
    characters, line and paragraph separators, bidirectional overrides, ...) escaped as
    ``repr`` escapes it (``\\n``, ``\\x1b``, ``\\u202e``): text from a peer is shown, never obeyed."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_brief = reprlib.Repr()
_brief.maxlevel = 8
_brief.maxlist = _brief.maxdict = 32
_brief.maxstring = _brief.maxother = _brief.maxlong = 512


_STR = frozenset((str,))
_SCALARS = frozenset((str, int, float, bool, type(None)))


def brief(value: Any) -> str:
    """``repr(value)`` for anything a person would type; for what a peer can send, cut (levels,
    items, characters: ``reprlib``) before it is built, so showing a value costs no more
    than decoding it. A request as the guide sends it (a small flat object) takes a short cut to
    the same text: ``reprlib`` sorts the keys and leaves a short value whole."""
    if (type(value) is dict and len(value) <= _brief.maxdict
            and _STR.issuperset(map(type, value)) and _SCALARS.issuperset(map(type, value.values()))):
        text = repr(dict(sorted(value.items())))
        if len(text) <= _brief.maxstring:  # so no key or value in it is long enough to be cut
            return text
    return _brief.repr(value)


def received_line(message: Message, what: str, peer: Any) -> str:
    """The guide's line for a message received (``what``: "request" or "response")."""
    if message.content_type == "text/json":
        return f"Received {what} {brief(message.json())} from {peer}"
    return f"Received {message.content_type} {what} from {peer}"


#: An array answer longer than this is shown cut, as a long message is (:func:`shown`).
SHOWN_VALUES = 32


def result_lines(response: Message) -> list[str]:
    """What a client prints for ``response``: the guide's ``Got result: ...`` for JSON,
    ``Got response: b'...'`` for binary; socketlab's ``Got values``/``Got stats`` for arrays."""
    result = describe_response(response)
    if response.media_type == arrays.ARRAY_MEDIA_TYPE:
        values = result["values"]
        if len(values) > SHOWN_VALUES:  # a person reads the first ones; --json has them all
            shown_values = f"{str(values[:SHOWN_VALUES])[:-1]}, ...] ({len(values)} values)"
        else:
            shown_values = str(values)
        return [f"Got values: {shown_values}", f"Got stats: {result['stats']}"]
    if response.content_type == "text/json":
        return [f"Got result: {printable(str(result))}"]
    return [f"Got response: {result}"]


def describe_response(response: Message) -> Any:
    """The result a client shows: text (or whatever JSON the server put in ``result``),
    ``{"values", "stats"}`` for arrays (``stats`` None if the server sent none), or a bytes
    repr."""
    if response.content_type == "text/json":
        body = response.json()
        if not isinstance(body, dict) or "result" not in body:
            raise RemoteProtocolError(f"text/json response without 'result': {body!r}")
        return body["result"]
    if response.media_type == arrays.ARRAY_MEDIA_TYPE:
        return {"values": arrays.decode_array(response).tolist(),
                "stats": response.header.get("x-stats")}
    return repr(response.content)
