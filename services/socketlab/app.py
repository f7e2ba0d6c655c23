"""The guide's application, with no I/O: requests in, responses out.

Wire-compatible with the guide's reference ``app-server.py`` / ``app-client.py``:

* ``text/json`` ``{"action": "search", "value": V}`` answers ``{"result": ...}`` from
  :data:`SEARCH`, or ``No match for "V".``; any other action answers
  ``Error: invalid action "A".``
* any other binary content is answered with ``b"First 10 bytes of request: " + content[:10]``
  as ``binary/custom-server-binary-type``;
* (socketlab's addition) a ``binary/x-socketlab-array`` request is answered with the same
  values packed in the client's declared byte order, and their statistics in the ``x-stats``
  header field.
"""

from __future__ import annotations

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
    "BINARY_REQUEST_TYPE",
    "BINARY_RESPONSE_TYPE",
    "respond",
    "make_request",
    "describe_response",
    "parse_numbers",
    "ArrayDecoder",
]

SEARCH = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}
BINARY_REQUEST_TYPE = "binary/custom-client-binary-type"
BINARY_RESPONSE_TYPE = "binary/custom-server-binary-type"

ArrayDecoder = Callable[[Message], Sequence[int | float]]


def _text_answer(request: Any) -> str:
    if not isinstance(request, dict):
        raise RemoteProtocolError(f"request must be a JSON object, got {request!r}")
    action = request.get("action")
    if action == "search":
        query = request.get("value")
        return SEARCH.get(query) or f'No match for "{query}".'
    return f'Error: invalid action "{action}".'


def respond(request: Message, *, array_decoder: ArrayDecoder = arrays.decode_array) -> bytes:
    """The wire bytes answering ``request``. Raises :class:`RemoteProtocolError` on garbage.

    ``array_decoder`` is :func:`socketlab.arrays.decode_array`; the negative control passes
    :func:`socketlab.arrays.decode_array_naive`.
    """
    if request.content_type == "text/json":
        return json_message({"result": _text_answer(request.json())}, byteorder=sys.byteorder)
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
        b"First 10 bytes of request: " + request.content[:10],
        content_type=BINARY_RESPONSE_TYPE,
        content_encoding="binary",
        byteorder=sys.byteorder,
    )


def parse_numbers(text: str, dtype: str) -> list[int | float]:
    """``"1,-2,0x10"`` -> numbers of ``dtype`` (ints accept 0x/0o/0b prefixes)."""
    arrays.array_content_type(dtype)
    convert = float if dtype.startswith("float") else lambda item: int(item, 0)
    try:
        return [convert(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise LocalProtocolError(f"cannot read {text!r} as {dtype} values: {exc}") from None


def make_request(
    action: str, value: str, *, dtype: str = "int32", byteorder: str = sys.byteorder
) -> bytes:
    """The wire bytes of the app client's request.

    ``search`` and any other action but ``binary`` and ``stats`` go as ``text/json`` (so the
    server's invalid-action answer can be seen); ``binary`` sends VALUE's UTF-8 bytes as
    binary content, as the guide's client does; ``stats`` sends VALUE (comma-separated
    numbers) as a numeric array of ``dtype`` packed in ``byteorder``.
    """
    if action == "binary":
        return encode_message(
            value.encode("utf-8"),
            content_type=BINARY_REQUEST_TYPE,
            content_encoding="binary",
            byteorder=sys.byteorder,
        )
    if action == "stats":
        return encode_message(
            arrays.encode_array(parse_numbers(value, dtype), dtype, byteorder),
            content_type=arrays.array_content_type(dtype),
            content_encoding="binary",
            byteorder=byteorder,
        )
    return json_message({"action": action, "value": value}, byteorder=sys.byteorder)


def describe_response(response: Message) -> Any:
    """The result a client shows: text, ``{"values", "stats"}`` for arrays, or a bytes repr."""
    if response.content_type == "text/json":
        body = response.json()
        if not isinstance(body, dict) or "result" not in body:
            raise RemoteProtocolError(f"text/json response without 'result': {body!r}")
        return body["result"]
    if response.media_type == arrays.ARRAY_MEDIA_TYPE:
        return {"values": arrays.decode_array(response), "stats": response.header.get("x-stats")}
    return repr(response.content)
