"""The numeric-array content type: byte order that matters.

``binary/x-socketlab-array; dtype=<dtype>`` carries a packed array of numbers. The header's
``byteorder`` says how they are packed: ``"little"`` or ``"big"`` (the sender's native order, as
the guide's ``sys.byteorder``), or ``"network"`` (big-endian). A receiver converts on purpose
according to that header (:func:`decode_array`). :func:`decode_array_naive` is the classic bug,
kept as the lab's negative control: it reads the bytes in this machine's own order and ignores
the header, so it is right only when both ends share a byte order.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from socketlab.protocol import LocalProtocolError, Message, RemoteProtocolError

__all__ = [
    "ARRAY_MEDIA_TYPE",
    "DTYPES",
    "array_content_type",
    "encode_array",
    "decode_array",
    "decode_array_naive",
    "array_stats",
]

ARRAY_MEDIA_TYPE = "binary/x-socketlab-array"

#: dtype name -> struct code (standard sizes with an explicit byte order prefix).
DTYPES = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}

_PREFIX = {"little": "<", "big": ">", "network": "!"}


def array_content_type(dtype: str) -> str:
    if dtype not in DTYPES:
        raise LocalProtocolError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPES)!r}")
    return f"{ARRAY_MEDIA_TYPE}; dtype={dtype}"


def encode_array(values: Sequence[int | float], dtype: str, byteorder: str) -> bytes:
    """Pack ``values`` as ``dtype`` in ``byteorder`` ("little", "big" or "network")."""
    array_content_type(dtype)
    if byteorder not in _PREFIX:
        raise LocalProtocolError(f"byteorder must be one of {sorted(_PREFIX)!r}, got {byteorder!r}")
    try:
        return struct.pack(f"{_PREFIX[byteorder]}{len(values)}{DTYPES[dtype]}", *values)
    except (struct.error, OverflowError) as exc:  # OverflowError: a float past float32
        raise LocalProtocolError(f"cannot pack {list(values)!r} as {dtype}: {exc}") from None


def _dtype_of(message: Message) -> str:
    if message.media_type != ARRAY_MEDIA_TYPE:
        raise RemoteProtocolError(f"not an array message: {message.content_type!r}")
    dtype = message.params.get("dtype")
    if dtype not in DTYPES:
        raise RemoteProtocolError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPES)!r}")
    return dtype


def _unpack(message: Message, prefix: str) -> list[int | float]:
    dtype = _dtype_of(message)
    code = DTYPES[dtype]
    size = struct.calcsize(code)
    count, extra = divmod(len(message.content), size)
    if extra:
        raise RemoteProtocolError(
            f"{len(message.content)} content bytes is not a whole number of {dtype} ({size} bytes)"
        )
    return list(struct.unpack(f"{prefix}{count}{code}", message.content))


def decode_array(message: Message) -> list[int | float]:
    """The values of an array message, converted from the order its header declares."""
    return _unpack(message, _PREFIX[message.byteorder])


def decode_array_naive(message: Message) -> list[int | float]:
    """The byte-order bug, on purpose: read the values in this machine's native order.

    Only for the negative-control tests; never use it for real work.
    """
    return _unpack(message, "=")


def array_stats(values: Sequence[int | float]) -> dict[str, int | float | None]:
    """count, exact sum, min and max. Integer sums are exact; float sums use math.fsum.

    JSON has no NaN or Infinity: when a float value is not finite, or the sum overflows,
    sum, min and max are None (null). The values themselves travel packed, so they stay exact.
    """
    if not values:
        return {"count": 0, "sum": 0, "min": None, "max": None}
    if isinstance(values[0], float):
        try:
            total = math.fsum(values)  # ValueError for inf - inf, OverflowError past float64
        except (ValueError, OverflowError):
            total = math.nan
        if not math.isfinite(total):  # NaN among the values, or an infinity
            return {"count": len(values), "sum": None, "min": None, "max": None}
    else:
        total = sum(values)
    return {"count": len(values), "sum": total, "min": min(values), "max": max(values)}

