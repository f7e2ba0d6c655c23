"""Hostile clients: a server that never dies (clients that never hang, against hostile
servers: lab_tests/loopback/test_hostile_servers.py).

Every attack runs against a real ``socketlab app-server`` process (IPv4 and IPv6) or a real
client process, then asserts what the README promises: the server is alive, a legitimate client
is answered within a bound, memory stays under a bound; a client gives up within its timeout
with one line and a non-zero exit. Each property has a negative control showing the check
would catch the bug. Budgets and deadlines: docs/reliability.md.
"""

import math
import os
import selectors
import socket
import threading
import time

import pytest

from socketlab import app, arrays, protocol
from socketlab.protocol import NEED_DATA, MessageDecoder, encode_message

from .support import CONFORMANCE, DIGITS, KINDS, NESTED, CliServer, frame, json_frame, read_answer, reset, wait_for


MiB = 1024 * 1024


def array_frame(values, dtype="float64", byteorder="big") -> bytes:
    return encode_message(arrays.encode_array(values, dtype, byteorder),
                          content_type=arrays.array_content_type(dtype),
                          content_encoding="binary", byteorder=byteorder)


def ask(host, port, wire: bytes, timeout: float = 5.0):
    """Send ``wire``, read to the end; the one answer (a Message) the server sent."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(wire)
        return read_answer(sock, timeout)


def legit_latency(host, port, timeout: float = 10.0) -> float:
    start = time.monotonic()
    reply = ask(host, port, app.make_request("search", "ring"), timeout)
    assert app.describe_response(reply) == app.SEARCH["ring"]
    return time.monotonic() - start


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture
def app_server(cli_server, host):
    """``app_server(*options) -> CliServer`` listening on ``host``, stopped at teardown."""
    def start(*options):
        server = cli_server("app-server", host, "0", *options)
        server.host = host
        return server
    return start


# -- one request, the worst bytes we know -------------------------------------------------------

DEEP_HEADER = b'{"byteorder": "big", "content-type": "text/json", "content-encoding": "utf-8", ' \
              b'"content-length": 0, "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"

#: name -> (wire bytes, what the answer must contain). Each of these once ended the server.
HOSTILE_REQUESTS = {
    "value is a list": (json_frame(b'{"action": "search", "value": [1, 2]}'),
                        app.NO_MATCH.format([1, 2])),
    "value is an object": (json_frame(b'{"action": "search", "value": {"a": 1}}'),
                           app.NO_MATCH.format({"a": 1})),
    "lone surrogate in value": (json_frame(rb'{"action": "search", "value": "\ud800"}'),
                                "content holds text that is not Unicode"),
    "lone surrogate in action": (json_frame(rb'{"action": "\udfff", "value": "x"}'),
                                 "content holds text that is not Unicode"),
    "content nested 8000 deep": (json_frame(NESTED), "content nests JSON deeper than 32"),
    "header nested 2000 deep": (frame(DEEP_HEADER), "header nests JSON deeper than 32"),
    "5000-digit integer in content": (json_frame(b'{"action": "search", "value": ' + DIGITS + b"}"),
                                      "JSON number of 5000 characters is over the limit"),
    "5000-digit integer in header": (
        frame(b'{"byteorder": "big", "content-type": "text/json", "content-encoding": "utf-8", '
              b'"content-length": ' + DIGITS + b"}"),
        "JSON number of 5000 characters is over the limit"),
    "NaN in content": (json_frame(b'{"action": "search", "value": NaN}'), "NaN is not JSON"),
    "1e999 in content": (json_frame(b'{"action": "search", "value": 1e999}'), "out of range"),
    "content-encoding undefined": (json_frame(b"{}", "undefined"), "'undefined' is not one of"),
    "content-encoding idna": (json_frame(b"{}", "idna"), "'idna' is not one of"),
    "content-encoding punycode": (json_frame(b"{}", "punycode"), "'punycode' is not one of"),
    "content-encoding with NUL": (json_frame(b"{}", "utf-8\x00"), "is not one of"),
    "content-encoding lone surrogate": (
        frame(b'{"byteorder": "big", "content-type": "text/json", '
              rb'"content-encoding": "\udfff", "content-length": 0}'),
        "header holds text that is not Unicode"),
    "content-encoding binary for JSON": (json_frame(b"{}", "binary"), "is not a text encoding"),
    "content not in its encoding": (json_frame(b"\xff\xfe\xfd", "utf-8"), "content is not valid"),
    "odd-length utf-16": (json_frame(b"{}\x00", "utf-16-le"), "content is not valid"),
    "array of a bad dtype": (
        frame({"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype=int128",
               "content-encoding": "binary"}, b"\0" * 16), "unknown dtype 'int128'"),
    "array not whole elements": (
        frame({"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype=int32",
               "content-encoding": "binary"}, b"\0" * 5), "not a whole number of int32"),
    "malformed content-type parameter": (
        frame({"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype",
               "content-encoding": "binary"}, b""), "malformed content-type parameter"),
    "header is a list": (frame(b"[1, 2, 3]"), "header must be a JSON object"),
    "content-length negative": (
        frame(b'{"byteorder": "big", "content-type": "x", "content-encoding": "binary", '
              b'"content-length": -1}'), "content-length must be a non-negative integer"),
    "content-length a float": (
        frame(b'{"byteorder": "big", "content-type": "x", "content-encoding": "binary", '
              b'"content-length": 1.5}'), "content-length must be a non-negative integer"),
    "byteorder unknown": (frame({"byteorder": "middle", "content-type": "x",
                                 "content-encoding": "binary"}), "byteorder must be one of"),
    "header length zero": (b"\x00\x00", "header length 0 is outside"),
    "header not UTF-8": (frame(b"\xc3\x28"), "header is not UTF-8"),
    "an HTTP request": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "header length 18245 is outside"),
}


@pytest.mark.parametrize("name", list(HOSTILE_REQUESTS))
def test_one_hostile_request_gets_an_error_and_the_server_lives(app_server, name):
    wire, expected = HOSTILE_REQUESTS[name]
    server = app_server()
    start = time.monotonic()
    answer = app.describe_response(ask(server.host, server.port, wire))
    if "No match" not in expected:  # else the guide's own answer, the value as Python shows it
        assert answer.startswith("Error: bad request: ")
    assert expected in answer
    assert time.monotonic() - start < 2.0, "the hostile request stalled the server"
    assert server.process.poll() is None, "the server exited"
    assert legit_latency(server.host, server.port) < 1.0


def test_non_finite_arrays_are_answered_with_null_stats(app_server):
    server = app_server()
    for values in ([math.inf, -math.inf], [1e308, 1e308], [math.nan, 1.0]):
        reply = ask(server.host, server.port, array_frame(values))
        result = app.describe_response(reply)
        assert result["stats"] == {"count": 2, "sum": None, "min": None, "max": None}
        assert [repr(v) for v in result["values"]] == [repr(v) for v in values]
    assert server.process.poll() is None


def test_an_answer_over_the_content_limit_is_an_error_not_silence(app_server):
    # 10 000 latin-1 "é" make a valid request; quoted back in UTF-8 ("No match for ...") they are
    # 20 000 bytes and more: over the text/json limit.
    server = app_server()
    content = '{"action": "search", "value": "'.encode() + "é".encode("latin-1") * 10_000 + b'"}'
    answer = app.describe_response(ask(server.host, server.port, json_frame(content, "latin-1")))
    assert answer.startswith("Error: the answer cannot be sent: content-length 20030 is over "
                             "the limit of 16384 bytes for text/json")
    assert legit_latency(server.host, server.port) < 1.0


# -- decoding costs bounded CPU and memory per request (issue 19, find 4) ---------------------------

#: The costliest JSON a request may carry: nested lists 30 deep (the depth limit is 32), as many as
#: fit under the text/json limit. 68 759 of them (4 MiB) once cost 1.6 s of CPU to decode.
DEEP_LISTS = b"[" + b",".join([b"[" * 30 + b"]" * 30] * 250) + b"]"


def hammer(host, port, wire, stop: threading.Event, answered: threading.Event):
    """Send ``wire`` and read the answer, again and again, until ``stop``; ``answered`` is set
    once the server has answered one (the attack is under way)."""
    while not stop.is_set():
        try:
            ask(host, port, wire, timeout=20)
        except OSError:
            pass
        answered.set()


def timed_ask(host, port, wire: bytes) -> float:
    """Seconds for one request and its whole answer, nobody else served."""
    start = time.monotonic()
    ask(host, port, wire, timeout=30)
    return time.monotonic() - start


def right_client_p50(host, port, attackers: int, wire: bytes, rounds: int = 20) -> float:
    """A right client's median latency while ``attackers`` peers send ``wire`` in a loop."""
    stop, answered = threading.Event(), threading.Event()
    threads = [threading.Thread(target=hammer, args=(host, port, wire, stop, answered), daemon=True)
               for _ in range(attackers)]
    for thread in threads:
        thread.start()
    try:
        assert answered.wait(60), "the attack never got an answer"
        latencies = []
        for _ in range(rounds):
            latencies.append(legit_latency(host, port, timeout=30))
            time.sleep(0.02)  # pacing the legitimate load, not waiting for readiness
        latencies.sort()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    return latencies[len(latencies) // 2]


COSTLIEST = {  # name -> (the request, the budget in MiB)
    "16 KiB of 30-deep lists": (json_frame(b'{"action": "search", "value": ' + DEEP_LISTS + b"}"), 8),
    "4 MiB of int16": (encode_message(b"\x01\x02" * (2 * MiB - 64), byteorder="big",
                                      content_type=arrays.array_content_type("int16"),
                                      content_encoding="binary"), 64),
}


@pytest.mark.parametrize("name", list(COSTLIEST))
def test_the_costliest_requests_leave_the_loop_free_for_others(app_server, capsys, name):
    """Eight peers send the request that costs the server most CPU per byte, again and again:
    JSON as deep and as long as the limits allow; the array of the most values (the answer
    repeats them, with their statistics). The guide's commentary is on: the worst case.
    The bound: 300 ms, or twice what one such request takes alone on this machine now, when
    that is more (a right client may wait behind the one being served; the 4 MiB array alone
    takes 0.18-0.25 s here, and the tiers beside this one share the two cores)."""
    wire, budget_mib = COSTLIEST[name]
    assert len(DEEP_LISTS) <= protocol.MAX_JSON_CONTENT_LENGTH
    server = app_server("--max-buffered", str(budget_mib * MiB))
    alone = sorted(timed_ask(server.host, server.port, wire) for _ in range(3))[1]
    bound = max(0.300, 2 * alone)
    p50 = right_client_p50(server.host, server.port, 8, wire)
    peak = rss_kib(server.process.pid, "VmHWM")
    with capsys.disabled():
        print(f"\n[costliest] 8 peers sending {name} ({len(wire)} bytes), again and again, budget "
              f"{budget_mib} MiB: a right client's p50 {p50 * 1000:.1f} ms (bound {bound * 1000:.0f} ms; one "
              f"such request alone {alone * 1000:.1f} ms); server peak RSS {peak / 1024:.1f} MiB")
    assert p50 <= bound
    assert peak / 1024 <= budget_mib + 64
    assert server.process.poll() is None


def test_json_past_its_limit_is_refused_from_the_header(app_server):
    """The same lists at 4 MiB (the issue's: 1.6 s of CPU, 223 MiB) are refused before their
    content is read, so the first 4 KiB are enough to send."""
    server = app_server()
    big = json_frame(b"[" + b",".join([b"[" * 30 + b"]" * 30] * 68_759) + b"]")
    assert app.describe_response(ask(server.host, server.port, big[:4096])).startswith(
        "Error: bad request: content-length 4194300 is over the limit of 16384 bytes for text/json")


#: An app server whose text/json limit is the binary one (as before issue 19), commentary on.
OLD_JSON_LIMIT_SERVER = """
import functools, sys
from socketlab import cli, handlers, protocol
from socketlab.server import Server, create_listener

def factory(peer):
    handler = handlers.AppHandler(peer, narrate=functools.partial(print, flush=True))
    handler._decoder = protocol.MessageDecoder(max_json_length=protocol.MAX_CONTENT_LENGTH)
    return handler

listener = create_listener(sys.argv[1], 0)
print(cli.ready_line(sys.argv[1], listener.getsockname()[1]), flush=True)
Server(listener, factory).serve_forever()
"""


def test_negative_control_json_at_the_binary_limit_holds_the_loop(closing):
    """With text/json allowed the 4 MiB that binary content may have, one peer sending such
    lists again and again holds the loop: a right client waits behind each decode."""
    server = closing(CliServer("127.0.0.1", python=OLD_JSON_LIMIT_SERVER))
    wire = json_frame(b"[" + b",".join([b"[" * 30 + b"]" * 30] * 60_000) + b"]")
    assert right_client_p50("127.0.0.1", server.port, 1, wire, rounds=5) > 0.300


# -- timeouts as long as a user may ask (issue 19, find 5) -----------------------------------------


@pytest.mark.parametrize("options", [("--idle-timeout", "3000000"),
                                     ("--request-timeout", "3000000", "--idle-timeout", "0"),
                                     ("--idle-timeout", "31536000", "--request-timeout", "31536000")])
def test_a_long_timeout_is_a_long_timeout(app_server, connect, options):
    server = app_server(*options)
    waiting = connect(server.host, server.port)
    waiting.sendall(b"\x00")  # a request under way: its deadline is the longest timeout asked
    assert legit_latency(server.host, server.port) < 1.0
    assert server.process.poll() is None


def test_negative_control_epoll_cannot_wait_that_long():
    """What the loop's cap (server.MAX_POLL) is for: epoll's timeout is a C int of ms."""
    with selectors.DefaultSelector() as selector, pytest.raises(OverflowError):
        selector.select(3_000_000)


# -- the guide's troubleshooting server lets go of peers that went (issue 19, find 6) ----------------


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_fill_server_lets_go_of_peers_that_close_or_reset(closing, host):
    """1000 peers that connect and close, and 200 that reset, against a fill-server limited to
    64 descriptors: it still accepts, still holds the one peer left, and never read a byte."""
    process = closing(CliServer("fill-server", host, "0", limits={"RLIMIT_NOFILE": 64}))
    held = socket.create_connection((host, process.port), timeout=5)
    held.sendall(b"x" * 1000)  # never read: the server's Recv-Q says so
    closing(held)
    wait_for(lambda: any("Recv-Q: 1000 bytes" in line for line in process.stdout), timeout=5)
    baseline = open_descriptors(process.process.pid)
    for i in range(1200):
        sock = socket.create_connection((host, process.port), timeout=5)
        sock.sendall(b"unread")
        sock.close() if i < 1000 else reset(sock)
    wait_for(lambda: sum("Closing connection" in line for line in process.stdout) == 1200, timeout=20)
    assert open_descriptors(process.process.pid) <= baseline
    held.setblocking(False)
    with pytest.raises(BlockingIOError):  # the control: the peer that stayed is still held, unread
        held.recv(1)
    said = "".join(process.stdout)
    assert said.count("it closed its side (6 bytes never read)") == 1000
    assert said.count("it reset the connection") == 200
    assert process.process.poll() is None
    late = socket.create_connection((host, process.port), timeout=5)
    closing(late)
    wait_for(lambda: sum("Accepted connection" in line for line in process.stdout) == 1202, timeout=5)


# -- the whole request on a clock: slowloris ------------------------------------------------------


def raise_nofile_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Tricklers:
    """``count`` connections (made by ``connect``, the fixture) each sending a request one
    byte every ``interval`` seconds, never the last; a context manager that stops them all.
    ``socks`` and ``payloads`` instead: those sockets, each trickling its own bytes (TLS
    records, lab_tests/loopback/test_hostile_tls.py)."""

    def __init__(self, connect=None, host=None, port=None, count=0, interval=0.5, *,
                 socks=None, payloads=None):
        self.socks = socks if socks is not None else [connect(host, port) for _ in range(count)]
        self.payloads = payloads or [app.make_request("search", "ring")] * len(self.socks)
        for sock in self.socks:
            sock.setblocking(False)
        self.sent = [0] * len(self.socks)
        self.closed_by_server = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            for i, sock in enumerate(self.socks):
                payload = self.payloads[i]
                if sock.fileno() < 0 or self.sent[i] >= len(payload) - 1:
                    continue  # never the last byte: the request must never complete
                try:
                    sock.send(payload[self.sent[i]:self.sent[i] + 1])
                    self.sent[i] += 1
                except OSError:  # reset by the server's deadline
                    sock.close()
                    self.closed_by_server += 1

    def count_closed(self):
        """Connections the server has closed (reading EOF or a reset)."""
        closed = 0
        for sock in self.socks:
            try:
                if sock.fileno() < 0 or sock.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)
        for sock in self.socks:
            sock.close()


def test_a_thousand_slowloris_sockets_do_not_starve_legitimate_clients(app_server, connect, capsys):
    raise_nofile_limit()
    server = app_server("--request-timeout", "4")
    with Tricklers(connect, server.host, server.port, 1000) as attack:
        # A legitimate client every 20 ms for as long as the attack holds its sockets open. The
        # deadline runs from the first byte however slowly the rest trickles, so all of them
        # are closed about 4 s in.
        latencies = []
        give_up = time.monotonic() + 15
        while attack.count_closed() < 1000:
            assert time.monotonic() < give_up, f"{attack.count_closed()} of 1000 closed after 15 s"
            latencies.append(legit_latency(server.host, server.port))
            time.sleep(0.02)  # pacing the legitimate load, not waiting for readiness
        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        peak = rss_kib(server.process.pid, "VmHWM")
    with capsys.disabled():
        print(f"\n[slowloris] 1000 trickling sockets: {len(latencies)} legit requests, "
              f"p50 {p50 * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms; server peak RSS {peak / 1024:.1f} MiB")
    assert len(latencies) > 50 and p99 < 1.0
    assert server.process.poll() is None


def test_slowloris_at_the_connection_limit_is_cleared_by_the_deadline(app_server, connect):
    """50 tricklers fill ``--max-connections 50``: a client waits in the backlog, and is
    served once the request deadline closes them (without the deadline: never)."""
    server = app_server("--max-connections", "50", "--request-timeout", "2")
    with Tricklers(connect, server.host, server.port, 50) as attack:
        wait_for(lambda: all(n > 0 for n in attack.sent), timeout=5)
        assert legit_latency(server.host, server.port) < 2.0 + 3.0


def test_negative_control_without_a_deadline_slowloris_holds_the_server(app_server, connect):
    server = app_server("--max-connections", "50", "--request-timeout", "0")
    with Tricklers(connect, server.host, server.port, 50) as attack:
        wait_for(lambda: all(n > 0 for n in attack.sent), timeout=5)
        with pytest.raises(TimeoutError):
            legit_latency(server.host, server.port, timeout=4.0)


# -- memory: one budget for the whole server -----------------------------------------------------


def hold_partial_requests(connect, host, port, count, size):
    """``count`` connections (made by ``connect``, the fixture) each sending all but the last
    byte of a ``size``-byte request."""
    wire = array_frame([1.0] * (size // 8))
    socks = []
    for _ in range(count):
        sock = connect(host, port)
        sock.settimeout(10)
        try:
            sock.sendall(wire[:-1])
        except OSError:  # closed by the budget while sending: that is the point
            pass
        socks.append(sock)
    return socks


@pytest.mark.parametrize("budget_mib, bounded", [(32, True), (1024, False)],
                         ids=["budget-32MiB", "negative-control-1GiB"])
def test_memory_budget_bounds_what_forty_peers_can_hold(app_server, connect, capsys,
                                                        budget_mib, bounded):
    server = app_server("--max-buffered", str(budget_mib * MiB), "--request-timeout", "30")
    base = rss_kib(server.process.pid)
    socks = hold_partial_requests(connect, server.host, server.port, 40, 4 * MiB - 1024)
    try:
        latency = legit_latency(server.host, server.port)
        peak = rss_kib(server.process.pid, "VmHWM")
        assert server.process.poll() is None
    finally:
        for sock in socks:
            reset(sock)
    with capsys.disabled():
        print(f"\n[memory] budget {budget_mib} MiB, 40 x 4 MiB partial requests: "
              f"peak RSS {peak / 1024:.1f} MiB (baseline {base / 1024:.1f}); legit answered "
              f"in {latency * 1000:.1f} ms")
    grown_mib = (peak - base) / 1024
    if bounded:
        assert grown_mib < 32 + 24, "memory grew past the budget"
    else:
        assert grown_mib > 100, "negative control: without a tight budget 40 x 4 MiB is held"


def test_replies_nobody_reads_count_against_the_budget(app_server, connect, caplog):
    server = app_server("--max-buffered", str(16 * MiB))
    wire = array_frame([1.5] * (4 * MiB // 8 - 64))
    socks = []
    try:
        for _ in range(20):  # each asks for a 4 MiB answer and never reads it
            sock = connect(server.host, server.port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.sendall(wire)
            socks.append(sock)
        assert legit_latency(server.host, server.port) < 1.0
        assert rss_kib(server.process.pid, "VmHWM") < (16 + 24 + 40) * 1024
    finally:
        for sock in socks:
            reset(sock)
    assert server.process.poll() is None


# -- orderly close: a reply is never destroyed by a reset -----------------------------------------


def large_request_with_trailing_bytes():
    values = [float(i) for i in range(4 * MiB // 8 - 64)]
    return array_frame(values), values


def read_reply_late(host, port, wire, values):
    """Send a request plus 64 KiB the server never asked for, wait, then read the reply."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(wire + b"x" * 65536)
        time.sleep(0.3)  # not readiness: this is the slow reader being simulated
        decoder = MessageDecoder()
        while data := sock.recv(65536):
            decoder.receive_data(data)
        reply = decoder.next_message()
    assert reply is not NEED_DATA
    assert app.describe_response(reply)["values"] == values


def test_a_large_reply_survives_a_client_that_sent_too_much(app_server):
    server = app_server()
    wire, values = large_request_with_trailing_bytes()
    for _ in range(3):
        read_reply_late(server.host, server.port, wire, values)


def test_the_drain_after_a_reply_is_bounded_in_time_and_bytes(serve, host):
    """The orderly close waits for the peer's FIN, but not forever and not for any amount."""
    from socketlab import server

    host, port = serve("app", host, idle_timeout=None)
    # A peer that keeps its side open after the answer: closed LINGER_TIMEOUT later.
    with socket.create_connection((host, port), timeout=10) as quiet:
        quiet.sendall(app.make_request("search", "ring"))
        start = time.monotonic()
        read_answer(quiet)  # the answer, then EOF: the server shut down its side
        bound = server.LINGER_TIMEOUT + 3
        with pytest.raises(OSError):  # still open on our side: the server's close resets it
            while time.monotonic() - start < bound:
                quiet.send(b"more")
                time.sleep(0.2)  # pacing: a peer that keeps talking, slowly
        assert time.monotonic() - start < bound
    # A peer that streams after its request: closed once LINGER_BYTES have been discarded.
    with socket.create_connection((host, port), timeout=10) as chatty:
        chatty.sendall(app.make_request("search", "ring"))
        start, sent = time.monotonic(), 0
        with pytest.raises(OSError):  # reset once the server has discarded LINGER_BYTES
            while sent < 64 * server.LINGER_BYTES:  # far past it, kernel buffers included
                chatty.sendall(b"z" * 65536)
                sent += 65536
        assert time.monotonic() - start < server.LINGER_TIMEOUT  # the byte bound came first


def test_negative_control_close_with_unread_data_resets_the_reply(closing, host):
    """The old way (reply, then close() with input unread): the kernel sends RST and the
    reply is cut short. The same reader as above sees ECONNRESET."""
    wire, values = large_request_with_trailing_bytes()
    listener = closing(socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host
                                            else socket.AF_INET))

    def careless_server():
        conn, _ = listener.accept()
        with conn:
            decoder = MessageDecoder()
            while (request := decoder.next_message()) is NEED_DATA:
                decoder.receive_data(conn.recv(65536))
            conn.sendall(app.respond(request))
        listener.close()

    thread = threading.Thread(target=careless_server, daemon=True)
    thread.start()
    with pytest.raises((ConnectionResetError, AssertionError)):
        read_reply_late(host, listener.getsockname()[1], wire, values)
    thread.join(10)


# -- the backstop: a handler bug stays in its connection -------------------------------------------


class Exploding:
    """Wraps a real handler; raises a bug-like exception on the bytes ``BOOM``."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def data_received(self, data):
        if b"BOOM" in data:
            raise KeyError("a bug in the handler")
        return self.inner.data_received(data)


@pytest.mark.parametrize("kind", ["echo", "multiconn", "app"])
def test_a_handler_bug_closes_one_connection_and_the_loop_goes_on(serve, host, kind, caplog):
    inner = KINDS[kind]
    host, port = serve(lambda peer: Exploding(inner(peer)), host, idle_timeout=None)
    with socket.create_connection((host, port), timeout=5) as bomb:
        bomb.sendall(b"BOOM")
        assert bomb.recv(1) == b""  # that connection is closed
    CONFORMANCE[kind](host, port)  # everybody else is served
    records = [r for r in caplog.records if "unexpected error" in r.message]
    assert len(records) == 1 and records[0].exc_info[0] is KeyError  # logged with its traceback
