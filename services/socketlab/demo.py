"""The oracle: every request kind, and what a right answer is (``socketlab demo``).

One home for the demo's requests, their expected answers and the array values, so the demo,
the unit, lab and guest tiers agree by importing it (the guest runs the demo itself, so this
module is standard library only, like the rest of the package).
"""

from __future__ import annotations

import platform
import struct
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from socketlab import app, arrays, client
from socketlab.errors import Outcome, classify
from socketlab.protocol import MessageDecoder

__all__ = ["ARRAYS", "Case", "cases", "expected_values", "expected_result", "run"]

#: dtype -> values whose bytes are not palindromes, so a byte-order mistake cannot hide.
ARRAYS = {
    "int16": [0x0102, -2, 300, -32768, 32767],
    "uint16": [0x0102, 65535, 1, 0x8000],
    "int32": [0x01020304, -2, 70000, -(2**31), 2**31 - 1],
    "uint32": [0x01020304, 2**32 - 1, 1, 0x80000000],
    "int64": [0x0102030405060708, -2, -(2**63), 2**63 - 1],
    "uint64": [0x0102030405060708, 2**64 - 1, 1],
    "float32": [1.5, -0.1, 3.25e-3, 65504.0],
    "float64": [1.5, -0.1, 3.25e-3, 1e300],
}

#: The answers of the guide's older revision (double quotes), accepted from a guide server.
_OLD_NO_MATCH = 'No match for "{}".'
_OLD_INVALID_ACTION = 'Error: invalid action "{}".'


def expected_values(dtype: str) -> list[int | float]:
    """:data:`ARRAYS` ``[dtype]`` as the dtype holds them (float32 rounds)."""
    values = ARRAYS[dtype]
    code = f"<{len(values)}{arrays.DTYPES[dtype]}"
    return list(struct.unpack(code, struct.pack(code, *values)))


def expected_result(dtype: str) -> dict[str, Any]:
    """What a client shows for the ``stats`` answer to :data:`ARRAYS` ``[dtype]``."""
    values = expected_values(dtype)
    return {"values": values, "stats": arrays.array_stats(values)}


class Case(NamedTuple):
    label: str
    action: str
    value: str
    dtype: str | None
    json_request: bool
    acceptable: list[Any]  # right answers (a guide server may give the older revision's)

    def request(self, byteorder: str = sys.byteorder) -> bytes:
        return app.make_request(self.action, self.value, dtype=self.dtype or "int32",
                                byteorder=byteorder, json_request=self.json_request)


def cases() -> Iterator[Case]:
    """Every request kind: the guide's, made as its client makes them, then socketlab's
    additions (an action sent as JSON: the invalid-action answer; the arrays)."""
    for query, answer in app.SEARCH.items():
        yield Case(f"search {query!r}", "search", query, None, False, [answer])
    yield Case("search 'nothing'", "search", "nothing", None, False,
               [app.NO_MATCH.format("nothing"), _OLD_NO_MATCH.format("nothing")])
    yield Case("action 'double'", "double", "10", None, False,
               [repr(app.binary_answer(b"double10"))])
    yield Case("binary '\U0001f40d bytes'", "binary", "\U0001f40d bytes", None, False,
               [repr(app.binary_answer("binary\U0001f40d bytes".encode()))])
    yield Case("JSON action 'double'", "double", "10", None, True,
               [app.INVALID_ACTION.format("double"), _OLD_INVALID_ACTION.format("double")])
    for dtype, values in ARRAYS.items():
        yield Case(f"stats {dtype}", "stats", ",".join(map(repr, values)), dtype, False,
                   [expected_result(dtype)])


def _guide_server_answer(wire: bytes, result: Any) -> bool:
    """True when ``result`` is how the guide's own server answers an array request: it has no
    array type, so it answers any binary content with its first 10 bytes."""
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    return result == repr(app.binary_answer(decoder.next_message().content))


def _summary(result: Any) -> str:
    """A right answer, short: an array's statistics, or the text."""
    if isinstance(result, dict):
        stats = result["stats"]
        return (f"sum={stats['sum']!r} min={stats['min']!r} max={stats['max']!r}, "
                f"{len(result['values'])} values echoed")
    return app.printable(result)


def _shown(result: Any) -> str:
    """A wrong answer as it came, whatever its shape, on one line, cut (:func:`app.brief`)."""
    text = app.printable(result if isinstance(result, str) else app.brief(result))
    return text if len(text) <= 512 else f"{text[:512]}... ({len(text)} characters)"


#: What a server that is still starting looks like to its first client: nothing listens yet,
#: or its address is not up yet (the router's ARP finds nobody), or its SYN goes unanswered.
NOT_UP_YET = {Outcome.REFUSED, Outcome.UNREACHABLE, Outcome.NETWORK_UNREACHABLE, Outcome.TIMEOUT}


def _first_request(host, port, wire, *, timeout, tls, wait, say):
    """The first request, tried again (every 0.2 s, each try with what is left of WAIT) while
    the server is not up yet; the last failure is raised once WAIT has passed."""
    end = time.monotonic() + wait
    said = False
    while True:
        left = end - time.monotonic()
        try:
            return client.request(host, port, wire, timeout=min(timeout, max(left, 0.5)), tls=tls)
        except OSError as exc:
            failure = classify(exc)
            if failure.outcome not in NOT_UP_YET or left <= 0.2:
                raise
            if not said:
                say(f"server: not up yet ({failure.words}); trying again for up to {wait:g} s")
                said = True
            time.sleep(0.2)  # pacing the tries while the server starts, within WAIT


def run(host: str, port: int, *, timeout: float, shown_host: str | None = None,
        say: Callable[[str], None] = print, tls=None, wait: float = 0.0) -> tuple[int, int]:
    """Every case against an app server, one line each; returns (wrong answers, cases).
    ``tls`` (a :class:`socketlab.tls.ClientTLS`): every request over TLS. ``wait``: seconds
    the first request is tried again while the server looks not up yet (:data:`NOT_UP_YET`),
    so a lab's client may start beside its server rather than after it."""
    say(f"byteorder: {sys.byteorder} (this client: Python {platform.python_version()} "
        f"on {platform.machine() or 'unknown'})")
    say(f"server: {shown_host or host} port {port}")
    wrong, skipped, total = 0, 0, 0
    for case in cases():
        total += 1
        wire = case.request()
        if total == 1 and wait:
            reply = _first_request(host, port, wire, timeout=timeout, tls=tls, wait=wait, say=say)
        else:
            reply = client.request(host, port, wire, timeout=timeout, tls=tls)
        result = app.describe_response(reply.response)
        if result in case.acceptable:
            verdict = "ok "
        elif case.action == "stats" and _guide_server_answer(wire, result):
            verdict, skipped = "-- ", skipped + 1
            result = f"{result} (the guide's server: no array type)"
        else:
            verdict, wrong = "BAD", wrong + 1
        say(f"{verdict} {case.label:<22} -> {_summary(result) if verdict == 'ok ' else _shown(result)}")
        if verdict == "BAD":
            say(f"    expected {case.acceptable[0]!r}")
    if not wrong and skipped:
        say(f"demo: all {total - skipped} answers correct; {skipped} array requests answered "
            f"as the guide's own server does (socketlab's array type is an extension)")
    elif not wrong:
        over = f", over {reply.tls['version']} {reply.tls['cipher']}" if reply.tls else ""
        say(f"demo: all {total} answers correct (peer {reply.peer[0]}, me {reply.local[0]}{over})")
    return wrong, total

