"""Structure-aware inputs for the protocol fuzzer: valid frames, then mutated where it hurts.

Random bytes almost never get past the 2-byte length prefix and the JSON header, so the fuzzer
works on the structure instead: :func:`mutate` parses an input as frames (length prefix, JSON
header, content), changes one thing a hostile peer would change (a header field set to a near
miss, a JSON node replaced by a huge number, NaN, a lone surrogate or deep nesting, packed
numbers with inf/nan bit patterns, a content slice repeated, a cut, a second frame), and writes
the frames back with the length fields fixed up most of the time. Inputs stay plain wire bytes,
so a corpus file or a crasher is exactly what a peer would send.

Standard library only (no atheris): the unit tier imports it. ``byte_mutate`` is libFuzzer's
own mutator (``atheris.Mutate``) when the harness runs, or a simple stand-in otherwise.
"""

from __future__ import annotations

import json
import math
import random
import struct
import sys
from collections.abc import Callable

from socketlab import arrays

__all__ = ["Raw", "Frame", "parse", "serialize", "generate", "mutate", "seed_frames"]

ByteMutate = Callable[[bytes, int], bytes]


class Raw(str):
    """A JSON token written verbatim: a number of any length, NaN, Infinity, or junk."""


# --- the vocabulary a hostile peer uses ------------------------------------------------------

BYTEORDERS = ["little", "big", "network", "native", "", "BIG", "Little", "little ", "ppc"]
CONTENT_TYPES = [
    "text/json",
    "binary/custom-client-binary-type",
    "binary/x-socketlab-array",
    *(arrays.array_content_type(dtype) for dtype in arrays.DTYPES),
    "binary/x-socketlab-array; dtype=int8",
    "binary/x-socketlab-array; dtype=float16",
    "binary/x-socketlab-array; dtype=INT16",
    "binary/x-socketlab-array; dtype=",
    "binary/x-socketlab-array; dtype",
    "binary/x-socketlab-array;dtype=int32;dtype=float64",
    "binary/x-socketlab-array; dtype=int16; x=y",
    "binary/x-socketlab-array; ; dtype=int16",
    " binary/x-socketlab-array ; dtype = uint64 ",
    "; dtype=int16",
    "TEXT/JSON",
    "text/json; charset=utf-8",
    "text/json ",
    "",
    ";",
    "a;b;c",
]
CONTENT_ENCODINGS = [
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
    "ascii", "latin-1", "binary",
    "utf8", "UTF-8", " utf_8 ", "utf-16le", "utf32", "us-ascii", "latin1", "iso-8859-1",
    # near misses: the codecs the closed list keeps out of Python's registry
    "idna", "punycode", "undefined", "utf-8\u0000", "\udfff", "\ud800", "utf-7", "utf-8-sig",
    "rot13", "base64", "hex", "zlib", "bz2", "uu", "mbcs", "cp037", "unicode_escape",
    "raw_unicode_escape", "charmap", "", " ", "x" * 33, "utf-8" + " " * 30,
]
ACTIONS = ["search", "Search", "binary", "stats", "double", "", "\ud800", "\udfff", "\u0000"]
SEARCH_VALUES = ["morpheus", "ring", "\U0001f436", "neo", "", "\ud800", "\udc00", "a\u0000b"]
HEADER_NAMES = ["byteorder", "content-type", "content-encoding", "content-length"]
NUMBER_TOKENS = [
    "0", "-0", "1", "-1", "2", "65535", "65536", "4194304", "4194305", "16384",
    "9223372036854775807", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "1" + "0" * 63, "1" + "0" * 64, "-" + "9" * 64,
    "1e308", "1e309", "-1e309", "1e-400", "5e-324", "0.5", "1.0", "-0.0", "1E400", "2e2",
    "NaN", "Infinity", "-Infinity", "nan", "inf", "01", "-", "1.", ".5", "1e", "0x10", "+1",
    "1" * 4301, "9" * 5000,
]
STRING_VALUES = [*SEARCH_VALUES, *ACTIONS, *CONTENT_ENCODINGS[:12], "\\", '"', "\ud83d\udc36",
                 "\udbff\udfff", "\U0010ffff", "\ufeff", "\x7f", "\t\n"]
_DEPTHS = [31, 32, 33, 64, 1000, 2000]
#: What _amplify repeats besides slices of the input: the characters JSON parsers and their
#: pre-checks treat specially.
JSON_PIECES = [b'\\"', b"\\\\", b'"', b"[", b"{", b'{"a":', b"]", b"}", b",", b"0", b"-",
               b"\\u0000", b"\\ud800", b" ", b"e", b"\xc3\xa9", b"\x00", b"\xff"]


def _interesting(rng: random.Random, depth: int = 0) -> object:
    """One JSON value a hostile peer would try."""
    kind = rng.randrange(10)
    if kind == 0:
        return Raw(rng.choice(NUMBER_TOKENS))
    if kind == 1:
        return rng.choice(STRING_VALUES)
    if kind == 2:
        return rng.choice([True, False, None, 0, -1, 1.5, "", [], {}])
    if kind == 3 and rng.random() < 0.3:  # a string that never ends, or ends late
        body = rng.choice(['\\"', "\\\\", "a", "\\u00e9", '\\"[{']) * rng.choice([1, 16, 1000])
        return Raw('"' + body + rng.choice(['"', ""]))
    if kind == 3:
        n = rng.choice(_DEPTHS)
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}"), ("[{\"a\":", "}]")])
        inner = rng.choice(["1", "null", '"x"', "[]"])
        return Raw(opener * n + inner + closer * n)
    if kind == 4 and depth < 3:
        return [_interesting(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 5 and depth < 3:
        return {rng.choice(STRING_VALUES + HEADER_NAMES + ["action", "value"]):
                _interesting(rng, depth + 1) for _ in range(rng.randrange(4))}
    if kind == 6:
        return Raw(str(rng.randrange(-(10 ** rng.randrange(1, 70)), 10 ** rng.randrange(1, 70))))
    if kind == 7:
        return Raw(repr(rng.choice([math.inf, -math.inf, math.nan, 1e308, -1e308, 5e-324, 1e-300])))
    if kind == 8:
        return "".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xd800, 0xe000),
                                       rng.randrange(0x80, 0x110000)]))
                       for _ in range(rng.randrange(1, 8)))
    return rng.choice(CONTENT_TYPES + BYTEORDERS)


def dump(value: object, ascii_only: bool = True) -> str:
    """JSON text of ``value``; :class:`Raw` tokens verbatim, lone surrogates kept."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10 ** 100 else "1" + "0" * 100
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {"inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), "NaN")
    if isinstance(value, list):
        return "[" + ",".join(dump(item, ascii_only) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(str(k), ascii_only)}:{dump(v, ascii_only)}"
                              for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _load(text: str) -> object:
    """Parse JSON keeping numbers and constants as :class:`Raw` tokens (no limits, no loss)."""
    return json.loads(text, parse_int=Raw, parse_float=Raw, parse_constant=Raw)


def _encode_text(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding`` when that is a codec we may name; UTF-8 (surrogates kept) otherwise."""
    from socketlab.protocol import codec_name

    codec = codec_name(encoding)
    if codec in (None, "binary"):
        codec = "utf-8"
    try:
        return text.encode(codec, "surrogatepass")
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8", "surrogatepass")


class Frame:
    """One message under construction: a header (a dict, or raw text/bytes when it does not
    parse), a content (raw bytes, or a JSON value when it parsed), and the fix-ups to apply."""

    __slots__ = ("header", "raw_header", "content", "json_content", "fix_length", "fix_prefix",
                 "ascii_only", "prefix")

    def __init__(self, header: dict | None, content: bytes, *, raw_header: bytes | None = None,
                 json_content: object = None) -> None:
        self.header = header
        self.raw_header = raw_header
        self.content = content
        self.json_content = json_content
        self.fix_length = True
        self.fix_prefix = True
        self.ascii_only = True
        self.prefix: int | None = None

    def content_bytes(self) -> bytes:
        if self.json_content is None:
            return self.content
        encoding = self.header.get("content-encoding", "utf-8") if self.header else "utf-8"
        return _encode_text(dump(self.json_content, self.ascii_only), str(encoding))

    def to_bytes(self) -> bytes:
        content = self.content_bytes()
        if self.header is not None:
            if self.fix_length:
                self.header["content-length"] = len(content)
            raw = dump(self.header, self.ascii_only).encode("utf-8", "surrogatepass")
        else:
            raw = self.raw_header or b""
        prefix = len(raw) if self.fix_prefix or self.prefix is None else self.prefix
        return struct.pack(">H", prefix & 0xFFFF) + raw + content


def parse(data: bytes) -> tuple[list[Frame], bytes]:
    """Split ``data`` into frames as far as it goes; the rest is returned as trailing bytes."""
    frames: list[Frame] = []
    offset = 0
    while len(data) - offset >= 2 and len(frames) < 4:
        (length,) = struct.unpack_from(">H", data, offset)
        raw = data[offset + 2 : offset + 2 + length]
        if len(raw) < length or not raw:
            break
        try:
            header = _load(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            header = None
        if not isinstance(header, dict):
            frame = Frame(None, data[offset + 2 + length :], raw_header=raw)
            frame.fix_length = False
            frames.append(frame)
            return frames, b""
        declared = header.get("content-length")
        try:
            size = int(declared) if isinstance(declared, Raw) else -1
        except ValueError:
            size = -1
        start = offset + 2 + length
        if size < 0 or size > len(data) - start:
            frame = Frame(header, data[start:])
            frame.fix_length = False
            frames.append(frame)
            return frames, b""
        content = data[start : start + size]
        frame = Frame(header, content)
        if header.get("content-type") == "text/json":
            try:
                text = content.decode(str(header.get("content-encoding", "utf-8")).strip() or "utf-8",
                                      "surrogatepass")
                frame.json_content = _load(text)
            except (ValueError, RecursionError, LookupError, TypeError, UnicodeError):
                pass
        frames.append(frame)
        offset = start + size
    return frames, data[offset:]


def serialize(frames: list[Frame], trailing: bytes = b"") -> bytes:
    return b"".join(frame.to_bytes() for frame in frames) + trailing


# --- building frames from nothing ------------------------------------------------------------

def _array_values(rng: random.Random, dtype: str, count: int) -> bytes:
    code = arrays.DTYPES[dtype]
    size = struct.calcsize(code)
    order = rng.choice("<>=")
    out = bytearray()
    for _ in range(count):
        pick = rng.randrange(4)
        if pick == 0:
            out += rng.randbytes(size)
        elif code in "fd":
            value = rng.choice([math.inf, -math.inf, math.nan, 1e308, -1e308, 3.4e38, -3.4e38,
                                5e-324, 1e-45, -0.0, 0.0, 1.0, rng.uniform(-1e6, 1e6)])
            try:
                out += struct.pack(order + code, value)
            except OverflowError:
                out += struct.pack(order + code, math.inf)
        else:
            bits = size * 8
            lo, hi = (0, 2 ** bits - 1) if code.isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            value = rng.choice([lo, hi, 0, 1, -1 if lo else 2, rng.randint(lo, hi)])
            out += struct.pack(order + code, value)
    return bytes(out)


def generate(rng: random.Random) -> Frame:
    """A frame that is valid most of the time: a request of one of the app's kinds."""
    kind = rng.randrange(4)
    header: dict = {"byteorder": rng.choice(["little", "big", "network"]),
                    "content-encoding": "utf-8", "content-length": 0}
    if kind <= 1:
        header["content-type"] = "text/json"
        header["content-encoding"] = rng.choice(CONTENT_ENCODINGS[:10] if rng.random() < 0.8 else CONTENT_ENCODINGS)
        value = rng.choice(SEARCH_VALUES) if rng.random() < 0.6 else _interesting(rng)
        body = {"action": rng.choice(ACTIONS) if rng.random() < 0.3 else "search", "value": value}
        frame = Frame(header, b"", json_content=body)
    elif kind == 2:
        dtype = rng.choice(list(arrays.DTYPES))
        header["content-type"] = arrays.array_content_type(dtype)
        header["content-encoding"] = "binary"
        frame = Frame(header, _array_values(rng, dtype, rng.randrange(6)))
    else:
        header["content-type"] = "binary/custom-client-binary-type"
        header["content-encoding"] = "binary"
        frame = Frame(header, rng.randbytes(rng.randrange(20)))
    frame.ascii_only = rng.random() < 0.7
    return frame


# --- mutations ---------------------------------------------------------------------------------

def _paths(value: object, path: tuple = ()) -> list[tuple]:
    """Every node's path in a JSON value (bounded)."""
    found = [path]
    if isinstance(value, dict):
        for key in list(value)[:16]:
            found += _paths(value[key], path + (key,))
    elif isinstance(value, list):
        for index in range(min(len(value), 16)):
            found += _paths(value[index], path + (index,))
    return found[:200]


def _replace(root: object, path: tuple, new: object) -> object:
    if not path:
        return new
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return root


def _mutate_json(rng: random.Random, root: object) -> object:
    path = rng.choice(_paths(root))
    op = rng.randrange(6)
    if op == 0 and isinstance(root, dict) and rng.random() < 0.5:
        root[rng.choice(STRING_VALUES + ["action", "value", "x-stats"])] = _interesting(rng)
        return root
    if op == 1 and path:
        node = root
        for step in path[:-1]:
            node = node[step]
        if isinstance(node, dict):
            node.pop(path[-1], None)
        elif isinstance(node, list):
            del node[path[-1]]
        return root
    if op == 2:
        node = root
        for step in path:
            node = node[step]
        return _replace(root, path, rng.choice([[node], {"a": node}, [node, node]]))
    return _replace(root, path, _interesting(rng))


def _mutate_header(rng: random.Random, frame: Frame) -> None:
    header = frame.header
    op = rng.randrange(8)
    if op == 0:
        header["byteorder"] = rng.choice(BYTEORDERS) if rng.random() < 0.8 else _interesting(rng)
    elif op == 1:
        header["content-type"] = rng.choice(CONTENT_TYPES) if rng.random() < 0.8 else _interesting(rng)
    elif op == 2:
        header["content-encoding"] = rng.choice(CONTENT_ENCODINGS) if rng.random() < 0.8 else _interesting(rng)
    elif op == 3:
        frame.fix_length = False
        length = header.get("content-length")
        base = int(length) if isinstance(length, (int, Raw)) and str(length).lstrip("-").isdigit() and len(str(length)) < 30 else 0
        header["content-length"] = rng.choice([
            Raw(str(base + rng.choice([-1, 1, 2, 1000]))), Raw("4194305"), Raw("-1"), Raw("1.0"),
            Raw("1e3"), "10", True, None, Raw("9" * rng.choice([20, 64, 65, 5000])), [1]])
    elif op == 4:
        header.pop(rng.choice(HEADER_NAMES), None)
    elif op == 5 and rng.random() < 0.3:
        raw = dump(header, frame.ascii_only).encode("utf-8", "surrogatepass")
        frame.raw_header = _amplify(rng, raw, 16 * 1024 - len(raw))
        frame.header = None
    else:
        frame.header = _mutate_json(rng, header)
        if not isinstance(frame.header, dict):
            frame.raw_header = dump(frame.header, frame.ascii_only).encode("utf-8", "surrogatepass")
            frame.header = None


def _amplify(rng: random.Random, data: bytes, room: int) -> bytes:
    """Repeat a slice of ``data`` to fill up to ``room`` more bytes: linear inputs stay cheap,
    superlinear code shows up as a stall."""
    if not data or room <= 0:
        return data
    start = rng.randrange(len(data))
    if rng.random() < 0.5:
        piece = rng.choice(JSON_PIECES)
    else:
        piece = data[start : start + rng.randrange(1, 9)]
    times = min(room // len(piece), rng.choice([2, 16, 256, 1 << 20]))
    # Half the time the run is never closed (the rest is dropped): unterminated strings,
    # brackets and escapes are where backtracking and rescanning parsers go quadratic.
    tail = data[start:] if rng.random() < 0.5 else b""
    return data[:start] + piece * times + tail


def _mutate_content(rng: random.Random, frame: Frame, byte_mutate: ByteMutate, max_size: int) -> None:
    header = frame.header or {}
    if frame.json_content is not None and rng.random() < 0.7:
        frame.json_content = _mutate_json(rng, frame.json_content)
        return
    content = frame.content_bytes()
    frame.json_content = None
    op = rng.randrange(5)
    content_type = str(header.get("content-type", ""))
    if op == 0 and "dtype=" in content_type:
        dtype = content_type.rpartition("dtype=")[2].strip()
        if dtype in arrays.DTYPES:
            extra = _array_values(rng, dtype, rng.randrange(1, 4))
            at = rng.randrange(len(content) + 1)
            content = content[:at] + extra + content[at:]
    elif op == 1:
        content = _amplify(rng, content, max_size - len(content) - 64)
    elif op == 2 and content:
        cut = rng.randrange(len(content))
        content = content[:cut] if rng.random() < 0.5 else content[:cut] + content[cut + 1 :]
    else:
        content = byte_mutate(content, max(len(content) * 2, 64))
    frame.content = content


def _stand_in_mutate(data: bytes, max_size: int, rng: random.Random | None = None) -> bytes:
    rng = rng or random.Random(len(data))
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(3)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1 and buf:
            del buf[rng.randrange(len(buf))]
        else:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
    return bytes(buf[:max_size])


def mutate(data: bytes, max_size: int, seed: int, byte_mutate: ByteMutate | None = None) -> bytes:
    """One structure-aware mutation of ``data`` (wire bytes), at most ``max_size`` bytes."""
    rng = random.Random(seed)
    if byte_mutate is None:
        def byte_mutate(chunk: bytes, size: int) -> bytes:
            return _stand_in_mutate(chunk, size, rng)
    if rng.random() < 0.1:  # libFuzzer's own byte-level mutations on the whole input
        return byte_mutate(data, max_size)
    frames, trailing = parse(data)
    if not frames or rng.random() < 0.03:
        frames, trailing = [generate(rng)], b""
    frame = rng.choice(frames)
    for _ in range(1 + (rng.random() < 0.3)):
        op = rng.randrange(10)
        if frame.header is None:
            frame.raw_header = byte_mutate(frame.raw_header or b"", 256)
        elif op < 4:
            _mutate_header(rng, frame)
        elif op < 8:
            _mutate_content(rng, frame, byte_mutate, max_size)
        elif op == 8:
            if rng.random() < 0.5 and len(frames) < 4:
                frames.append(generate(rng))
            else:
                trailing = byte_mutate(trailing, 64)
        else:
            frame.ascii_only = not frame.ascii_only
    if rng.random() < 0.03:
        frame.fix_prefix = False
        frame.prefix = rng.choice([0, 1, 16384, 16385, 65535, rng.randrange(65536)])
    out = serialize(frames, trailing)
    if len(out) > max_size:
        out = out[:max_size]
    return out


def _nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def seed_frames() -> dict[str, bytes]:
    """The seed corpus: one valid request of every kind the app answers (lab_tests/fuzz/corpus)."""
    from socketlab import app
    from socketlab.protocol import encode_message, json_message

    def search(action: str, value: str) -> bytes:  # app.make_request's, in a fixed byte order
        return json_message({"action": action, "value": value}, byteorder="little")

    def binary(value: str) -> bytes:
        return encode_message(value.encode(), content_type=app.BINARY_REQUEST_TYPE,
                              content_encoding="binary", byteorder="little")

    seeds = {
        "search-morpheus": search("search", "morpheus"),
        "search-dog": search("search", "\U0001f436"),
        "search-miss": search("search", "neo"),
        "invalid-action": search("double", "10"),
        "binary": binary("ABCDEFGHIJKLMNOP"),
        "search-utf16": json_message({"action": "search", "value": "ring"}, byteorder="big",
                                     encoding="utf-16"),
        "extra-header": encode_message(
            b'{"action": "search", "value": "ring"}', content_type="text/json",
            content_encoding="utf-8", byteorder="network", extra={"x-note": [1, {"a": None}]}),
        "pipelined": search("search", "ring") + binary("x"),
        # the JSON checks' own paths: string escapes, and more than MAX_JSON_DEPTH brackets
        # (so the nesting check scans) while nested no deeper than the limit
        "search-escapes": encode_message(
            br'{"action": "search", "value": "say \"hi\" \\ \u00e9 \ud83d\udc36 [{\/"}',
            content_type="text/json", content_encoding="utf-8", byteorder="little"),
        "nesting-at-the-limit": json_message(
            {"action": "search", "value": _nested(['a"b', {}, [], {}, [], []], 29)}, byteorder="little"),
    }
    for dtype in arrays.DTYPES:
        numbers = {"float32": "1.5,-2,1e30", "float64": "1.5,-2,1e300"}.get(dtype, "1,-2,3")
        if dtype.startswith("uint"):
            numbers = "0,1,0x10"
        seeds[f"array-{dtype}"] = app.make_request(
            "stats", numbers, dtype=dtype, byteorder="big" if dtype[-2:] in ("16", "64") else "little")
    return seeds


if __name__ == "__main__":  # python lab_tests/fuzz/frames.py DIR: (re)write the seed corpus
    from pathlib import Path

    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for name, wire in seed_frames().items():
        (target / name).write_bytes(wire)
