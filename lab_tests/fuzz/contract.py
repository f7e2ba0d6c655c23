"""The edge contract as one check function: the fuzzer, the unit-tier replay and hypothesis use it.

The contract (services/socketlab/protocol.py and app.py docstrings, h11's ``next_event``): for
any bytes a peer sends,

* :class:`MessageDecoder` (``receive_data`` / ``next_message``) returns a :class:`Message` or
  ``NEED_DATA``, or raises :class:`RemoteProtocolError`, in any chunking, and the same messages
  and outcome whatever the chunking;
* ``app.respond(message)`` (with the right and with the naive array decoder) returns bytes or
  raises :class:`RemoteProtocolError`, and the bytes decode as exactly one valid message that
  the client's ``app.describe_response`` reads without complaint;
* ``app.describe_response(message)`` on a peer's message (the client reading a hostile reply)
  and ``app.received_line`` (the server's and the client's narration) return a result or raise
  :class:`RemoteProtocolError`; the lines the client prints (``app.result_lines``) are each
  one printable line, whatever the reply holds;
* a :class:`RemoteProtocolError` is answered with ``app.error_response(...)``, which always
  encodes and decodes;
* no input costs more than :data:`STALL_CPU_SECONDS` of CPU, nor more than its linear share of
  that for a maximum-size request (:func:`cpu_budget`): quadratic code shows up as a stall
  on a few kilobytes instead of needing megabytes.

Any other exception propagates unchanged (that is the bug, with its traceback); a broken
promise that is not an exception raises :class:`ContractViolation`. Standard library only.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Sequence

from socketlab import app, arrays
from socketlab.protocol import MAX_CONTENT_LENGTH, NEED_DATA, Message, MessageDecoder, RemoteProtocolError

__all__ = ["ContractViolation", "Stall", "STALL_CPU_SECONDS", "STALL_FLOOR_SECONDS", "Stats", "check",
           "chunk_sizes", "cpu_budget", "decode"]

#: CPU seconds one input may cost, every step included (decode twice, answer, read answers).
STALL_CPU_SECONDS = 1.0
#: Superlinear code shows at small sizes: an input of n bytes may cost its linear share of
#: STALL_CPU_SECONDS for a MAX_CONTENT_LENGTH request, and at least this (fixed per-input costs,
#: the fuzzer's instrumentation, noise: a normal input costs a few milliseconds, but a garbage
#: collection on a busy CI host once cost 59 ms; the quadratic stall found costs seconds at 24 KB).
STALL_FLOOR_SECONDS = 0.25
#: Messages per input that are answered (the decoder still sees every byte).
MAX_ANSWERED = 4


class ContractViolation(AssertionError):
    """The code under test broke a promise without raising an exception of its own."""


class Stall(ContractViolation):
    """One input took more CPU than its budget (:func:`cpu_budget`)."""


class Stats:
    """What the inputs reached, so a fuzz run can show it got past the framing."""

    def __init__(self) -> None:
        self.inputs = self.messages = self.refused = 0
        self.answers = {"text": 0, "array": 0, "binary": 0, "error": 0}

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.answers.items())
        return (f"inputs {self.inputs}, messages {self.messages}, refused by the decoder "
                f"{self.refused}, answers: {kinds}")


def cpu_budget(size: int, stall_seconds: float = STALL_CPU_SECONDS) -> float:
    """CPU seconds an input of ``size`` bytes may cost: if it costs more, a linear extrapolation
    to a MAX_CONTENT_LENGTH request already costs more than ``stall_seconds``."""
    return min(stall_seconds, max(STALL_FLOOR_SECONDS, stall_seconds * size / MAX_CONTENT_LENGTH))


def chunk_sizes(data: bytes, seed: int | None = None, max_chunks: int = 48) -> list[int]:
    """A chunking of ``data`` (sizes >= 1 summing to len(data)), reproducible from its bytes:
    single bytes, small and large pieces, at most ``max_chunks`` of them (the last one takes the
    rest), so a 20 KB input costs tens of decoder calls, not thousands."""
    rng = random.Random(zlib.crc32(data) if seed is None else seed)
    sizes, left = [], len(data)
    while left:
        size = left if len(sizes) == max_chunks - 1 else \
            min(left, rng.choice([1, 1, 2, 3, rng.randrange(1, 64), rng.randrange(1, left + 1)]))
        sizes.append(size)
        left -= size
    return sizes


def decode(data: bytes, chunks: Sequence[int] | None = None) -> tuple[list[Message], RemoteProtocolError | None]:
    """Every message in ``data`` fed in ``chunks`` then end of stream; stops at the first
    RemoteProtocolError, which is returned. Any other exception propagates."""
    decoder = MessageDecoder()
    messages: list[Message] = []
    offset = 0
    try:
        for size in chunks if chunks is not None else [len(data)]:
            if size:
                decoder.receive_data(data[offset : offset + size])
                offset += size
            while (message := decoder.next_message()) is not NEED_DATA:
                _is_message(message, "next_message")
                messages.append(message)
        decoder.receive_data(b"")
        while (message := decoder.next_message()) is not NEED_DATA:
            _is_message(message, "next_message after end of stream")
            messages.append(message)
    except RemoteProtocolError as exc:
        return messages, exc
    if offset != len(data):
        raise ValueError(f"chunks {list(chunks or [])!r} do not cover {len(data)} bytes")
    return messages, None


def _is_message(message: object, where: str) -> None:
    if not isinstance(message, Message) or not isinstance(message.header, dict) \
            or not isinstance(message.content, bytes):
        raise ContractViolation(f"{where} returned {message!r}, not a Message or NEED_DATA")


def decode_one(wire: object, what: str) -> Message:
    """``wire`` must be exactly one valid message."""
    if not isinstance(wire, bytes):
        raise ContractViolation(f"{what} is {type(wire).__name__}, not bytes")
    try:
        messages, error = decode(wire)
    except RemoteProtocolError as exc:  # pragma: no cover - decode() returns it
        error, messages = exc, []
    if error is not None or len(messages) != 1:
        raise ContractViolation(
            f"{what} is not exactly one valid message: {len(messages)} message(s), "
            f"error {error!r}: {wire[:200]!r}")
    return messages[0]


def _answer(message: Message, array_decoder: Callable, respond: Callable, stats: Stats | None) -> None:
    try:
        wire = respond(message, array_decoder=array_decoder)
    except RemoteProtocolError as exc:
        wire = app.error_response(f"bad request: {exc}")  # what the server sends
        kind = "error"
    else:
        kind = ("text" if message.content_type == "text/json"
                else "array" if message.media_type == arrays.ARRAY_MEDIA_TYPE else "binary")
    if not isinstance(app.shown(wire), str):  # the server's "Sending ..." narration
        raise ContractViolation("shown() of an answer is not text")
    reply = decode_one(wire, f"the answer to {message!r}")
    try:
        result = app.describe_response(reply)
    except RemoteProtocolError as exc:
        raise ContractViolation(f"the client refuses our own answer {reply!r}: {exc}") from exc
    if kind == "error" and not (isinstance(result, str) and result.startswith("Error: ")):
        raise ContractViolation(f"error answer reads as {result!r}")
    if stats is not None:
        stats.answers[kind] += 1


def check(
    data: bytes,
    chunks: Sequence[int] | None = None,
    *,
    stats: Stats | None = None,
    respond: Callable[..., bytes] = app.respond,
    describe: Callable[[Message], object] = app.describe_response,
    stall_seconds: float = STALL_CPU_SECONDS,
) -> None:
    """Check the whole contract on one input (see the module docstring).

    ``chunks``: how to cut ``data`` for the incremental decode (default: a pseudo-random
    chunking derived from the bytes, so a failure reproduces). ``respond`` and ``describe``
    are replaceable for the negative-control tests.
    """
    started = time.process_time()
    if stats is not None:
        stats.inputs += 1
    whole, whole_error = decode(data)
    pieces, pieces_error = decode(data, chunk_sizes(data) if chunks is None else chunks)
    if [(m.header, m.content) for m in whole] != [(m.header, m.content) for m in pieces] \
            or type(whole_error) is not type(pieces_error):
        raise ContractViolation(
            f"the chunking changes the outcome: whole {len(whole)} message(s), {whole_error!r}; "
            f"chunked {len(pieces)} message(s), {pieces_error!r}")
    if whole_error is not None:
        decode_one(app.error_response(f"bad request: {whole_error}"), "the error answer")
        if stats is not None:
            stats.refused += 1
    for message in whole[:MAX_ANSWERED]:
        if stats is not None:
            stats.messages += 1
        _answer(message, arrays.decode_array, respond, stats)
        if message.media_type == arrays.ARRAY_MEDIA_TYPE:  # the naive decoder differs only there
            _answer(message, arrays.decode_array_naive, respond, None)
        for what in ("request", "response"):  # the -v narration of server and client
            try:
                line = app.received_line(message, what, ("192.0.2.1", 40000))  # any peer (TEST-NET-1)
            except RemoteProtocolError:
                continue
            if not isinstance(line, str):
                raise ContractViolation(f"received_line gave {line!r}, not text")
        try:  # the client reading this message as if it were a reply, and printing it
            describe(message)
            lines = app.result_lines(message)
        except RemoteProtocolError:
            lines = []
        for line in lines:  # what a peer sends cannot add a line or drive the terminal
            if not line.isprintable():
                raise ContractViolation(f"the client would print {line[:200]!r}: not one printable line")
    spent = time.process_time() - started
    budget = cpu_budget(len(data), stall_seconds)
    if spent > budget:
        raise Stall(f"one input of {len(data)} bytes took {spent:.3f} s of CPU (budget {budget:.3f} s:"
                    f" {stall_seconds} s for {MAX_CONTENT_LENGTH} bytes, linearly, at least "
                    f"{STALL_FLOOR_SECONDS} s)")
