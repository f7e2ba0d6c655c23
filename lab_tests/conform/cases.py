"""The conformance cases: what each checks, the guide's words for it, and how it is judged.

An :class:`Exchange` is what happens on the wire once: for a client under test, how the suite's
server (lab_tests/conform/peer.py) answers it and what it is asked to do; for a server under
test, the steps of the suite's client. A :class:`Case` judges one exchange; several cases may
judge the same exchange (the request of ``search morpheus`` is judged for its length prefix,
its header, its byte order ...), so the lab runs each exchange once per position.

This table is the single source of docs/conformance.md's case list (``make docs``).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Callable

from lab_tests import guide, topology
from socketlab import app, arrays
from socketlab.protocol import NEED_DATA, MessageDecoder, ProtocolError, json_message

ROLES = ("app-server", "app-client", "echo-server", "echo-client", "multiconn-server", "multiconn-client")
CLIENTS = ("app-client", "echo-client", "multiconn-client")
SERVERS = ("app-server", "echo-server", "multiconn-server")
#: The placeholders a role's command must have (clients may have more: ``{message}``).
PLACEHOLDERS = {
    "app-client": ("host", "port", "action", "value"),
    "echo-client": ("host", "port"),
    "multiconn-client": ("host", "port", "num_conns"),
    "app-server": ("host", "port"),
    "echo-server": ("host", "port"),
    "multiconn-server": ("host", "port"),
}
OPTIONAL = {"echo-client": ("message",)}
VERDICTS = ("PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED")
TOPICS = {
    "1": "1. The echo client and server",
    "2": "2. The multi-connection client and server",
    "3": "3. The application client and server",
    "4": "4. Across the lab: the router, its firewall and failing peers",
}
#: The router's rules (services/router/nftables.conf; docs/address-plan.md).
RESET_PORT, DROP_PORT, ICMP_PORT = topology.REFUSED_PORT, topology.DROPPED_PORT, topology.UNREACHABLE_PORT
MESSAGE = "Hello, world"
NUM_CONNS = 3
ARRAY_VALUES = (1, -2, 300, -40000, 2147483647, -2147483648)


@dataclass
class Position:
    """Where the program under test runs, as the judges need it."""

    name: str        # "little-endian" | "big-endian"
    byteorder: str   # what its CPU's sys.byteorder is
    address: str     # the program's host address


@dataclass(frozen=True)
class Exchange:
    """One exchange, run once per position. Client roles: ``plans`` (one run each: how the
    suite's server answers; None: nobody listens, a router rule answers at ``port``) and the
    placeholders' values. Server roles: ``steps`` (one run each: the suite client's steps)."""

    key: str
    plans: tuple = ()
    port: int | None = None
    args: dict = field(default_factory=dict)
    steps: tuple = ()
    deadline: float = 10.0


@dataclass
class Run:
    """What one run of an exchange left: the program's result (clients: jail.run's JSON;
    servers: what it printed meanwhile), the peer's record, and the time window."""

    program: dict
    peer: dict
    t0: float
    t1: float


@dataclass(frozen=True)
class Finding:
    status: str  # "pass" | "fail" | "non-strict" | "unimplemented"
    observed: str


Judge = Callable[[list, Position], Finding]


@dataclass(frozen=True)
class Case:
    id: str
    roles: tuple
    title: str
    guide: str
    expected: str
    exchange: str
    judge: Judge
    informational: bool = False

    @property
    def topic(self) -> str:
        return TOPICS[self.id.split(".")[0]]

    def verdict(self, finding: Finding) -> str:
        return {"pass": "PASS", "non-strict": "NON-STRICT", "unimplemented": "UNIMPLEMENTED",
                "fail": "INFORMATIONAL" if self.informational else "FAIL"}[finding.status]


def ok(observed: str) -> Finding:
    return Finding("pass", observed)


def bad(observed: str) -> Finding:
    return Finding("fail", observed)


# --- reading what was on the wire ------------------------------------------------------------

def raw(text_b64: str) -> bytes:
    return base64.b64decode(text_b64 or "")


def connections(runs: list) -> list:
    return [c for run in runs for c in (run.peer or {}).get("connections", [])]


def first_request(runs: list) -> bytes | None:
    conns = connections(runs)
    return raw(conns[0]["received"]) if conns else None


@dataclass
class Framed:
    """A message as the guide's receiver reads it, with what is wrong with it."""

    prefix: int | None = None
    header: dict | None = None
    content: bytes = b""
    extra: int = 0
    problem: str | None = None


def frame(data: bytes) -> Framed:
    """Read DATA as one message of the guide's protocol, strictly: the prefix big-endian, the
    header UTF-8 JSON with the four fields, exactly content-length bytes of content."""
    if data is None or len(data) < 2:
        return Framed(problem=f"{len(data or b'')} bytes: not even the 2-byte length")
    prefix = struct.unpack(">H", data[:2])[0]
    swapped = struct.unpack("<H", data[:2])[0]
    body = data[2:]
    if prefix > len(body):
        hint = ""
        if swapped <= len(body) and body[:1] == b"{":
            hint = (f"; read little-endian it is {swapped}: the length was packed in the CPU's "
                    f"native order, not network order")
        return Framed(prefix=prefix, problem=f"the 2-byte length {data[:2].hex()} is {prefix} "
                                             f"(big-endian), but only {len(body)} bytes follow{hint}")
    try:
        header = json.loads(body[:prefix].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        hint = " (read little-endian it fits: native order)" if swapped < prefix and body[:1] == b"{" else ""
        return Framed(prefix=prefix, problem=f"the {prefix}-byte header is not UTF-8 JSON: {exc}{hint}")
    if not isinstance(header, dict):
        return Framed(prefix=prefix, problem=f"the header is a JSON {type(header).__name__}, not an object")
    missing = [f for f in ("byteorder", "content-length", "content-type", "content-encoding") if f not in header]
    if missing:
        return Framed(prefix=prefix, header=header, problem=f"the header lacks {', '.join(missing)}")
    length = header["content-length"]
    rest = body[prefix:]
    if not isinstance(length, int) or length < 0:
        return Framed(prefix=prefix, header=header, problem=f"content-length {length!r} is not a count")
    if length > len(rest):
        return Framed(prefix=prefix, header=header, content=rest,
                      problem=f"content-length {length} but {len(rest)} bytes of content came")
    return Framed(prefix=prefix, header=header, content=rest[:length], extra=len(rest) - length)


def decoded(data: bytes):
    """socketlab's decoder's Message for DATA, or (a str) why there is none."""
    decoder = MessageDecoder()
    try:
        decoder.receive_data(data)
        message = decoder.next_message()
    except ProtocolError as exc:
        return f"{type(exc).__name__}: {exc}"
    if message is NEED_DATA:
        return f"no whole message in {len(data)} bytes"
    return message


def program_output(runs: list) -> str:
    return "\n".join((r.program.get("stdout") or "") + (r.program.get("stderr") or "") for r in runs)


def brief(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def ending(run: Run) -> str:
    p = run.program
    if p.get("stopped"):
        return f"stopped by the runner at the case's deadline, still running after {p.get('duration_s')} s"
    return f"exited with status {p.get('returncode')} after {p.get('duration_s')} s"


# --- judges for clients ----------------------------------------------------------------------

def request_framing(runs, pos):
    data = first_request(runs)
    if not data:
        return bad("the suite's server received no bytes")
    f = frame(data)
    if f.prefix is None or (f.problem and "2-byte length" in f.problem):
        return bad(f.problem)
    if f.problem and "not UTF-8 JSON" in f.problem:
        return bad(f.problem)
    return ok(f"prefix {data[:2].hex()} = {f.prefix}, the JSON header's length")


def request_header_fields(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.header is None or (f.problem and "lacks" in f.problem):
        return bad(f.problem or "no header")
    return ok("header " + json.dumps({k: f.header[k] for k in ("byteorder", "content-type", "content-encoding",
                                                                 "content-length")}, ensure_ascii=False))


def request_length_exact(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.problem:
        return bad(f.problem)
    if f.extra:
        return bad(f"{f.extra} bytes after content-length {f.header['content-length']}")
    return ok(f"content-length {f.header['content-length']}, and exactly that many bytes of content")


def request_byteorder(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.header is None:
        return bad(f.problem or "no header")
    said = f.header.get("byteorder")
    if said != pos.byteorder:
        return bad(f"byteorder {said!r} from a {pos.byteorder}-endian CPU")
    return ok(f"byteorder {said!r}")


def search_request_form(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.problem:
        return bad(f.problem)
    if f.header["content-type"] != "text/json":
        return bad(f"content-type {f.header['content-type']!r}")
    try:
        body = json.loads(f.content.decode(f.header["content-encoding"]))
    except (LookupError, UnicodeDecodeError, ValueError) as exc:
        return bad(f"the content is not {f.header['content-encoding']} JSON: {exc}")
    if body != {"action": "search", "value": "morpheus"}:
        return bad(f"content {body!r}")
    if f.header["content-encoding"] != "utf-8":
        return Finding("non-strict", f"content-encoding {f.header['content-encoding']!r}")
    return ok(f"text/json utf-8 {f.content.decode('utf-8')}")


def utf8_value(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.problem:
        return bad(f.problem)
    if "\U0001f436".encode("utf-8") in f.content:
        return ok(f"the value travels as UTF-8: {f.content!r}")
    try:
        if json.loads(f.content.decode("utf-8")).get("value") == "\U0001f436":
            return Finding("non-strict", "the value is \\u-escaped JSON (json.dumps' default), "
                                         f"not UTF-8: {f.content!r}")
    except (ValueError, AttributeError):
        pass
    return bad(f"no \U0001f436 in the content: {f.content!r}")


def binary_request_form(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.problem:
        return bad(f.problem)
    if f.header["content-type"] != app.BINARY_REQUEST_TYPE or f.content != b"double10":
        return bad(f"content-type {f.header['content-type']!r}, content {f.content!r}")
    return ok(f"{app.BINARY_REQUEST_TYPE}, content {f.content!r}")


def prints(*texts):
    def judge(runs, pos):
        out = program_output(runs)
        missing = [t for t in texts if t not in out]
        if missing:
            return bad(f"{ending(runs[0])}; its output lacks {missing[0]!r}: {brief(out)!r}")
        return ok(f"printed {texts[0]!r}; {ending(runs[0])}")
    return judge


def every_run_prints(text):
    def judge(runs, pos):
        wrong = [i for i, run in enumerate(runs) if text not in program_output([run])]
        if wrong:
            run = runs[wrong[0]]
            split = run.peer.get("plan", {}).get("delivery")
            return bad(f"{len(wrong)} of {len(runs)} runs: its output lacks {text!r}; with the answer split "
                       f"at {split}: {ending(run)}, output {brief(program_output([run]))!r}")
        return ok(f"{len(runs)} runs, each printed {text!r}")
    return judge


def closes_after(runs, pos):
    conns = connections(runs)
    if not conns:
        return bad("no connection")
    end = conns[0].get("client_end")
    if end in ("eof", "reset"):
        return ok(f"the client closed the connection ({'FIN' if end == 'eof' else 'RST'}) after the answer")
    return bad(f"the connection was still open 5 s after the answer ({ending(runs[0])})")


def array_values(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.problem:
        return bad(f.problem)
    if not str(f.header["content-type"]).startswith(arrays.ARRAY_MEDIA_TYPE):
        return Finding("unimplemented", f"no array type: the request is {f.header['content-type']!r} "
                                        f"({f.content[:40]!r})")
    message = decoded(first_request(runs))
    if isinstance(message, str):
        return bad(f"refused: {message}")
    values = tuple(arrays.decode_array(message).tolist())
    if values != ARRAY_VALUES:
        return bad(f"decoded per its header (byteorder {f.header['byteorder']!r}): {values}; given {ARRAY_VALUES}")
    return ok(f"{f.header['content-type']}, byteorder {f.header['byteorder']!r}: {values}")


def array_answer_read(runs, pos):
    f = frame(first_request(runs) or b"")
    if f.header and not str(f.header.get("content-type")).startswith(arrays.ARRAY_MEDIA_TYPE):
        return Finding("unimplemented", "no array type (see the request case)")
    total = str(sum(ARRAY_VALUES))
    out = program_output(runs)
    if total in out:
        return ok(f"the answer's sum {total} shown")
    return bad(f"the sum {total} is not in its output: {brief(out)!r}")


# --- judges for clients facing failures --------------------------------------------------------

OUTCOME_WORDS = {
    "timeout": r"time[d ]?[- ]?out|timeout|ETIMEDOUT|gave up",
    "reset": r"reset|ECONNRESET",
    "closed": r"closed|EOF|without (a |an )?(answer|response|reply)|no (answer|response|reply)",
    "refused": r"refused|ECONNREFUSED",
    "unreachable": r"unreachable|no route to host|EHOSTUNREACH",
}


def gives_up(runs, pos):
    run = runs[0]
    if run.program.get("stopped"):
        return bad(f"no timeout of its own: {ending(run)}")
    return ok(ending(run))


def ends(runs, pos):
    run = runs[0]
    if run.program.get("stopped"):
        return bad(ending(run))
    return ok(ending(run))


def ends_without_result(answer_texts):
    def judge(runs, pos):
        run = runs[0]
        if run.program.get("stopped"):
            return bad(ending(run))
        out = program_output(runs)
        shown = [t for t in answer_texts if t in out]
        if shown:
            return bad(f"reported a result it never got: {shown[0]!r}")
        return ok(ending(run))
    return judge


def says(outcome):
    pattern = re.compile(OUTCOME_WORDS[outcome], re.IGNORECASE)

    def judge(runs, pos):
        out = program_output(runs)
        if pattern.search(out):
            return ok(f"said {pattern.search(out).group(0)!r}: {brief(out, 200)!r}")
        return bad(f"its output does not say {outcome}: {brief(out, 200)!r} ({ending(runs[0])})")
    return judge


# --- judges for echo and multiconn clients ------------------------------------------------------

def echo_sent_message(runs, pos):
    data = first_request(runs)
    if data is None:
        return bad("no connection reached the suite's server")
    if data != MESSAGE.encode():
        return bad(f"sent {data!r}, given {MESSAGE!r}")
    return ok(f"sent {data!r}")


def echo_prints(runs, pos):
    out = program_output(runs)
    return ok(f"printed {brief(out)!r}") if MESSAGE in out else bad(f"{ending(runs[0])}: {brief(out)!r}")


def multiconn_opened(runs, pos):
    conns = connections(runs)
    if len(conns) != NUM_CONNS:
        return bad(f"{len(conns)} connections, asked for {NUM_CONNS}")
    return ok(f"{NUM_CONNS} connections from ports {sorted(c['peer'][1] for c in conns)}")


def multiconn_complete(runs, pos):
    conns = connections(runs)
    if not conns:
        return bad("no connection")
    sent = [raw(c["received"]) for c in conns]
    if any(not s for s in sent):
        return bad(f"{sum(not s for s in sent)} connections sent nothing")
    open_ = [c for c in conns if c.get("read") != "eof"]
    if open_:
        return bad(f"{len(open_)} connections not closed by the client after their echo ({ending(runs[0])})")
    if runs[0].program.get("stopped") or runs[0].program.get("returncode") != 0:
        return bad(ending(runs[0]))
    return ok(f"{len(conns)} connections, each echoed whole ({sorted(len(s) for s in sent)} bytes) and closed; "
              f"{ending(runs[0])}")


# --- judges for servers ---------------------------------------------------------------------------

def step(runs, index=-1, run=0):
    return runs[run].peer["steps"][index]


def answer_frame(runs, run=0, which=None):
    """The answer of a server exchange: the last recv step (or step WHICH)."""
    steps = runs[run].peer.get("steps", [])
    reads = [s for s in steps if s["op"] in ("recv_message", "recv_until_close")]
    if which is not None:
        reads = [steps[which]]
    if not reads:
        return None, "no answer read"
    s = reads[0]
    if not s.get("ok"):
        return None, s.get("error")
    return raw(s.get("data")), s.get("end")


def failed_step(runs):
    for i, run in enumerate(runs):
        for s in run.peer.get("steps", []):
            if not s.get("ok"):
                return f"{s['op']} {s.get('conn') or ''} failed: {s.get('error')}"
    return None


def answers(expected_result):
    if isinstance(expected_result, bytes):  # a binary answer is shown as its repr
        expected_result = repr(expected_result)

    def judge(runs, pos):
        problem = failed_step(runs)
        if problem:
            return bad(f"no answer: {problem}")
        data, end = answer_frame(runs)
        f = frame(data or b"")
        if f.problem:
            return bad(f"no answer: {f.problem} (the read ended: {end})")
        message = decoded(data)
        if isinstance(message, str):
            return bad(message)
        got = app.describe_response(message)
        if isinstance(got, dict):
            got = got.get("result")
        if got != expected_result:
            return bad(f"answered {got!r}")
        return ok(f"answered {got!r}")
    return judge


def reply_framing(runs, pos):
    problem = failed_step(runs)
    if problem:
        return bad(problem)
    data, end = answer_frame(runs)
    f = frame(data or b"")
    if f.problem:
        return bad(f.problem)
    if f.extra:
        return bad(f"{f.extra} bytes after the content")
    return ok(f"prefix {data[:2].hex()} = {f.prefix}; header {json.dumps(f.header, ensure_ascii=False)}")


def reply_byteorder(runs, pos):
    data, _ = answer_frame(runs)
    f = frame(data or b"")
    if f.header is None:
        return bad(f.problem or "no answer")
    if f.header.get("byteorder") != pos.byteorder:
        return bad(f"byteorder {f.header.get('byteorder')!r} from a {pos.byteorder}-endian CPU")
    return ok(f"byteorder {f.header['byteorder']!r}")


def server_closes(runs, pos):
    steps = runs[0].peer.get("steps", [])
    closing = [s for s in steps if s["op"] == "recv_until_close"]
    if not closing or not closing[-1].get("ok"):
        return bad(failed_step(runs) or "no read")
    if closing[-1]["end"] == "eof":
        return ok("the server closed the connection after its answer (FIN)")
    return bad(f"after its answer the connection ended: {closing[-1]['end']}")


def array_answer(byteorder):
    def judge(runs, pos):
        problem = failed_step(runs)
        if problem:
            return bad(problem)
        data, _ = answer_frame(runs)
        message = decoded(data or b"")
        if isinstance(message, str):
            return bad(message)
        if message.media_type != arrays.ARRAY_MEDIA_TYPE:
            return Finding("unimplemented", f"no array type: answered {message.content_type!r} "
                                            f"{brief(repr(app.describe_response(message)), 120)}")
        values = tuple(arrays.decode_array(message).tolist())
        stats = message.header.get("x-stats") or {}
        if values != ARRAY_VALUES or stats.get("sum") != sum(ARRAY_VALUES):
            return bad(f"values {values}, sum {stats.get('sum')} (sent {ARRAY_VALUES} packed {byteorder}-endian)")
        return ok(f"values and sum {stats.get('sum')} right, answered in byteorder {message.byteorder!r}")
    return judge


def every_answer(expected_result):
    """Every run of a multi-connection exchange answered EXPECTED_RESULT."""
    def judge(runs, pos):
        wrong = []
        count = 0
        for run in runs:
            for i, s in enumerate(run.peer.get("steps", [])):
                if s["op"] != "recv_message":
                    continue
                count += 1
                message = decoded(raw(s.get("data"))) if s.get("ok") else s.get("error")
                result = app.describe_response(message) if not isinstance(message, str) else message
                result = result.get("result") if isinstance(result, dict) else result
                if result != expected_result:
                    wrong.append((s.get("conn"), result, s.get("end")))
        if not count:
            return bad(failed_step(runs) or "no answer read")
        if wrong:
            conn, result, end = wrong[0]
            return bad(f"{len(wrong)} of {count} answers wrong; connection {conn}: {brief(str(result), 150)!r} "
                       f"(read ended: {end})")
        return ok(f"{count} answers, each {expected_result!r}")
    return judge


def echoes():
    def judge(runs, pos):
        refused = [s for run in runs for s in run.peer.get("steps", []) if s["op"] == "connect" and not s.get("ok")]
        if refused:
            return bad(f"connect {refused[0].get('conn')} failed: {refused[0].get('error')}")
        checked = 0
        for run in runs:
            for s in run.peer.get("steps", []):
                if s["op"] != "echo":
                    continue
                checked += 1
                if not s.get("ok"):
                    return bad(f"connection {s.get('conn')}: {s.get('error')}")
                if s.get("first_difference") is not None or s.get("length") != s.get("expected_length"):
                    return bad(f"connection {s.get('conn')}: {s.get('length')} of {s.get('expected_length')} "
                               f"bytes came back, first difference at byte {s.get('first_difference')} "
                               f"(ended: {s.get('end')})")
        if not checked:
            return bad(failed_step(runs) or "nothing echoed")
        return ok(f"{checked} echoes, every byte back in order")
    return judge


def still_serving(runs, pos):
    """The echo after a client's reset came from the same server: it did not exit meanwhile."""
    if any(run.program.get("restarted_before") for run in runs[1:]):
        return bad("the server had exited after the client's reset (the runner started it again): "
                   + brief((runs[0].program.get("stderr") or "")[-400:], 400))
    return echoes()(runs, pos)


def echo_then_close(runs, pos):
    verdict = echoes()(runs, pos)
    if verdict.status != "pass":
        return verdict
    ends_ = [s for s in runs[0].peer["steps"] if s["op"] == "recv_until_close"]
    if ends_ and ends_[-1].get("end") == "eof":
        return ok("after the client's FIN, the server closed too")
    return bad(f"after the client's FIN: {ends_[-1].get('end') if ends_ else 'no read'}")


def reachable(runs, pos):
    listening = runs[0].program.get("listening") or []
    problem = failed_step(runs)
    where = f"listening on {', '.join(listening) or 'nothing'}"
    if problem:
        return bad(f"{problem}; {where}")
    return ok(f"connected from {topology.CLIENT_V4} across the router; {where}")


def survives(expected_result):
    """After the bad steps, a right client is answered (the last run's last answer)."""
    def judge(runs, pos):
        steps = runs[-1].peer.get("steps", [])
        last = [s for s in steps if s["op"] == "recv_message"]
        restarted = any(r.program.get("restarted_before") for r in runs[1:])
        if restarted:
            return bad("the server had exited after the bad request (the runner started it again)")
        if not last or not last[-1].get("ok"):
            return bad(failed_step(runs) or "no answer")
        message = decoded(raw(last[-1].get("data")))
        result = app.describe_response(message) if not isinstance(message, str) else message
        result = result.get("result") if isinstance(result, dict) else result
        if result != expected_result:
            return bad(f"the next client got {brief(str(result), 150)!r} (read ended: {last[-1].get('end')})")
        return ok(f"the next client was answered {result!r}")
    return judge


# --- the exchanges ---------------------------------------------------------------------------------

def plan(read="message", reply="answer", delivery="whole", end="close"):
    return {"read": read, "reply": reply, "delivery": delivery, "end": end}


def request(action, value, **kwargs) -> bytes:
    return app.make_request(action, value, byteorder="little", **kwargs)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ask(data: bytes, delivery="whole", conn="a") -> list:
    return [{"op": "connect", "conn": conn}, {"op": "send", "conn": conn, "data": b64(data), "delivery": delivery},
            {"op": "recv_message", "conn": conn, "timeout": 10}]


def ask_and_close(data: bytes, delivery="whole") -> list:
    return ask(data, delivery) + [{"op": "recv_until_close", "conn": "a", "timeout": 5}]


def _splits() -> list:
    """Where the answer to ``search ring`` is cut, one run each: inside the 2-byte length,
    inside the header, inside the 4-byte UTF-8 of the last character. (Every byte at once:
    3.3.1; one run per byte would cost a program start each, 2-3 s in the guest.)"""
    answer = json_message({"result": guide.RING}, byteorder="little")
    hdrlen = struct.unpack(">H", answer[:2])[0]
    return [[1], [2 + hdrlen // 2], [len(answer) - 2]]


RING, MORPHEUS, DOG = guide.RING, guide.MORPHEUS, guide.DOG
ARRAY_TEXT = ",".join(map(str, ARRAY_VALUES))
ARRAY_REQUEST_BIG = app.make_request("stats", ARRAY_TEXT, byteorder="big")
ARRAY_REQUEST_LITTLE = app.make_request("stats", ARRAY_TEXT, byteorder="little")
RING_REQUEST = request("search", "ring")
ECHO_DATA = MESSAGE.encode()
BAD_HEADERS = [
    b"\x00\x05{bad}",                                       # not JSON
    struct.pack(">H", 15) + b'{"byteorder": 1}' [:15],     # JSON, fields missing
    b"\xff\xff" + b"x" * 100,                               # a prefix promising 65535 bytes, then a close
]

EXCHANGES = {e.key: e for e in [
    # clients: how the suite's server answers
    Exchange("morpheus", plans=(plan(),), args={"action": "search", "value": "morpheus"}),
    Exchange("ring", plans=(plan(),), args={"action": "search", "value": "ring"}),
    Exchange("dog", plans=(plan(),), args={"action": "search", "value": "\U0001f436"}),
    Exchange("unknown", plans=(plan(),), args={"action": "search", "value": "unknown"}),
    Exchange("binary", plans=(plan(),), args={"action": "double", "value": "10"}),
    Exchange("array", plans=(plan(),), args={"action": "stats", "value": ARRAY_TEXT}),
    Exchange("reply-bytewise", plans=(plan(delivery="bytes"),), args={"action": "search", "value": "ring"}),
    Exchange("reply-split", plans=tuple(plan(delivery=cut) for cut in _splits()),
             args={"action": "search", "value": "ring"}),
    Exchange("echo", plans=(plan("stream", "echo"),)),
    Exchange("echo-bytewise", plans=(plan("stream", "echo", "bytes"),)),
    Exchange("echo-split", plans=(plan("stream", "echo", [5]),)),
    Exchange("multiconn", plans=(plan("stream", "echo"),)),
    Exchange("multiconn-bytewise", plans=(plan("stream", "echo", "bytes"),)),
    Exchange("silent", plans=(plan(reply="none", end="hold"),), deadline=15),
    Exchange("reset", plans=(plan(reply="none", end="reset"),)),
    Exchange("closed", plans=(plan(reply="none", end="close"),)),
    Exchange("router-drop", port=DROP_PORT, deadline=15),
    Exchange("router-reset", port=RESET_PORT),
    Exchange("router-icmp", port=ICMP_PORT),
    # servers: the suite client's steps
    Exchange("reach", steps=([{"op": "connect", "conn": "a"}, {"op": "close", "conn": "a"}],)),
    Exchange("s-morpheus", steps=(ask_and_close(request("search", "morpheus")),)),
    Exchange("s-ring", steps=(ask(RING_REQUEST),)),
    Exchange("s-dog", steps=(ask(request("search", "\U0001f436")),)),
    Exchange("s-unknown", steps=(ask(request("search", "unknown")),)),
    Exchange("s-binary", steps=(ask(request("double", "10")),)),
    Exchange("s-invalid", steps=(ask(request("double", "10", json_request=True)),)),
    Exchange("s-array-big", steps=(ask(ARRAY_REQUEST_BIG),)),
    Exchange("s-array-little", steps=(ask(ARRAY_REQUEST_LITTLE),)),
    Exchange("s-bytewise", steps=(ask(RING_REQUEST, "bytes"),)),
    Exchange("s-split-every", steps=(
        [s for k in range(1, len(RING_REQUEST)) for s in ask(RING_REQUEST, [k], conn=f"cut{k}")
         + [{"op": "close", "conn": f"cut{k}"}]],), deadline=60),
    Exchange("s-two", steps=([
        {"op": "connect", "conn": "a"}, {"op": "send", "conn": "a", "data": b64(RING_REQUEST[:20])},
        {"op": "connect", "conn": "b"}, {"op": "send", "conn": "b", "data": b64(RING_REQUEST)},
        {"op": "recv_message", "conn": "b", "timeout": 10},
        {"op": "send", "conn": "a", "data": b64(RING_REQUEST[20:])},
        {"op": "recv_message", "conn": "a", "timeout": 10}],)),
    Exchange("s-idle", steps=([{"op": "connect", "conn": "idle"}] + ask(RING_REQUEST, conn="b")
                              + [{"op": "close", "conn": "idle"}],)),
    Exchange("s-malformed", steps=(
        [s for i, bad_ in enumerate(BAD_HEADERS) for s in (
            {"op": "connect", "conn": f"bad{i}"}, {"op": "send", "conn": f"bad{i}", "data": b64(bad_)},
            {"op": "shutdown", "conn": f"bad{i}"}, {"op": "recv_until_close", "conn": f"bad{i}", "timeout": 5})],
        ask(RING_REQUEST))),
    Exchange("s-reset-mid", steps=(
        [{"op": "connect", "conn": "r"}, {"op": "send", "conn": "r", "data": b64(RING_REQUEST[:30])},
         {"op": "pause", "seconds": 0.2}, {"op": "reset", "conn": "r"}, {"op": "pause", "seconds": 0.2}],
        ask(RING_REQUEST))),
    Exchange("s-reset-answer", steps=(
        [{"op": "connect", "conn": "r"}, {"op": "send", "conn": "r", "data": b64(RING_REQUEST)},
         {"op": "reset", "conn": "r"}, {"op": "pause", "seconds": 0.3}],
        ask(RING_REQUEST))),
    Exchange("e-hello", steps=([{"op": "connect", "conn": "a"},
                                {"op": "echo", "conn": "a", "data": b64(ECHO_DATA)},
                                {"op": "shutdown", "conn": "a"},
                                {"op": "recv_until_close", "conn": "a", "timeout": 5}],)),
    Exchange("e-binary", steps=([{"op": "connect", "conn": "a"},
                                 {"op": "echo", "conn": "a", "data": b64(bytes(range(256)))}],)),
    Exchange("e-bytewise", steps=([{"op": "connect", "conn": "a"},
                                   {"op": "echo", "conn": "a", "data": b64(ECHO_DATA), "delivery": "bytes"}],)),
    Exchange("e-split", steps=([{"op": "connect", "conn": "a"},
                                {"op": "echo", "conn": "a", "data": b64(ECHO_DATA), "delivery": [5]}],)),
    Exchange("e-large", steps=([{"op": "connect", "conn": "a", "rcvbuf": 4096},
                                {"op": "echo", "conn": "a", "size": 1 << 20, "timeout": 30, "read_after": 1.0}],),
             deadline=45),
    Exchange("m-two", steps=([
        {"op": "connect", "conn": "a"}, {"op": "connect", "conn": "b"},
        {"op": "echo", "conn": "a", "data": b64(b"first, from a")},
        {"op": "echo", "conn": "b", "data": b64(b"second, from b")},
        {"op": "echo", "conn": "a", "data": b64(b"third, from a")}],)),
    Exchange("m-ten", steps=(
        [{"op": "connect", "conn": f"c{i}"} for i in range(10)]
        + [{"op": "echo", "conn": f"c{i}", "data": b64(f"message {i} of 10, {'x' * i}".encode())}
           for i in reversed(range(10))],)),
    # a closes half-way: its FIN goes at once (shutdown), then it reads what comes back until the
    # server closes. A bare close() would race the server's echo of the half message: arriving
    # first, that echo is unread data at close(), which then sends a reset instead (2.1.5's
    # case), so the outcome would depend on timing.
    Exchange("m-close-mid", steps=([
        {"op": "connect", "conn": "a"}, {"op": "connect", "conn": "b"},
        {"op": "send", "conn": "a", "data": b64(b"half a mess")}, {"op": "shutdown", "conn": "a"},
        {"op": "recv_until_close", "conn": "a", "timeout": 5}, {"op": "close", "conn": "a"},
        {"op": "echo", "conn": "b", "data": b64(b"b is still here")}],)),
    Exchange("m-reset", steps=(
        [{"op": "connect", "conn": "r"}, {"op": "send", "conn": "r", "data": b64(b"going away")},
         {"op": "reset", "conn": "r"}, {"op": "pause", "seconds": 0.3}],
        [{"op": "connect", "conn": "a"}, {"op": "echo", "conn": "a", "data": b64(b"still serving?")}])),
]}

#: What a client prints when it shows the answer: any of it, where there was none, is wrong.
ANSWERS = (MORPHEUS, RING, guide.BINARY_PREFIX.decode(), MESSAGE)
SAYS = "Whether the client says what happened: its output names it."

CASES = [
    # 1. echo
    Case("1.1.1", ("echo-server",), "The exact bytes come back.",
         "The echo server ... sends back whatever it receives: `conn.sendall(data)`.",
         "b'Hello, world' echoed byte for byte, and the server closes after the client does",
         "e-hello", echo_then_close),
    Case("1.1.2", ("echo-server",), "Every byte value 0-255 comes back unchanged.",
         "If conn.recv() returns an empty bytes object, b'', that signals that the client closed the "
         "connection; otherwise the data is sent back.",
         "256 bytes, 0x00 to 0xff, back in order", "e-binary", echoes()),
    Case("1.1.3", ("echo-server",), "A message arriving one byte per segment comes back whole.",
         "The bufsize argument of 1024 is the maximum amount of data to be received at once.",
         "each byte echoed, all 12 back in order", "e-bytewise", echoes()),
    Case("1.1.4", ("echo-server",), "A message split in two comes back whole.",
         ".recv() may need to be called again ... to receive the whole message",
         "b'Hello' then b', world', both echoed", "e-split", echoes()),
    Case("1.1.5", ("echo-server", "multiconn-server"), "1 MiB to a slow reader comes back whole: nothing "
         "dropped when send() takes only part.",
         "Unlike send(), this method continues to send data from bytes until either all data has been "
         "sent or an error occurs.",
         "1 MiB echoed to a reader with a 4 KiB receive buffer that starts reading 1 s late, every byte "
         "in order", "e-large", echoes()),
    Case("1.2.1", ("echo-client",), "The client sends the message, exactly.",
         "It calls .sendall() to send its message.", f"{MESSAGE!r} arrives, nothing more",
         "echo", echo_sent_message),
    Case("1.2.2", ("echo-client",), "The client prints the echo.", "It calls .recv() to read the "
         "server's reply and then prints it.", f"{MESSAGE!r} in its output", "echo", echo_prints),
    Case("1.2.3", ("echo-client",), "The client closes the connection after the echo.",
         "The with statement is used with conn to automatically close the socket at the end of the block.",
         "FIN (or RST) from the client after the echo", "echo", closes_after),
    Case("1.2.4", ("echo-client",), "An echo arriving one byte per segment is printed whole.",
         "The echo client ... calls recv() once: in a real application it must be called in a loop "
         "until all the data has arrived.",
         f"{MESSAGE!r} in its output", "echo-bytewise", echo_prints, informational=True),
    Case("1.2.5", ("echo-client",), "An echo split in two is printed whole.",
         "There's no guarantee that your data will be received in one call.",
         f"{MESSAGE!r} in its output", "echo-split", echo_prints, informational=True),
    # 2. multiconn
    Case("2.1.1", ("multiconn-server",), "Two clients at once, interleaved: each gets its own bytes back.",
         "The server ... services multiple connections at the same time with select().",
         "a, b, then a again: each echo its own", "m-two", echoes()),
    Case("2.1.2", ("multiconn-server",), "Ten clients at once: no message merged, lost or misrouted.",
         "data holds ... the bytes for the client's connection: each socket has its own.",
         "ten different messages, each echoed on its own connection", "m-ten", echoes()),
    Case("2.1.3", ("multiconn-server",), "A message arriving one byte per segment comes back whole.",
         "It reads whatever is ready: 1024 bytes at most, maybe fewer.", "every byte, in order",
         "e-bytewise", echoes()),
    Case("2.1.4", ("multiconn-server",), "A client that closes mid-message does not hurt another.",
         "If no data is received, the client has closed its socket, so the server should too.",
         "b's echo whole after a closed half-way", "m-close-mid", echoes()),
    Case("2.1.5", ("multiconn-server",), "A client that resets does not stop the server.",
         "(beyond the guide: its server does not catch ConnectionResetError)",
         "a new client's echo after another's reset, from the same server", "m-reset", still_serving,
         informational=True),
    Case("2.2.1", ("multiconn-client",), "The client opens the connections it was asked for.",
         "num_conns is read from the command line: the number of connections to create.",
         f"{NUM_CONNS} connections", "multiconn", multiconn_opened),
    Case("2.2.2", ("multiconn-client",), "Every connection sends, reads its whole echo, and closes.",
         "When the client has received all it sent (recv_total == msg_total) it closes the connection.",
         "each connection sends, gets its echo, and closes; exit status 0", "multiconn", multiconn_complete),
    Case("2.2.3", ("multiconn-client",), "Echoes arriving one byte per segment are read whole.",
         "It keeps track of the number of bytes it has received from the server.",
         "each connection closes after its whole echo", "multiconn-bytewise", multiconn_complete),
    # 3. app: the request on the wire
    Case("3.1.1", ("app-client",), "The request starts with a 2-byte big-endian length: the JSON header's.",
         "The protocol header is a fixed-length two-byte integer in network (big-endian) byte order.",
         "struct.pack('>H', len(jsonheader))", "morpheus", request_framing),
    Case("3.1.2", ("app-client",), "The JSON header is UTF-8 JSON with the four required fields.",
         "The JSON header ... byteorder, content-length, content-type, content-encoding: required.",
         "the four fields", "morpheus", request_header_fields),
    Case("3.1.3", ("app-client",), "content-length is exact.", "content-length: the length of the content "
         "in bytes.", "exactly content-length bytes after the header", "morpheus", request_length_exact),
    Case("3.1.4", ("app-client",), "The byteorder header names the sender's CPU.",
         "byteorder: the byte order of the machine (uses sys.byteorder).",
         "'little' on the little-endian host, 'big' in the PowerPC guest", "morpheus", request_byteorder),
    Case("3.1.5", ("app-client",), "A search goes as text/json: {\"action\": \"search\", \"value\": ...}.",
         "content-type 'text/json', content-encoding 'utf-8': the request dictionary.",
         "text/json utf-8 {\"action\": \"search\", \"value\": \"morpheus\"}", "morpheus", search_request_form),
    Case("3.1.6", ("app-client",), "A non-ASCII value travels as UTF-8.",
         "json.dumps(obj, ensure_ascii=False).encode(encoding)", "the 4 UTF-8 bytes of \U0001f436 in the content",
         "dog", utf8_value),
    Case("3.1.7", ("app-client",), "Any other action goes as binary/custom-client-binary-type.",
         "content-type 'binary/custom-client-binary-type', content: bytes(action + value, encoding='utf-8').",
         "binary/custom-client-binary-type, content b'double10'", "binary", binary_request_form),
    Case("3.1.8", ("app-client",), "The client closes the connection after the answer.",
         "After the response is read, the client closes the socket.", "FIN from the client",
         "morpheus", closes_after),
    Case("3.2.1", ("app-client",), "search morpheus: the answer is shown.",
         "\"morpheus\": \"Follow the white rabbit. \U0001f430\"", f"{MORPHEUS!r} in its output", "morpheus",
         prints(MORPHEUS)),
    Case("3.2.2", ("app-client",), "search ring: the answer is shown.",
         "\"ring\": \"In the caves beneath the Misty Mountains. \U0001f48d\"", f"{RING!r} in its output",
         "ring", prints(RING)),
    Case("3.2.3", ("app-client",), "search \U0001f436: the answer is shown.",
         "\"\U0001f436\": \"\U0001f43e Playing ball! \U0001f3d0\"", f"{DOG!r} in its output", "dog", prints(DOG)),
    Case("3.2.4", ("app-client",), "search unknown: the no-match answer is shown.",
         "answer = request_search.get(query) or f\"No match for '{query}'.\"",
         "\"No match for 'unknown'.\" in its output", "unknown", prints(guide.no_match("unknown"))),
    Case("3.2.5", ("app-client",), "A binary request: the binary answer is shown.",
         "b'First 10 bytes of request: ' + content[:10]", "'First 10 bytes of request: double10' in its output",
         "binary", prints(guide.binary_answer(b"double10").decode())),
    Case("3.3.1", ("app-client",), "An answer arriving one byte per segment is read whole.",
         "The client ... reads until it has the whole message: the protoheader, the JSON header, then "
         "content-length bytes.", f"{RING!r} in its output", "reply-bytewise", prints(RING)),
    Case("3.3.2", ("app-client",), "An answer split inside and between each part of the framing is read whole.",
         "Even when it has received only part of it, the client keeps the bytes in _recv_buffer.",
         "the answer shown after each of 3 splits: in the length, in the header, inside a UTF-8 character",
         "reply-split", every_run_prints(RING)),
    Case("3.4.1", ("app-client",), "The array's values, decoded per its header, are the values given.",
         "(socketlab's array type: the bytes depend on the CPU; the header says their order)",
         f"{ARRAY_VALUES}", "array", array_values),
    Case("3.4.2", ("app-client",), "The array answer is read in its declared byte order.",
         "(socketlab's array type: x-stats carries the sum)", f"the sum {sum(ARRAY_VALUES)} in its output",
         "array", array_answer_read),
    # 3. app: the server
    Case("3.5.1", ("app-server",), "search morpheus is answered.", "request_search[\"morpheus\"]",
         repr(MORPHEUS), "s-morpheus", answers(MORPHEUS)),
    Case("3.5.2", ("app-server",), "search ring is answered.", "request_search[\"ring\"]", repr(RING),
         "s-ring", answers(RING)),
    Case("3.5.3", ("app-server",), "search \U0001f436 is answered.", "request_search[\"\U0001f436\"]",
         repr(DOG), "s-dog", answers(DOG)),
    Case("3.5.4", ("app-server",), "search unknown is answered with no match.",
         "f\"No match for '{query}'.\"", "\"No match for 'unknown'.\"", "s-unknown",
         answers(guide.no_match("unknown"))),
    Case("3.5.5", ("app-server",), "A binary request is answered with its first 10 bytes.",
         "b'First 10 bytes of request: ' + self.request[:10]", "b'First 10 bytes of request: double10'",
         "s-binary", answers(guide.binary_answer(b"double10"))),
    Case("3.5.6", ("app-server",), "A JSON request with another action is answered with an error.",
         "f\"Error: invalid action '{action}'.\"", "\"Error: invalid action 'double'.\"", "s-invalid",
         answers(guide.invalid_action("double"))),
    Case("3.5.7", ("app-server",), "The answer's framing: 2-byte big-endian length, four fields, exact length.",
         "The protocol header ... network (big-endian) byte order; the JSON header's required fields.",
         "a well-framed answer, nothing after it", "s-morpheus", reply_framing),
    Case("3.5.8", ("app-server",), "The answer's byteorder header names the server's CPU.",
         "byteorder: sys.byteorder", "'little' on the little-endian host, 'big' in the PowerPC guest",
         "s-morpheus", reply_byteorder),
    Case("3.5.9", ("app-server",), "The server closes the connection after the answer.",
         "After the response is sent, the server closes the connection: one request per connection.",
         "FIN after the answer", "s-morpheus", server_closes),
    Case("3.6.1", ("app-server",), "Big-endian array values are decoded per the header.",
         "(socketlab's array type: byteorder says how the numbers are packed)",
         f"{ARRAY_VALUES}, their sum, packed big-endian back", "s-array-big", array_answer("big")),
    Case("3.6.2", ("app-server",), "Little-endian array values are decoded per the header.",
         "(socketlab's array type)", f"{ARRAY_VALUES}, their sum, packed little-endian back",
         "s-array-little", array_answer("little")),
    Case("3.7.1", ("app-server",), "A request arriving one byte per segment is answered.",
         "The server ... keeps reading into _recv_buffer until it has the whole request.",
         repr(RING), "s-bytewise", answers(RING)),
    Case("3.7.2", ("app-server",), "A request split at every byte is answered, each time.",
         "_read() ... may not have all of the data: process_protoheader only once there are 2 bytes.",
         f"{len(RING_REQUEST) - 1} connections, each split at the next byte, each answered {RING!r}",
         "s-split-every", every_answer(RING)),
    Case("3.7.3", ("app-server",), "Two clients at once: the second is answered while the first is half-sent.",
         "The server ... uses a selector to handle multiple connections.",
         "b answered, then a, each correctly", "s-two", every_answer(RING)),
    Case("3.7.4", ("app-server",), "A client that sends nothing does not hold up another.",
         "The server doesn't block: it serves whichever socket is ready.", f"{RING!r} to the other client",
         "s-idle", every_answer(RING)),
    Case("3.8.1", ("app-server",), "After malformed requests, the next client is answered.",
         "(beyond the guide: robustness) a bad request is that connection's problem",
         f"three malformed requests, then {RING!r}", "s-malformed", survives(RING), informational=True),
    Case("3.8.2", ("app-server",), "After a client resets mid-request, the next client is answered.",
         "(beyond the guide)", f"{RING!r}", "s-reset-mid", survives(RING), informational=True),
    Case("3.8.3", ("app-server",), "After a client resets before its answer is sent, the next is answered.",
         "(beyond the guide)", f"{RING!r}", "s-reset-answer", survives(RING), informational=True),
    # 4. across the lab
    Case("4.1.1", SERVERS, "The server is reachable from across the router, not only on loopback.",
         "127.0.0.1 ... only processes on the host will be able to connect to the server; an empty string, "
         "the server will accept connections on all available IPv4 interfaces.",
         f"a connection from the client host ({topology.CLIENT_V4}) to the address it was told", "reach", reachable),
    Case("4.2.1", CLIENTS, "A server that never answers: the client gives up on its own.",
         "(beyond the guide: its clients have no timeout) socket.settimeout()",
         "the client ends before the case's deadline (15 s)", "silent", gives_up, informational=True),
    Case("4.2.2", CLIENTS, "A server that never answers: the client says it timed out.", SAYS,
         "'timed out' or the like", "silent", says("timeout"), informational=True),
    Case("4.2.3", CLIENTS, "A server that resets the connection: the client ends, and shows no answer.",
         "ConnectionResetError: [Errno 104] Connection reset by peer (the guide's error table)",
         "the client ends, no answer in its output", "reset", ends_without_result(ANSWERS)),
    Case("4.2.4", CLIENTS, "A server that resets the connection: the client says so.", SAYS,
         "'reset' in its output", "reset", says("reset"), informational=True),
    Case("4.2.5", CLIENTS, "A server that closes without answering: the client ends, and shows no answer.",
         "If recv() returns b'', the peer closed the connection.", "the client ends, no answer in its output",
         "closed", ends_without_result(ANSWERS)),
    Case("4.2.6", CLIENTS, "A server that closes without answering: the client says so.", SAYS,
         "'closed' or 'no answer' in its output", "closed", says("closed"), informational=True),
    Case("4.3.1", CLIENTS, "Behind the router's drop rule: the client gives up on its own.",
         "(beyond the guide) a firewall that drops: the connection attempt times out.",
         "the client ends before the case's deadline (15 s)", "router-drop", gives_up, informational=True),
    Case("4.3.2", CLIENTS, "Behind the router's drop rule: the client says it timed out.", SAYS,
         "'timed out' or the like", "router-drop", says("timeout"), informational=True),
    Case("4.3.3", CLIENTS, "The router's reset rule: the client ends.",
         "ConnectionRefusedError: [Errno 111] Connection refused (the guide's error table)",
         "the client ends", "router-reset", ends),
    Case("4.3.4", CLIENTS, "The router's reset rule: the client says the connection was refused.", SAYS,
         "'refused' in its output", "router-reset", says("refused"), informational=True),
    Case("4.3.5", CLIENTS, "The router's ICMP rule: the client ends.",
         "OSError: [Errno 113] No route to host (EHOSTUNREACH, the guide's error table)",
         "the client ends", "router-icmp", ends),
    Case("4.3.6", CLIENTS, "The router's ICMP rule: the client says the host is unreachable.", SAYS,
         "'No route to host' or 'unreachable' in its output", "router-icmp", says("unreachable"),
         informational=True),
]


def cases_for(role: str, selected: str | None = None) -> list[Case]:
    """The cases of ROLE, in id order; SELECTED: comma-separated ids or id prefixes."""
    wanted = [c for c in CASES if role in c.roles]
    if selected:
        prefixes = [p.strip() for p in selected.split(",") if p.strip()]
        wanted = [c for c in wanted if any(c.id == p or c.id.startswith(p.rstrip(".") + ".") for p in prefixes)]
    return sorted(wanted, key=lambda c: tuple(int(n) for n in c.id.split(".")))


def args_for(role: str, exchange: Exchange) -> dict:
    """The placeholders' values for a client exchange (host and port are the runner's)."""
    values = {"action": "search", "value": "morpheus", "message": MESSAGE, "num_conns": str(NUM_CONNS)}
    values.update(exchange.args)
    return values


def case_table() -> str:
    """docs/conformance.md's list of cases (``make docs``), grouped by topic."""
    lines = []
    for number, topic in TOPICS.items():
        lines += [f"**{topic}**", "", "| case | roles | what it checks | the guide | kind |",
                  "| --- | --- | --- | --- | --- |"]
        for case in sorted((c for c in CASES if c.id.split(".")[0] == number),
                           key=lambda c: tuple(int(n) for n in c.id.split("."))):
            roles = "all three clients" if case.roles == CLIENTS else (
                "all three servers" if case.roles == SERVERS else ", ".join(case.roles))
            guide, title = case.guide.replace("|", "\\|"), case.title.replace("|", "\\|")
            kind = "informational" if case.informational else "required"
            lines.append(f"| {case.id} | {roles} | {title} | {guide} | {kind} |")
        lines.append("")
    counts = ", ".join(f"{role} {len(cases_for(role))}" for role in ROLES)
    return "\n".join(lines) + f"{len(CASES)} cases; per role: {counts}.\n"
