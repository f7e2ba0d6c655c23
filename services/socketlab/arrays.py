"""The numeric-array content type: byte order that matters.

``binary/x-socketlab-array; dtype=<dtype>`` carries a packed array of numbers. The header's
``byteorder`` says how they are packed: ``"little"`` or ``"big"`` (the sender's native order, as
the guide's ``sys.byteorder``), or ``"network"`` (big-endian). A receiver converts on purpose
according to that header (:func:`decode_array`). :func:`decode_array_naive` is the classic bug,
kept as the lab's negative control: it reads the bytes in this machine's own order and ignores
the header, so it is right only when both ends share a byte order.

A server's cost per request is bounded and low: the values are read into an ``array.array``
(a copy and, for a foreign byte order, one ``byteswap``, both in C), the statistics are taken a
chunk at a time, and the answer is packed from the array. 4 MiB of int16 (2 million values)
costs ~0.1 s of CPU and no list of 2 million Python ints (a 72 MB transient).
"""

from __future__ import annotations

import array
import itertools
import math
import struct
import sys
from collections.abc import Iterator, Sequence

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
_ORDER = {"little": "little", "big": "big", "network": "big"}
#: dtype -> the array module's typecode of the same size here (C's int and long vary by machine).
TYPECODES = {dtype: next(t for t in {"i": "il", "I": "IL"}.get(code, code)
                         if array.array(t).itemsize == struct.calcsize(code))
             for dtype, code in DTYPES.items()}
_CHUNK = 65536  # values boxed at a time when statistics are taken from an array


def array_content_type(dtype: str) -> str:
    if dtype not in DTYPES:
        raise LocalProtocolError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPES)!r}")
    return f"{ARRAY_MEDIA_TYPE}; dtype={dtype}"


def encode_array(values: Sequence[int | float], dtype: str, byteorder: str) -> bytes:
    """Pack ``values`` as ``dtype`` in ``byteorder`` ("little", "big" or "network").

    ``values`` from :func:`decode_array` (an ``array.array`` of that dtype) are packed in C;
    a list is checked value by value (``struct``: a float past float32 is an error, not inf).
    """
    array_content_type(dtype)
    if byteorder not in _PREFIX:
        raise LocalProtocolError(f"byteorder must be one of {sorted(_PREFIX)!r}, got {byteorder!r}")
    if isinstance(values, array.array) and values.typecode == TYPECODES[dtype]:
        packed = array.array(values.typecode, values)
        if _ORDER[byteorder] != sys.byteorder:
            packed.byteswap()
        return packed.tobytes()
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


def _unpack(message: Message, byteorder: str) -> array.array:
    dtype = _dtype_of(message)
    values = array.array(TYPECODES[dtype])
    if len(message.content) % values.itemsize:
        raise RemoteProtocolError(f"{len(message.content)} content bytes is not a whole number "
                                  f"of {dtype} ({values.itemsize} bytes)")
    values.frombytes(message.content)
    if byteorder != sys.byteorder:
        values.byteswap()
    return values


def decode_array(message: Message) -> array.array:
    """The values of an array message, converted from the order its header declares (an
    ``array.array``: ``.tolist()`` for a list)."""
    return _unpack(message, _ORDER[message.byteorder])


def decode_array_naive(message: Message) -> array.array:
    """The byte-order bug, on purpose: read the values in this machine's native order.

    Only for the negative-control tests; never use it for real work.
    """
    return _unpack(message, sys.byteorder)


def _pieces(values: Sequence[int | float]) -> Iterator[Sequence[int | float]]:
    """``values`` a chunk at a time, as lists: each value is boxed once per pass, no more
    than a chunk of them at once."""
    if not isinstance(values, array.array):
        yield values
        return
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK].tolist()


def array_stats(values: Sequence[int | float]) -> dict[str, int | float | None]:
    """count, exact sum, min and max. Integer sums are exact; float sums use math.fsum.

    JSON has no NaN or Infinity: when a float value is not finite, or the sum overflows,
    sum, min and max are None (null). The values themselves travel packed, so they stay exact.
    """
    if not len(values):
        return {"count": 0, "sum": 0, "min": None, "max": None}
    if isinstance(values[0], float):
        try:  # one exact sum over every value (fsum of partial sums would round twice)
            total = math.fsum(itertools.chain.from_iterable(_pieces(values)))
        except (ValueError, OverflowError):  # inf - inf; past float64
            total = math.nan
        if not math.isfinite(total):  # NaN among the values, or an infinity
            return {"count": len(values), "sum": None, "min": None, "max": None}
        low = min(min(piece) for piece in _pieces(values))
        high = max(max(piece) for piece in _pieces(values))
    else:
        total, low, high = 0, None, None
        for piece in _pieces(values):
            total += sum(piece)
            low = min(piece) if low is None else min(low, min(piece))
            high = max(piece) if high is None else max(high, max(piece))
    return {"count": len(values), "sum": total, "min": low, "max": high}

