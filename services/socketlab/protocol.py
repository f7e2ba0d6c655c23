"""The guide's application protocol, with no I/O.

A message on the wire is::

    +-------------------+-----------------------+------------------------+
    | 2 bytes, ">H":    | JSON header, UTF-8,   | content,               |
    | header length     | header length bytes   | content-length bytes   |
    +-------------------+-----------------------+------------------------+

The header is a JSON object with four required fields: ``byteorder``, ``content-type``,
``content-encoding`` and ``content-length``. Other fields are allowed and kept.

The contract at the edge (h11's): whatever bytes a peer sends, :meth:`MessageDecoder.next_message`
returns a :class:`Message` or :data:`NEED_DATA`, or raises :class:`RemoteProtocolError`; so do
:meth:`Message.text` and :meth:`Message.json`. Any other exception is a bug. The checks sit where
the data enters: the header and content length limits, JSON nesting depth and number size
(:func:`loads`), text that must round-trip to UTF-8 (no lone surrogates), and a closed list of
content-encodings (:data:`CONTENT_ENCODINGS`).

:class:`MessageDecoder` is incremental: feed it bytes in any chunking with
:meth:`~MessageDecoder.receive_data` and take complete messages from
:meth:`~MessageDecoder.next_message`, which returns :data:`NEED_DATA` until one is complete.
:func:`encode_message` is the other direction.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import re
import struct
from typing import Any

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_CONTENT_LENGTH",
    "MAX_JSON_CONTENT_LENGTH",
    "REQUIRED_HEADERS",
    "BYTEORDERS",
    "CONTENT_ENCODINGS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NUMBER_LENGTH",
    "NEED_DATA",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Message",
    "MessageDecoder",
    "encode_message",
    "json_message",
    "loads",
    "codec_name",
]

#: Largest JSON header accepted, in bytes (the length prefix itself allows 65535).
MAX_HEADER_LENGTH = 16 * 1024
#: Largest content accepted, in bytes. A header declaring more is refused at once.
MAX_CONTENT_LENGTH = 4 * 1024 * 1024
#: Largest ``text/json`` content accepted, in bytes: the same as a header's. The guide's JSON
#: requests and answers are tens of bytes, and decoding JSON costs far more CPU and memory per
#: byte than taking an array (4 MiB of nested lists: 1.6 s and 200 MiB), so JSON has its own,
#: far lower, limit.
MAX_JSON_CONTENT_LENGTH = 16 * 1024

REQUIRED_HEADERS = ("byteorder", "content-type", "content-encoding", "content-length")
_REQUIRED = frozenset(REQUIRED_HEADERS)
#: Values of the ``byteorder`` header: the guide sends ``sys.byteorder``; "network" is big-endian.
BYTEORDERS = ("little", "big", "network")

#: Deepest nesting of JSON arrays and objects accepted, in a header or in text/json content.
MAX_JSON_DEPTH = 32
#: Longest JSON number accepted, in characters (a uint64 has 20 digits).
MAX_JSON_NUMBER_LENGTH = 64

#: The content-encodings a peer may name: the text codecs a user would name, and "binary".
#: A closed list: no peer-chosen name ever reaches Python's codec registry (which also holds
#: quadratic or surprising codecs such as punycode, idna and undefined).
CONTENT_ENCODINGS = (
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
    "ascii", "latin-1", "binary",
)
_ENCODING_ALIASES = {
    **{name: name for name in CONTENT_ENCODINGS},
    "utf8": "utf-8",
    "utf16": "utf-16", "utf-16le": "utf-16-le", "utf-16be": "utf-16-be",
    "utf32": "utf-32", "utf-32le": "utf-32-le", "utf-32be": "utf-32-be",
    "us-ascii": "ascii",
    "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1",
}

_PREFIX = struct.Struct(">H")
# One encoder for every message: json.dumps(..., ensure_ascii=False) builds a new one per call.
# allow_nan=False: NaN and Infinity are not JSON, so we never send them.
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`MessageDecoder.next_message` while a message is incomplete.
NEED_DATA = _NeedData()


class ProtocolError(Exception):
    """Base class of every protocol error."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


def codec_name(content_encoding: Any) -> str | None:
    """The :data:`CONTENT_ENCODINGS` entry ``content_encoding`` names, or None.

    Case, ``_`` for ``-`` and the usual aliases (``utf8``, ``latin1``, ...) are accepted.
    """
    if not isinstance(content_encoding, str) or len(content_encoding) > 32:
        return None
    return _ENCODING_ALIASES.get(content_encoding) or _ENCODING_ALIASES.get(
        content_encoding.strip().lower().replace("_", "-"))


def _json_number_check(text: str) -> None:
    if len(text) > MAX_JSON_NUMBER_LENGTH:
        raise RemoteProtocolError(
            f"JSON number of {len(text)} characters is over the limit of {MAX_JSON_NUMBER_LENGTH}"
            f": {text[:20]}..."
        )


def _parse_int(text: str) -> int:
    _json_number_check(text)
    return int(text)


def _parse_float(text: str) -> float:
    _json_number_check(text)
    value = float(text)
    if not math.isfinite(value):
        raise RemoteProtocolError(f"JSON number {text!r} is out of range")
    return value


def _parse_constant(name: str) -> float:
    raise RemoteProtocolError(f"{name} is not JSON")


_JSON_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)
# The decoder's scanner (json's C one): a value that starts at 0 and ends the text is what
# ``decode`` returns for it, without its two whitespace matches (a third of the time for the
# guide's header). Anything else (whitespace around the value, an error) goes to ``decode``,
# which says it the standard way.
_scan_json = _JSON_DECODER.scan_once
# A JSON string, or an unterminated one up to the end of the text: every match succeeds at its
# first try, so stripping strings is linear even in text full of quotes and escapes.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})  # +1, -1


def _check_nesting(text: str, what: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH, before the recursive parser sees it.

    Linear, and in C but for a handful of calls: strings go, then everything but brackets;
    the brackets become +1 and -1 (signed bytes) and their running sum is the depth. A prefix
    the parser accepts opens exactly that many levels, so the deepest running sum bounds its
    recursion (whether the brackets pair up is the parser's to say).
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_DEPTH_STEPS)
    steps = array.array("b", brackets.encode("latin-1"))
    if steps and max(itertools.accumulate(steps)) > MAX_JSON_DEPTH:
        raise RemoteProtocolError(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels")


def loads(text: str, what: str = "JSON") -> Any:
    """Decode JSON that came from a peer; raise only :class:`RemoteProtocolError`.

    Limits: nesting up to :data:`MAX_JSON_DEPTH`, numbers up to :data:`MAX_JSON_NUMBER_LENGTH`
    characters and finite, no NaN/Infinity, and every string must encode to UTF-8 (a lone
    surrogate such as ``"\\ud800"`` cannot be answered, so it is refused here). ``what``
    names the text in error messages ("header", "content").
    """
    _check_nesting(text, what)
    try:
        try:
            value, end = _scan_json(text, 0)
        except (StopIteration, json.JSONDecodeError):
            end = -1
        if end != len(text):
            value = _JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not valid JSON: {exc}") from None
    if "\\u" in text:  # only an escape can make a lone surrogate out of valid UTF-8 text
        try:
            _encode_json(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RemoteProtocolError(
                f"{what} holds text that is not Unicode: {exc.object[exc.start:exc.end]!r}"
            ) from None
    return value


class Message:
    """One complete message: its JSON header and its raw content. A plain class, not a
    dataclass, for the reason :class:`socketlab.errors.Failure` gives."""

    __slots__ = ("header", "content", "_json")

    def __init__(self, header: dict[str, Any], content: bytes) -> None:
        self.header = header
        self.content = content
        #: :meth:`json`'s value once decoded: a server and its commentary decode a request once.
        self._json: Any = NEED_DATA

    def __repr__(self) -> str:
        return f"Message(header={self.header!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.header, self.content) == (other.header, other.content)

    __hash__ = None  # a header is a dict

    @property
    def content_type(self) -> str:
        return self.header["content-type"]

    @property
    def content_encoding(self) -> str:
        return self.header["content-encoding"]

    @property
    def byteorder(self) -> str:
        return self.header["byteorder"]

    @property
    def media_type(self) -> str:
        """The content type without parameters: ``"binary/x-socketlab-array"``."""
        return self.content_type.partition(";")[0].strip()

    @property
    def params(self) -> dict[str, str]:
        """Content-type parameters: ``{"dtype": "int32"}`` for ``...; dtype=int32``."""
        params = {}
        for item in self.content_type.split(";")[1:]:
            key, sep, value = item.partition("=")
            if not sep:
                raise RemoteProtocolError(f"malformed content-type parameter {item.strip()!r}")
            params[key.strip().lower()] = value.strip()
        return params

    def text(self) -> str:
        """The content decoded with the declared content-encoding (a text one)."""
        codec = codec_name(self.content_encoding)
        if codec is None or codec == "binary":
            raise RemoteProtocolError(
                f"content-encoding {self.content_encoding!r} is not a text encoding"
            )
        try:
            return self.content.decode(codec)
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(
                f"content is not valid {self.content_encoding!r}: {exc.reason} at byte {exc.start}"
            ) from None

    def json(self) -> Any:
        """The content of a ``text/json`` message, decoded within :func:`loads`'s limits."""
        if self.content_type != "text/json":
            raise RemoteProtocolError(f"expected text/json content, got {self.content_type!r}")
        if self._json is NEED_DATA:
            self._json = loads(self.text(), "content")
        return self._json


def _check_header(header: Any, max_content_length: int, error: type[ProtocolError],
                  max_json_length: int = MAX_JSON_CONTENT_LENGTH) -> dict:
    if not isinstance(header, dict):
        raise error(f"header must be a JSON object, got {type(header).__name__} {header!r}")
    if not header.keys() >= _REQUIRED:
        name = next(name for name in REQUIRED_HEADERS if name not in header)
        raise error(f"missing required header {name!r} in {sorted(header)!r}")
    length = header["content-length"]
    if type(length) is not int or length < 0:
        raise error(f"content-length must be a non-negative integer, got {length!r}")
    if length > max_content_length:
        raise error(f"content-length {length!r} is over the limit of {max_content_length} bytes")
    if header["byteorder"] not in BYTEORDERS:
        raise error(f"byteorder must be one of {BYTEORDERS!r}, got {header['byteorder']!r}")
    for name in ("content-type", "content-encoding"):
        if not isinstance(header[name], str) or not header[name]:
            raise error(f"{name} must be a non-empty string, got {header[name]!r}")
    if length > max_json_length and header["content-type"] == "text/json":
        raise error(f"content-length {length!r} is over the limit of {max_json_length} bytes "
                    f"for text/json")
    if codec_name(header["content-encoding"]) is None:
        raise error(
            f"content-encoding {header['content-encoding']!r} is not one of {CONTENT_ENCODINGS!r}"
        )
    return header


def encode_message(
    content: bytes,
    *,
    content_type: str,
    content_encoding: str,
    byteorder: str,
    extra: dict[str, Any] | None = None,
    max_content_length: int = MAX_CONTENT_LENGTH,
) -> bytes:
    """The wire form of one message. Raises :class:`LocalProtocolError` if it breaks a limit."""
    header = {
        "byteorder": byteorder,
        "content-type": content_type,
        "content-encoding": content_encoding,
        "content-length": len(content),
    }
    if extra:
        header.update(extra)
    _check_header(header, max_content_length, LocalProtocolError)
    raw = _encode_local_json(header, "utf-8", "header")
    if len(raw) > MAX_HEADER_LENGTH:
        raise LocalProtocolError(
            f"header of {len(raw)} bytes is over the limit of {MAX_HEADER_LENGTH} bytes"
        )
    return b"".join((_PREFIX.pack(len(raw)), raw, content))


def json_message(obj: Any, *, byteorder: str, encoding: str = "utf-8") -> bytes:
    """A ``text/json`` message holding ``obj``, as the guide encodes it."""
    content = _encode_local_json(obj, encoding, "content")
    return encode_message(
        content, content_type="text/json", content_encoding=encoding, byteorder=byteorder
    )


def _encode_local_json(obj: Any, encoding: str, what: str) -> bytes:
    try:
        return _encode_json(obj).encode(encoding)
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError, NaN, a non-JSON type
        raise LocalProtocolError(f"cannot encode the {what} as {encoding} JSON: {exc}") from None


class MessageDecoder:
    """Incremental decoder: bytes in, :class:`Message` objects out.

    >>> decoder = MessageDecoder()
    >>> decoder.receive_data(wire_bytes)
    >>> while (message := decoder.next_message()) is not NEED_DATA:
    ...     handle(message)

    Whatever the peer sends, :meth:`next_message` returns a message or :data:`NEED_DATA` or
    raises :class:`RemoteProtocolError`: any other exception is a bug.

    ``receive_data(b"")`` marks the end of the stream; after that, :meth:`next_message`
    raises :class:`RemoteProtocolError` if a message was cut short. Limits are checked as
    soon as the bytes that state them arrive: a header declaring more than
    ``max_content_length`` (``max_json_length`` for ``text/json``) is refused before any of
    its content is buffered.
    """

    __slots__ = ("max_header_length", "max_content_length", "max_json_length", "_buffer",
                 "_header", "_eof")

    def __init__(
        self,
        *,
        max_header_length: int = MAX_HEADER_LENGTH,
        max_content_length: int = MAX_CONTENT_LENGTH,
        max_json_length: int = MAX_JSON_CONTENT_LENGTH,
    ) -> None:
        self.max_header_length = max_header_length
        self.max_content_length = max_content_length
        self.max_json_length = max_json_length
        self._buffer = bytearray()
        self._header: dict | None = None
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a message."""
        return len(self._buffer)

    @property
    def at_boundary(self) -> bool:
        """True when no partial message is buffered."""
        return not self._buffer and self._header is None

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("received data after end of stream")
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_message(self) -> Message | _NeedData:
        buf = self._buffer
        if self._header is None:
            if len(buf) < 2:
                return self._need_data("the 2-byte header length")
            (header_length,) = _PREFIX.unpack_from(buf)
            if header_length == 0 or header_length > self.max_header_length:
                raise RemoteProtocolError(
                    f"header length {header_length!r} is outside 1..{self.max_header_length}"
                )
            if len(buf) < 2 + header_length:
                return self._need_data(f"a {header_length}-byte header")
            raw = bytes(buf[2 : 2 + header_length])
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError(f"header is not UTF-8: {exc}: {raw[:64]!r}") from None
            header = loads(text, "header")
            self._header = _check_header(header, self.max_content_length, RemoteProtocolError,
                                         self.max_json_length)
            del buf[: 2 + header_length]
        length = self._header["content-length"]
        if len(buf) < length:
            return self._need_data(f"{length} content bytes")
        content = bytes(buf[:length])
        del buf[:length]
        message = Message(self._header, content)
        self._header = None
        return message

    def _need_data(self, what: str) -> _NeedData:
        if self._eof and not self.at_boundary:
            raise RemoteProtocolError(
                f"connection closed while waiting for {what} ({len(self._buffer)} bytes buffered)"
            )
        return NEED_DATA
