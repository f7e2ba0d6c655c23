"""Clients against hostile servers: clients that never hang.

Every client process is run against a server that misbehaves on purpose (trickles, stalls,
resets, closes early, forges output, a full accept queue then silence), then the promise is
asserted: the client gives up within its timeout, with one line and a non-zero exit, and prints
nothing the server did not send as data. Each property has a negative control. Servers that
never die (hostile clients): lab_tests/loopback/test_hostile_peers.py.
"""

import json
import socket
import threading
import time

import pytest

from socketlab import app, arrays, demo
from socketlab.protocol import encode_message

from .support import DIGITS, NESTED, frame, json_frame, run_cli



# -- clients against a hostile server --------------------------------------------------------------


class HostileServer:
    """A listener whose every connection gets ``behaviour(conn)``, in a thread of its own; a
    context manager that stops it."""

    def __init__(self, behaviour, host="127.0.0.1"):
        self.listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host
                                             else socket.AF_INET)
        self.port = self.listener.getsockname()[1]
        self.behaviour = behaviour
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            conn.settimeout(1)
            try:
                self.behaviour(conn, self.stopped)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.listener.close()


def reply_with(wire):
    def behaviour(conn, stopped):
        conn.recv(65536)
        conn.sendall(wire)
    return behaviour


def never_answer(conn, stopped):
    stopped.wait(30)


def trickle(conn, stopped):
    """Accept the request, then answer one byte every 0.5 s, forever (a valid answer, slowly)."""
    conn.recv(65536)
    answer = app.error_response("x" * 1000)
    for i in range(len(answer)):
        if stopped.wait(0.5):
            return
        conn.sendall(answer[i:i + 1])


def echo_wrong(conn, stopped):
    data = conn.recv(65536)
    conn.sendall(data.swapcase())


def echo_too_much(conn, stopped):
    data = conn.recv(65536)
    conn.sendall(data + b" and more")


def close_at_once(conn, stopped):
    conn.recv(65536)


APP_CLIENT = ["app-client", "{host}", "{port}", "search", "ring"]
ECHO_CLIENT = ["echo-client", "{host}", "{port}", "hello"]
MULTICONN_CLIENT = ["multiconn-client", "{host}", "{port}", "3"]

#: name -> (client argv, server behaviour, what the one line must say)
HOSTILE_SERVERS = {
    "app: never answers": (APP_CLIENT, never_answer, "timed out"),
    "app: trickles its answer": (APP_CLIENT, trickle, "timed out"),
    "app: garbage": (APP_CLIENT, reply_with(b"\xff\xffGARBAGE"), "header length 65535"),
    "app: huge declared length": (
        APP_CLIENT, reply_with(frame({"byteorder": "big", "content-type": "text/json",
                                      "content-encoding": "utf-8", "content-length": 10**12})),
        "over the limit"),
    "app: nested JSON": (APP_CLIENT, reply_with(json_frame(NESTED)), "deeper than 32"),
    "app: 5000-digit integer": (APP_CLIENT, reply_with(json_frame(b'{"result": ' + DIGITS + b"}")),
                                "JSON number of 5000 characters"),
    "app: lone surrogate": (APP_CLIENT, reply_with(json_frame(rb'{"result": "\ud800"}')),
                            "not Unicode"),
    "app: no result field": (APP_CLIENT, reply_with(json_frame(b'{"answer": 1}')),
                             "without 'result'"),
    "app: closes without answering": (APP_CLIENT, close_at_once, "without a response"),
    "app: a 4 MiB nested-list result": (
        APP_CLIENT, reply_with(json_frame(b'{"result": [' + b",".join([b"[" * 30 + b"]" * 30] * 68_000) + b"]}")),
        "content-length 4148013 is over the limit of 16384 bytes for text/json"),
    "echo: never answers": (ECHO_CLIENT, never_answer, "timed out"),
    "echo: wrong bytes": (ECHO_CLIENT, echo_wrong, "wrong answer: sent b'hello' but got back b'HELLO'"),
    "echo: too many bytes": (ECHO_CLIENT, echo_too_much, "wrong answer: sent 5 bytes but got back"),
    "echo: closes early": (ECHO_CLIENT, close_at_once, "server closed after 0 of 5"),
    "multiconn: never answers": (MULTICONN_CLIENT, never_answer, "timed out"),
    "multiconn: wrong bytes": (MULTICONN_CLIENT, echo_wrong, "wrong answer: connection"),
}


@pytest.mark.parametrize("name", list(HOSTILE_SERVERS))
def test_clients_fail_in_one_line_within_their_timeout(host, name):
    argv, behaviour, expected = HOSTILE_SERVERS[name]
    with HostileServer(behaviour, host) as server:
        start = time.monotonic()
        result = run_cli(*[a.format(host=host, port=server.port) for a in argv], "--timeout", "2")
        elapsed = time.monotonic() - start
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("socketlab: "), result.stderr
    assert expected in lines[0]
    assert elapsed < 2 + 1.5, f"took {elapsed:.1f} s with --timeout 2"


def test_negative_control_a_per_call_timeout_never_gives_up_on_a_trickle(host):
    """What ``--timeout`` used to bound (each recv) cannot stop a trickling server."""
    with HostileServer(trickle, host) as server:
        with socket.create_connection((host, server.port), timeout=2) as sock:
            sock.sendall(app.make_request("search", "ring"))
            start = time.monotonic()
            received = 0
            while time.monotonic() - start < 4:  # twice the "timeout", and still no TimeoutError
                received += len(sock.recv(65536))
    assert received >= 4


# -- clients, round two (issue 19, finds 8, 9 and 11) ------------------------------------------------

UNEXPECTED_ANSWERS = {
    "a result that is an object": json_frame(b'{"result": {"a": 1}}'),
    "an array without x-stats": encode_message(
        arrays.encode_array([1, 2], "int32", "big"), content_type=arrays.array_content_type("int32"),
        content_encoding="binary", byteorder="big"),
}


@pytest.mark.parametrize("name", list(UNEXPECTED_ANSWERS))
def test_demo_says_what_it_got_when_a_right_answer_is_not_what_it_expected(host, name):
    with HostileServer(reply_with(UNEXPECTED_ANSWERS[name]), host) as server:
        result = run_cli("demo", host, "--port", str(server.port), "--timeout", "5")
    total = len(list(demo.cases()))
    assert (result.returncode, result.stderr) == (1, f"socketlab: demo: {total} of {total} answers wrong\n"), result
    assert result.stdout.count("\nBAD ") == total, result.stdout


def test_negative_control_a_right_answers_summary_cannot_take_an_unexpected_one():
    """What demo did before issue 19: it summarised every answer as a right one (a KeyError, a
    TypeError); now only a right answer is summarised."""
    with pytest.raises(KeyError):
        demo._summary({"a": 1})
    with pytest.raises(TypeError):
        demo._summary({"values": [1, 2], "stats": None})


FORGED = "ok\n\x1b[31msocketlab: connection refused (ECONNREFUSED)\x1b[0m\u2028\u202e"


@pytest.mark.parametrize("argv", [["app-client", "{host}", "{port}", "search", "ring", "-q"],
                                  ["app-client", "{host}", "{port}", "search", "ring"],
                                  ["app-client", "{host}", "{port}", "search", "ring", "--json"],
                                  ["demo", "{host}", "--port", "{port}"]],
                         ids=["quiet", "commentary", "json", "demo"])
def test_a_server_cannot_forge_a_clients_output(host, argv):
    """A result holding a newline and ANSI escapes is shown escaped: no line of the server's
    making, no control character for the terminal."""
    answer = json_frame(json.dumps({"result": FORGED}).encode())
    with HostileServer(reply_with(answer), host) as server:
        result = run_cli(*[a.format(host=host, port=server.port) for a in argv], "--timeout", "5")
    output = result.stdout + result.stderr
    assert not any(c in output for c in "\x1b\u2028\u202e"), output
    lines = output.splitlines()
    assert not any(line.startswith("socketlab: connection refused") for line in lines), output
    if argv[0] == "demo":
        assert "\\n\\x1b[31msocketlab: connection refused" in output
    elif "--json" in argv:
        assert json.loads(result.stdout)["result"] == FORGED  # machine-readable, exact
    else:
        assert "Got result: ok\\n\\x1b[31msocketlab: connection refused (ECONNREFUSED)\\x1b[0m\\u2028\\u202e" in lines


def test_negative_control_printing_the_result_as_it_came_forges_a_line():
    assert f"Got result: {FORGED}".splitlines()[1].startswith("\x1b[31msocketlab: connection refused")


class FullQueueThenSilence:
    """A listener whose accept queue is full for ``full_for`` seconds (a client's SYN is dropped,
    and sent again a second later), then accepts everyone and never says a word: a TLS client
    waits on the connect, then on the handshake."""

    def __init__(self, host, full_for=0.5):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family)
        self.listener.bind((host, 0))
        self.listener.listen(0)  # Linux queues backlog + 1 = 1 connection
        self.port = self.listener.getsockname()[1]
        self.fillers = [socket.create_connection((host, self.port), timeout=5)]
        self.accepted = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept_all, args=(full_for,), daemon=True)
        self.thread.start()

    def _accept_all(self, full_for):
        if self.stopped.wait(full_for):
            return
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except TimeoutError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join(10)
        for sock in self.fillers + self.accepted:
            sock.close()
        self.listener.close()


@pytest.mark.parametrize("argv", [["probe", "{host}", "{port}"],
                                  ["app-client", "{host}", "{port}", "search", "ring"],
                                  ["echo-client", "{host}", "{port}", "hi"]],
                         ids=["probe", "app-client", "echo-client"])
def test_a_tls_client_ends_within_its_timeout_when_connect_and_handshake_both_stall(host, argv):
    # What a process of the CLI costs to start and end on this machine now (0.3 s idle, near
    # 1 s with the lab's tiers beside this one): the client's own time is what is left.
    start = time.monotonic()
    assert run_cli("--version").returncode == 0
    startup = time.monotonic() - start
    with FullQueueThenSilence(host) as server:
        start = time.monotonic()
        result = run_cli(*[a.format(host=host, port=server.port) for a in argv],
                         "--tls", "--timeout", "3")
        elapsed = time.monotonic() - start
    assert result.returncode == 1, result
    assert "timed out" in result.stdout + result.stderr
    # one deadline for both stalls: 3 s; a timeout per step takes 1 s + 3 s (the control below)
    assert elapsed - startup < 3 + 0.5, f"took {elapsed:.1f} s with --timeout 3 ({startup:.1f} s to start)"


def test_negative_control_a_timeout_per_step_runs_past_it(host):
    """socket.create_connection's timeout and then the handshake's, each the whole 3 s: the
    SYN dropped once costs 1 s, and the silent handshake 3 s more."""
    import ssl

    with FullQueueThenSilence(host) as server:
        start = time.monotonic()
        with socket.create_connection((host, server.port), timeout=3) as sock:
            with pytest.raises(TimeoutError):
                ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
        assert time.monotonic() - start > 3 + 0.7
