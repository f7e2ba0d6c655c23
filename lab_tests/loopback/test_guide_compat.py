"""Wire compatibility with the guide's reference programs (app-client.py / app-server.py).

``guide_client`` and ``guide_server`` re-create, step by step, what the guide's ``libclient`` and
``libserver`` (the current revision: single-quoted answers) put on and read off the wire,
independently of socketlab's protocol module.
"""

import json
import os
import signal
import socket
import struct
import sys
import threading

import pytest

from lab_tests import guide
from socketlab import app, client, demo
from socketlab.protocol import MessageDecoder

from .support import CliServer, read_answer, ready_port, run_cli, wait_for


REQUIRED = ("byteorder", "content-length", "content-type", "content-encoding")


def guide_message(content_bytes, content_type, content_encoding):
    jsonheader = {"byteorder": sys.byteorder, "content-type": content_type,
                  "content-encoding": content_encoding, "content-length": len(content_bytes)}
    jsonheader_bytes = json.dumps(jsonheader, ensure_ascii=False).encode("utf-8")
    return struct.pack(">H", len(jsonheader_bytes)) + jsonheader_bytes + content_bytes


def guide_read(sock):
    """protoheader -> jsonheader (required fields checked) -> content, as the guide does."""
    buf = b""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            data = sock.recv(4096)
            if not data:
                raise RuntimeError("Peer closed.")
            buf += data
    need(2)
    hdrlen = struct.unpack(">H", buf[:2])[0]
    need(2 + hdrlen)
    jsonheader = json.loads(buf[2 : 2 + hdrlen].decode("utf-8"))
    for reqhdr in REQUIRED:
        if reqhdr not in jsonheader:
            raise ValueError(f"Missing required header '{reqhdr}'.")
    need(2 + hdrlen + jsonheader["content-length"])
    data = buf[2 + hdrlen : 2 + hdrlen + jsonheader["content-length"]]
    if jsonheader["content-type"] == "text/json":
        return jsonheader, json.loads(data.decode(jsonheader["content-encoding"]))
    return jsonheader, data


def guide_client(host, port, action, value):
    if action == "search":
        request = guide_message(json.dumps({"action": action, "value": value}, ensure_ascii=False)
                                .encode("utf-8"), "text/json", "utf-8")
    else:
        request = guide_message(bytes(action + value, encoding="utf-8"),
                                "binary/custom-client-binary-type", "binary")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        return guide_read(sock)


#: The guide's answers when nothing matches: the current revision, and an older one.
REVISIONS = {"current": ("No match for '{}'.", "Error: invalid action '{}'."),
             "older": ('No match for "{}".', 'Error: invalid action "{}".')}


def guide_server_once(listener, revision="current"):
    no_match, invalid_action = REVISIONS[revision]
    conn, _ = listener.accept()
    with conn:
        header, request = guide_read(conn)
        if header["content-type"] == "text/json":
            action = request.get("action")
            if action == "search":
                query = request.get("value")
                answer = app.SEARCH.get(query) or no_match.format(query)
                content = {"result": answer}
            else:
                content = {"result": invalid_action.format(action)}
            response = guide_message(json.dumps(content, ensure_ascii=False).encode("utf-8"),
                                     "text/json", "utf-8")
        else:
            response = guide_message(guide.BINARY_PREFIX + request[:10],
                                     "binary/custom-server-binary-type", "binary")
        conn.sendall(response)


@pytest.mark.parametrize(("action", "value", "expected"), [
    ("search", "morpheus", {"result": guide.MORPHEUS}),
    ("search", guide.DOG_QUERY, {"result": guide.DOG}),
    ("search", "x", {"result": "No match for 'x'."}),
    ("double", "42", guide.binary_answer(b"double42")),
])
def test_guides_client_against_socketlab_server(serve, host, action, value, expected):
    host, port = serve("app", host)
    header, result = guide_client(host, port, action, value)
    assert result == expected
    assert header["byteorder"] == sys.byteorder


@pytest.mark.parametrize(("action", "value", "json_request", "expected"), [
    ("search", "ring", False, guide.RING),
    ("search", "nope", False, "No match for 'nope'."),
    # The guide's client sends every other action as binary: ACTION + VALUE in UTF-8...
    ("double", "10", False, repr(guide.binary_answer(b"double10"))),
    ("binary", "\U0001f603", False, repr(guide.binary_answer("binary\U0001f603".encode()))),
    # ...and socketlab's --json-request reaches the server's invalid-action answer.
    ("double", "1", True, "Error: invalid action 'double'."),
])
def test_socketlab_client_against_guides_server(host, action, value, json_request, expected):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as listener:
        listener.bind((host, 0))
        listener.listen()
        listener.settimeout(10)  # a test that fails before connecting does not leave it waiting
        thread = threading.Thread(target=guide_server_once, args=(listener,))
        thread.start()
        wire = app.make_request(action, value, json_request=json_request)
        reply = client.request(host, listener.getsockname()[1], wire)
        thread.join(10)
    assert app.describe_response(reply.response) == expected


@pytest.mark.parametrize("revision", list(REVISIONS))
def test_demo_passes_against_the_guides_own_server(revision):
    """Pointed at the guide's server (either revision of its answers), the demo passes, and
    says the guide's server has no array type (socketlab's extension) instead of failing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)
        cases = sum(1 for _ in demo.cases())

        def serve_all():
            for _ in range(cases):
                guide_server_once(listener, revision)

        thread = threading.Thread(target=serve_all, daemon=True)
        thread.start()
        result = run_cli("demo", "127.0.0.1", "--port", str(listener.getsockname()[1]))
        thread.join(10)
    assert result.returncode == 0, result.stdout + result.stderr
    arrays_cases = sum(1 for case in demo.cases() if case.action == "stats")
    assert result.stdout.splitlines()[-1] == (
        f"demo: all {cases - arrays_cases} answers correct; {arrays_cases} array requests "
        f"answered as the guide's own server does (socketlab's array type is an extension)")
    assert "BAD" not in result.stdout


def test_demo_still_fails_on_a_wrong_answer():
    """The negative control: a server whose search answers are wrong fails the demo."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)

        def wrong_once():
            conn, _ = listener.accept()
            with conn:
                guide_read(conn)
                conn.sendall(guide_message(json.dumps({"result": "wrong"}).encode(),
                                           "text/json", "utf-8"))

        def serve_all():
            for _ in range(sum(1 for _ in demo.cases())):
                try:
                    wrong_once()
                except OSError:
                    return

        thread = threading.Thread(target=serve_all, daemon=True)
        thread.start()
        result = run_cli("demo", "127.0.0.1", "--port", str(listener.getsockname()[1]))
    assert result.returncode == 1
    assert "BAD" in result.stdout and "answers wrong" in result.stderr


# -- the guide's running commentary, line by line --------------------------------------------------


def one_message(wire):
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    return decoder.next_message()


def server_lines(server, last_line):
    """The server's stdout once it has printed ``last_line`` (a prefix), without its two
    start-up lines (the guide's ``Listening on`` and socketlab's limits)."""
    wait_for(lambda: any(line.startswith(last_line) for line in server.stdout))
    lines = [line.rstrip("\n") for line in server.stdout]
    assert lines[0] == f"Listening on {(server.host, server.port)}"
    assert lines[1].startswith("socketlab: idle connections close after 30 s")
    return lines[2:]


def _write_calls(pid: int) -> int:
    """The write system calls process PID has made (/proc/PID/io's syscw; a socket's send is
    not one)."""
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("syscw:"))


#: The control: the commentary as it was before issue 17's fix, print() to sys.stdout, flushed
#: once a round (under PYTHONUNBUFFERED, as in the lab's images, a print is a write of the text
#: and one of its newline, and fails at once when stdout's reader has gone).
OLD_COMMENTARY = """import sys
from socketlab import cli
class Old:
    line = staticmethod(print)
    flush = staticmethod(sys.stdout.flush)
cli._commentary = lambda: Old
sys.exit(cli.main(["app-server", *sys.argv[1:]]))
"""


@pytest.mark.parametrize("control", [False, True], ids=["socketlab", "negative-control"])
def test_a_servers_commentary_is_written_once_a_round_even_unbuffered(closing, control):
    """PYTHONUNBUFFERED=1 (the lab's images set it) makes sys.stdout write every print at once:
    two system calls a line, eight a request. The server keeps its commentary's lines until the
    end of each round of the loop and writes them at once: at most one write a round. A client
    that connects, sends, reads and closes, one at a time, takes two rounds (the answer's, the
    close's) or three (when its request arrives after the accept's round): at most three writes
    for its four lines."""
    argv = ("127.0.0.1", "0", "--idle-timeout", "0")
    env = {"PYTHONUNBUFFERED": "1"}
    server = closing(CliServer(*argv, python=OLD_COMMENTARY, env=env) if control
                     else CliServer("app-server", *argv, env=env))
    wait_for(lambda: len(server.stdout) >= 2)  # the ready line and the limits line
    before, requests = _write_calls(server.process.pid), 40
    for _ in range(requests):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(app.make_request("search", "morpheus"))
            read_answer(sock)
    wait_for(lambda: sum(line.startswith("Closing connection") for line in server.stdout) == requests)
    per_request = (_write_calls(server.process.pid) - before) / requests
    if control:
        assert per_request >= 4, per_request  # a write a line at least: what the test catches
    else:
        assert per_request <= 3, f"{per_request} writes a request for 4 lines"


@pytest.mark.parametrize("control", [False, True], ids=["socketlab", "negative-control"])
def test_a_server_whose_stdout_reader_went_away_goes_on_serving(control):
    """The commentary's reader (a terminal closed, `docker compose logs` piped into `head`) may
    go away: the commentary then stops, said once on stderr, and every request is answered."""
    import subprocess

    argv = ["-c", OLD_COMMENTARY] if control else ["-m", "socketlab", "app-server"]
    process = subprocess.Popen([sys.executable, *argv, "127.0.0.1", "0", "--idle-timeout", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port = ready_port(process.stdout.readline())
        process.stdout.readline()  # socketlab's limits line: the last before the commentary
        process.stdout.close()  # the reader goes away
        answered = 0
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(app.make_request("search", "morpheus"))
                try:
                    answered += read_answer(sock).json() == {"result": guide.MORPHEUS}
                except (AssertionError, OSError):
                    pass  # closed without an answer
    finally:
        process.terminate()
        stderr = process.communicate(timeout=10)[1]
    if control:
        assert answered < 50, "the control lost nothing: the test cannot see the bug"
    else:
        assert answered == 50, stderr
        assert stderr.count("no more of it") == 1, stderr


def test_app_programs_print_the_guides_lines(cli_server, host):
    server = cli_server("app-server", host, "0")
    server.host = host
    address = (host, server.port)
    wire = app.make_request("search", "morpheus")
    result = run_cli("app-client", host, str(server.port), "search", "morpheus")
    assert result.returncode == 0, result.stderr
    answer = {"result": guide.MORPHEUS}
    assert result.stdout.splitlines() == [
        f"Starting connection to {address}",
        f"Sending {wire!r} to {address}",
        f"Received response {answer!r} from {address}",
        f"Got result: {answer['result']}",
        f"Closing connection to {address}",
    ]
    lines = server_lines(server, "Closing connection to")
    peer = lines[0].removeprefix("Accepted connection from ")
    reply = app.respond(one_message(wire))
    assert lines == [
        f"Accepted connection from {peer}",
        f"Received request {{'action': 'search', 'value': 'morpheus'}} from {peer}",
        f"Sending {reply!r} to {peer}",
        f"Closing connection to {peer}",
    ]
    assert peer.startswith(f"('{host}', ")  # the peer as Python shows it


def test_app_client_binary_request_prints_the_guides_lines(cli_server):
    server = cli_server("app-server", "127.0.0.1", "0", "--quiet")
    address = ("127.0.0.1", server.port)
    result = run_cli("app-client", "127.0.0.1", str(server.port), "double", "10")
    assert result.stdout.splitlines()[2:] == [
        f"Received binary/custom-server-binary-type response from {address}",
        f"Got response: {guide.binary_answer(b'double10')!r}",
        f"Closing connection to {address}",
    ]


def test_multiconn_programs_print_the_guides_lines(cli_server):
    server = cli_server("multiconn-server", "127.0.0.1", "0")
    server.host = "127.0.0.1"
    result = run_cli("multiconn-client", "127.0.0.1", str(server.port), "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    messages = client.multiconn_messages(1)
    assert lines[:3] == [f"Starting connection 1 to {('127.0.0.1', server.port)}",
                         f"Sending {messages[0]!r} to connection 1",
                         f"Sending {messages[1]!r} to connection 1"]
    received = lines[3:-2]  # the echo may come back in one piece or several
    assert all(line.startswith("Received b") and line.endswith(" from connection 1")
               for line in received)
    assert lines[-2:] == ["Closing connection 1",
                          f"1 connections, {len(b''.join(messages))} bytes echoed, every message exact"]
    lines = server_lines(server, "Closing connection to")
    peer = lines[0].removeprefix("Accepted connection from ")
    assert lines[0] == f"Accepted connection from {peer}" and lines[-1] == f"Closing connection to {peer}"
    echoed = [line for line in lines[1:-1] if line.startswith("Echoing ")]
    assert echoed and all(line.endswith(f" to {peer}") for line in echoed)


def test_echo_server_prints_connected_by(cli_server):
    server = cli_server("echo-server", "127.0.0.1", "0")
    server.host = "127.0.0.1"
    assert run_cli("echo-client", "127.0.0.1", str(server.port)).stdout == "Received b'Hello, world'\n"
    lines = server_lines(server, "Connected by")
    assert lines[0].startswith("Connected by ('127.0.0.1', ")


def test_ctrl_c_prints_the_guides_last_line(cli_server):
    server = cli_server("app-server", "127.0.0.1", "0")
    returncode, _ = server.stop(signal.SIGINT)
    assert returncode == 0
    assert server.stdout[-1] == "Caught keyboard interrupt, exiting\n"


def test_quiet_keeps_only_the_ready_line_and_the_result(cli_server):
    """docs/cli.md: --quiet keeps the ready line (servers) or the result (clients), and errors:
    no limits line, no commentary, nothing on Ctrl-C."""
    server = cli_server("app-server", "127.0.0.1", "0", "--quiet")
    result = run_cli("app-client", "127.0.0.1", str(server.port), "search", "ring", "--quiet")
    assert result.stdout == f"Got result: {app.SEARCH['ring']}\n" and result.stderr == ""
    returncode, stderr = server.stop(signal.SIGINT)
    assert returncode == 0 and stderr == ""
    assert server.stdout == [f"Listening on {('127.0.0.1', server.port)}\n"]


def test_verbose_clients_log_what_they_send_and_receive(cli_server):
    """docs/cli.md: -v adds the debug log on stderr; a client logs every piece it sends and
    receives (the result line on stdout stays the same)."""
    server = cli_server("app-server", "127.0.0.1", "0", "--quiet")
    wire = app.make_request("search", "ring")
    quiet = run_cli("app-client", "127.0.0.1", str(server.port), "search", "ring", "-q")
    verbose = run_cli("app-client", "127.0.0.1", str(server.port), "search", "ring", "-q", "-v")
    assert verbose.stdout == quiet.stdout and quiet.stderr == ""
    assert f"socketlab.client DEBUG sent {len(wire)} bytes: " in verbose.stderr
    assert "socketlab.client DEBUG received " in verbose.stderr
    echo = run_cli("echo-client", "127.0.0.1", str(cli_server("echo-server", "127.0.0.1", "0", "-q").port), "-v")
    assert "DEBUG sent 12 bytes: b'Hello, world'" in echo.stderr
