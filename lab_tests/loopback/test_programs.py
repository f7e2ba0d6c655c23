"""Each of the guide's programs end to end on 127.0.0.1 and ::1, and how the servers behave
when peers misbehave."""

import concurrent.futures
import json
import logging
import select
import signal
import socket
import struct

import pytest

from lab_tests import guide
from socketlab import app, client

from .support import CONFORMANCE, exchange_app, read_error_answer, reset, run_cli, wait_for



# -- the programs, through the command line ----------------------------------------------------


def test_echo_programs(cli_server, host):
    server = cli_server("echo-server", host, "0")
    result = run_cli("echo-client", host, str(server.port), "Hello, ✓ world")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Received {'Hello, ✓ world'.encode()!r}\n"


def test_demo_wait_tries_the_first_request_again_until_the_server_is_up(cli_server, closing):
    """`demo --wait S` (the lab's clients start beside their server, not after it): while
    nothing listens the first request is tried again, and the demo passes once the server is
    up; without --wait the refusal is the demo's answer (its negative control)."""
    import os
    import subprocess
    import sys

    spare = closing(socket.socket())
    spare.bind(("127.0.0.1", 0))
    port = str(spare.getsockname()[1])
    spare.close()  # a port nothing listens on, for now
    refused = run_cli("demo", "127.0.0.1", "--port", port)
    assert refused.returncode == 1 and "connection refused (ECONNREFUSED)" in refused.stderr
    with subprocess.Popen([sys.executable, "-m", "socketlab", "demo", "127.0.0.1", "--port", port, "--wait", "30"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED="1")) as demo:
        try:
            lines = [demo.stdout.readline() for _ in range(3)]  # the third follows the first refusal
            assert lines[2].startswith("server: not up yet (connection refused)"), lines
            cli_server("app-server", "127.0.0.1", port)
            out, err = demo.communicate(timeout=60)
        finally:
            demo.kill()
    assert demo.returncode == 0, out + err
    assert "BAD" not in out and "answers correct" in out, out


def test_multiconn_programs(cli_server, host):
    server = cli_server("multiconn-server", host, "0")
    result = run_cli("multiconn-client", host, str(server.port), "50", "--messages", "5", "--quiet")
    assert result.returncode == 0, result.stderr
    expected = sum(len(m) for i in range(1, 51) for m in client.multiconn_messages(i, 5))
    assert result.stdout == f"50 connections, {expected} bytes echoed, every message exact\n"


def test_app_programs(cli_server, host):
    server = cli_server("app-server", host, "0")
    result = run_cli("app-client", host, str(server.port), "search", "morpheus", "--quiet")
    assert (result.returncode, result.stdout) == (0, f"Got result: {guide.MORPHEUS}\n")
    result = run_cli("app-client", host, str(server.port), "binary", "0123456789abc", "-q")
    assert result.stdout == f"Got response: {guide.binary_answer(b'binary0123')!r}\n"
    demo = run_cli("demo", host, "--port", str(server.port))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.endswith(f"(peer {host}, me {host})\n")
    assert "BAD" not in demo.stdout


def test_dual_stack_listener_takes_ipv4_and_ipv6(cli_server):
    server = cli_server("app-server", "::", "0")
    for host in ("127.0.0.1", "::1"):
        result = run_cli("probe", host, str(server.port))
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_servers_shut_down_cleanly_on_signals(cli_server, connect, signum):
    server = cli_server("app-server", "127.0.0.1", "0", "-v")
    idle = connect("127.0.0.1", server.port)
    assert run_cli("probe", "127.0.0.1", str(server.port)).returncode == 0
    returncode, err = server.stop(signum)
    assert returncode == 0, err
    assert "closing 1 open connection(s)" in err
    idle.settimeout(5)
    assert idle.recv(1) == b""  # the server closed it on the way out


# -- one conformance check, reused by every server --------------------------------------------


@pytest.mark.parametrize("kind", list(CONFORMANCE))
def test_a_misbehaving_peer_disturbs_nobody_else(serve, connect, host, kind, caplog):
    """Idle, reset-mid-message and (for the app) garbage peers; everyone else is served."""
    caplog.set_level(logging.WARNING, logger="socketlab.server")
    host, port = serve(kind, host, idle_timeout=None)
    exchange = CONFORMANCE[kind]
    idle = connect(host, port)
    broken = connect(host, port)
    broken.sendall(app.make_request("search", "ring")[:7])
    broken_port = broken.getsockname()[1]
    reset(broken)
    exchange(host, port)
    if kind == "app":
        garbage = connect(host, port)
        garbage_port = garbage.getsockname()[1]
        garbage.sendall(b"\xff\xffGARBAGE")
        # That connection, and only that one, is answered with the guide's error form, closed.
        assert read_error_answer(garbage).startswith("Error: bad request: header length 65535")
        garbage.close()
        assert any(f":{garbage_port} bad request: header length 65535 is outside" in r.message
                   for r in caplog.records)
        # The reset peer was mid-message: the app server must have said so, with its address.
        wait_for(lambda: any(f":{broken_port} " in r.message for r in caplog.records))
    exchange(host, port)
    idle.sendall(b"")  # still connected: nothing closed it


def test_idle_clients_are_closed_while_others_are_served(serve, connect, host, caplog):
    caplog.set_level(logging.WARNING, logger="socketlab.server")
    host, port = serve("app", host, idle_timeout=0.5)
    idle = connect(host, port)
    idle.sendall(app.make_request("search", "ring")[:5])  # never finishes its request
    exchange_app(host, port)
    idle.settimeout(10)
    assert idle.recv(1) == b""
    assert any("idle for 0.5 s" in r.message and f":{idle.getsockname()[1]}" in r.message
               for r in caplog.records)
    idle.close()
    exchange_app(host, port)


def test_connection_limit_pauses_accepting_until_one_closes(serve, connect):
    host, port = serve("app", "127.0.0.1", idle_timeout=None, max_connections=2)
    first = connect(host, port)
    connect(host, port)  # the second: with the first, the server is full
    waiting = connect(host, port)  # in the kernel's backlog, not served
    waiting.sendall(app.make_request("search", "ring"))
    waiting.settimeout(0.5)
    with pytest.raises(TimeoutError):
        waiting.recv(1)
    first.close()
    waiting.settimeout(10)
    assert waiting.recv(4096)  # served as soon as a slot was free


def test_two_hundred_concurrent_app_clients(serve, host):
    host, port = serve("app", host)
    queries = [("search", q) for q in ["morpheus", "ring", "\U0001f436", "nobody"]] + [("binary", "0123456789XYZ")]

    def one(i):
        action, value = queries[i % len(queries)]
        reply = client.request(host, port, app.make_request(action, value))
        return app.describe_response(reply.response)

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(one, range(200)))
    expected = [guide.ANSWERS.get(q[1], guide.no_match("nobody")) if q[0] == "search"
                else repr(guide.binary_answer(b"binary0123")) for q in queries]
    assert answers == [expected[i % len(queries)] for i in range(200)]


def test_partial_sends_with_tiny_socket_buffers(serve, host):
    host, port = serve("echo", host, socket_buffer=4096)
    payload = bytes(range(256)) * 1024  # 256 KiB through 4 KiB buffers: many partial sends
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        received = bytearray()
        view = memoryview(payload)
        while len(received) < len(payload):
            readable, writable, _ = select.select([sock], [sock] if view else [], [], 10)
            assert readable or writable, "no progress for 10 s"
            if writable:
                view = view[sock.send(view[:65536]):]
            if readable:
                received += sock.recv(65536)
    assert bytes(received) == payload


def test_large_array_with_tiny_socket_buffers(serve):
    host, port = serve("app", "127.0.0.1", socket_buffer=4096)
    values = list(range(-25_000, 25_000))
    wire = app.make_request("stats", ",".join(map(str, values)), dtype="int32", byteorder="big")
    reply = client.request(host, port, wire)
    result = app.describe_response(reply.response)
    assert result["values"] == values
    assert result["stats"] == {"count": 50_000, "sum": -25_000, "min": -25_000, "max": 24_999}


def test_over_limit_request_is_refused_without_reading_it(serve, caplog):
    caplog.set_level(logging.WARNING, logger="socketlab.server")
    host, port = serve("app", "127.0.0.1")
    with socket.create_connection((host, port)) as sock:
        raw = json.dumps({"byteorder": "big", "content-type": "binary/x", "content-encoding": "binary",
                          "content-length": 10**9}).encode()
        sock.sendall(struct.pack(">H", len(raw)) + raw)  # declares 1 GB, sends none of it
        assert "content-length 1000000000 is over the limit" in read_error_answer(sock)
    assert any("content-length 1000000000 is over the limit" in r.message for r in caplog.records)


def test_hosts_as_a_reader_writes_them(cli_server):
    """``""`` is this host for a client, as in the guide; ``[::1]`` is an IPv6 literal."""
    server = cli_server("echo-server", "", "0", "--quiet")  # "" = every IPv4 address
    result = run_cli("echo-client", "", str(server.port))
    assert (result.returncode, result.stdout) == (0, "Received b'Hello, world'\n"), result
    v6 = cli_server("app-server", "[::1]", "0", "--quiet")
    result = run_cli("app-client", "[::1]", str(v6.port), "search", "ring", "--quiet")
    assert result.stdout == f"Got result: {app.SEARCH['ring']}\n", result
    refused = run_cli("app-client", "", "1", "search", "x")
    assert refused.stderr == "socketlab: connection refused (ECONNREFUSED) talking to '' port 1\n"
