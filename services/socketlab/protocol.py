"""The guide's application protocol, with no I/O.

A message on the wire is::

    +-------------------+-----------------------+------------------------+
    | 2 bytes, ">H":    | JSON header, UTF-8,   | content,               |
    | header length     | header length bytes   | content-length bytes   |
    +-------------------+-----------------------+------------------------+

The header is a JSON object with four required fields: ``byteorder``, ``content-type``,
``content-encoding`` and ``content-length``. Other fields are allowed and kept.

:class:`MessageDecoder` is incremental: feed it bytes in any chunking with
:meth:`~MessageDecoder.receive_data` and take complete messages from
:meth:`~MessageDecoder.next_message`, which returns :data:`NEED_DATA` until one is complete.
:func:`encode_message` is the other direction.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_CONTENT_LENGTH",
    "REQUIRED_HEADERS",
    "BYTEORDERS",
    "NEED_DATA",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Message",
    "MessageDecoder",
    "encode_message",
    "json_message",
]

#: Largest JSON header accepted, in bytes (the length prefix itself allows 65535).
MAX_HEADER_LENGTH = 16 * 1024
#: Largest content accepted, in bytes. A header declaring more is refused at once.
MAX_CONTENT_LENGTH = 4 * 1024 * 1024

REQUIRED_HEADERS = ("byteorder", "content-type", "content-encoding", "content-length")
#: Values of the ``byteorder`` header: the guide sends ``sys.byteorder``; "network" is big-endian.
BYTEORDERS = ("little", "big", "network")

_PREFIX = struct.Struct(">H")
# One encoder for every message: json.dumps(..., ensure_ascii=False) builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


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


@dataclass(frozen=True)
class Message:
    """One complete message: its JSON header and its raw content."""

    header: dict[str, Any]
    content: bytes = field(repr=False)

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
        """The content decoded with the declared content-encoding."""
        try:
            return self.content.decode(self.content_encoding)
        except LookupError:
            raise RemoteProtocolError(
                f"unknown content-encoding {self.content_encoding!r}"
            ) from None
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(
                f"content is not valid {self.content_encoding!r}: {exc.reason} at byte {exc.start}"
            ) from None

    def json(self) -> Any:
        """The content of a ``text/json`` message, decoded."""
        if self.content_type != "text/json":
            raise RemoteProtocolError(f"expected text/json content, got {self.content_type!r}")
        try:
            return json.loads(self.text())
        except json.JSONDecodeError as exc:
            raise RemoteProtocolError(f"content is not valid JSON: {exc}") from None


def _check_header(header: Any, max_content_length: int, error: type[ProtocolError]) -> dict:
    if not isinstance(header, dict):
        raise error(f"header must be a JSON object, got {type(header).__name__} {header!r}")
    for name in REQUIRED_HEADERS:
        if name not in header:
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
    raw = _encode_json(header).encode("utf-8")
    if len(raw) > MAX_HEADER_LENGTH:
        raise LocalProtocolError(
            f"header of {len(raw)} bytes is over the limit of {MAX_HEADER_LENGTH} bytes"
        )
    return b"".join((_PREFIX.pack(len(raw)), raw, content))


def json_message(obj: Any, *, byteorder: str, encoding: str = "utf-8") -> bytes:
    """A ``text/json`` message holding ``obj``, as the guide encodes it."""
    content = _encode_json(obj).encode(encoding)
    return encode_message(
        content, content_type="text/json", content_encoding=encoding, byteorder=byteorder
    )


class MessageDecoder:
    """Incremental decoder: bytes in, :class:`Message` objects out.

    >>> decoder = MessageDecoder()
    >>> decoder.receive_data(wire_bytes)
    >>> while (message := decoder.next_message()) is not NEED_DATA:
    ...     handle(message)

    ``receive_data(b"")`` marks the end of the stream; after that, :meth:`next_message`
    raises :class:`RemoteProtocolError` if a message was cut short. Limits are checked as
    soon as the bytes that state them arrive: a header declaring more than
    ``max_content_length`` is refused before any of its content is buffered.
    """

    __slots__ = ("max_header_length", "max_content_length", "_buffer", "_header", "_eof")

    def __init__(
        self,
        *,
        max_header_length: int = MAX_HEADER_LENGTH,
        max_content_length: int = MAX_CONTENT_LENGTH,
    ) -> None:
        self.max_header_length = max_header_length
        self.max_content_length = max_content_length
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
                header = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RemoteProtocolError(f"header is not UTF-8 JSON: {exc}: {raw[:64]!r}") from None
            self._header = _check_header(header, self.max_content_length, RemoteProtocolError)
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
