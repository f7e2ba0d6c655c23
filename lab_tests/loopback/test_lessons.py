"""The guide's reference topics on this kernel (issue 21): getaddrinfo's tuples, socket options
set and read back, the listen backlog, the half-open connection. Each asserts what the kernel
really does, with a negative control for what the prose would have us assume."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from socketlab import client, lessons

from .support import run_cli, wait_for
from .test_error_table import UNRESOLVABLE


# -- getaddrinfo ---------------------------------------------------------------------------------


# A literal port on purpose: the guide's own 65432, in getaddrinfo's tuples as Python prints them.
@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", "(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('127.0.0.1', 65432))"),
    ("::1", "(<AddressFamily.AF_INET6: 10>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('::1', 65432, 0, 0))"),
    ("[::1]", "(<AddressFamily.AF_INET6: 10>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('::1', 65432, 0, 0))"),
    ("", "(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('0.0.0.0', 65432))"),
    ("", "(<AddressFamily.AF_INET6: 10>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('::', 65432, 0, 0))"),
])
def test_addrinfo_prints_the_five_tuples_as_the_guide_does(host, expected):
    result = run_cli("addrinfo", host, "65432")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith(">>> socket.getaddrinfo(") and expected in lines[1:], result.stdout


def test_a_link_local_address_takes_its_scope_in_the_fourth_member():
    """fe80::/10 is on every link at once: ``%lo`` picks the interface, and getaddrinfo puts
    its index in the 4-tuple's scope_id, the one member that matters here."""
    (info,) = lessons.addrinfo("fe80::1%lo", 80)
    assert info[4] == ("fe80::1", 80, 0, socket.if_nametoindex("lo"))
    (bare,) = lessons.addrinfo("fe80::1", 80)
    assert bare[4][3] == 0  # the negative control: without a scope, no interface is named


@pytest.mark.parametrize("argv, status, words", [
    (["addrinfo", "fe80::1%nosuch0", "80"], 2, "name not resolved (EAI_NONAME) resolving fe80::1%nosuch0 port 80"),
    *[(["addrinfo", name, "80"], 2, f"name not resolved (EAI_NONAME) resolving {name} port 80")
      for name in UNRESOLVABLE],
    (["addrinfo", "127.0.0.1", "65536"], 2, "invalid port 65536: must be 0..65535"),
])
def test_addrinfo_bad_input_is_one_line(argv, status, words):
    result = run_cli(*argv)
    assert result.returncode == status, result
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


# -- socket options, set and read back ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_linux_doubles_the_buffer_sizes_and_the_accepted_socket_inherits(host):
    seen = json.loads(run_cli("sockopts", host, "--json").stdout)
    set_ = seen["set"]
    for where in ("listener", "client", "accepted"):
        assert seen[where]["SO_RCVBUF"] == 2 * set_["SO_RCVBUF"], seen  # what the kernel does
        assert seen[where]["SO_SNDBUF"] == 2 * set_["SO_SNDBUF"], seen
        for flag in ("SO_REUSEADDR", "SO_KEEPALIVE", "TCP_NODELAY"):
            assert seen[where][flag] == 1, (where, flag, seen)
    assert seen["accepted"] == seen["listener"]  # inherited from the listener, every one
    # The negative control: the prose's "you read back what you set" is false here.
    assert seen["client"]["SO_RCVBUF"] != set_["SO_RCVBUF"]


def test_a_small_buffer_reads_back_as_the_kernels_minimum():
    seen = lessons.sockopts("127.0.0.1", buffer=1000)
    assert seen["client"]["SO_RCVBUF"] > 2 * 1000 and seen["client"]["SO_SNDBUF"] > 2 * 1000, seen
    assert seen["client"]["SO_RCVBUF"] >= 1000  # the guide's note holds: at least the value set


# -- the listen backlog --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_past_the_backlog_linux_drops_syns_it_does_not_refuse(host):
    seen = json.loads(run_cli("backlog", host, "--backlog", "10", "--connections", "20",
                              "--timeout", "2", "--json").stdout)
    assert (seen["completed"], seen["refused"], seen["waiting"]) == (11, 0, 9), seen
    assert (seen["accept_queue"], seen["ss_send_q"]) == (11, 10), seen


def test_negative_control_a_larger_backlog_completes_every_handshake():
    seen = lessons.backlog("127.0.0.1", backlog=30, connections=20, timeout=2)
    assert (seen["completed"], seen["waiting"]) == (20, 0), seen


# -- the half-open connection --------------------------------------------------------------------------


def test_half_open_states_and_an_answer_after_eof(closing):
    """The client sends and shuts down its side; the server sees EOF, holds its side open and
    still answers: FIN-WAIT-2 on the client, CLOSE-WAIT on the server, in the kernel's words."""
    listener = closing(socket.create_server(("127.0.0.1", 0)))
    sock = closing(socket.create_connection(listener.getsockname(), timeout=5))
    server, _ = listener.accept()
    closing(server)
    server.settimeout(5)
    sock.sendall(b"question")
    sock.shutdown(socket.SHUT_WR)
    assert server.recv(100) == b"question" and server.recv(100) == b""  # the data, then EOF
    # Our FIN is acknowledged a moment after the server reads it: FIN-WAIT-1, then -2.
    wait_for(lambda: lessons.tcp_state(sock) == "FIN-WAIT-2", timeout=2)
    assert lessons.tcp_state(server) == "CLOSE-WAIT"
    server.sendall(b"answer after EOF")
    server.close()
    assert sock.recv(100) == b"answer after EOF" and sock.recv(100) == b""


def test_the_echo_client_half_closes_against_socketlabs_server(serve):
    host, port = serve("echo")
    assert client.echo(host, port, b"half open", half_close=True) == b"half open"
    result = run_cli("echo-client", host, str(port), "half open", "--half-close", "-q")
    assert (result.returncode, result.stdout) == (0, "Received b'half open'\n"), result


def test_negative_control_a_server_that_closes_on_eof_loses_the_answer(closing):
    listener = closing(socket.create_server(("127.0.0.1", 0)))

    def careless():
        conn, _ = listener.accept()
        with conn:
            while conn.recv(100):  # reads everything, and on EOF closes: nothing is answered
                pass

    thread = threading.Thread(target=careless, daemon=True)
    thread.start()
    with pytest.raises(client.ExchangeError, match="server closed after 0 of 9 echoed bytes"):
        client.echo("127.0.0.1", listener.getsockname()[1], b"half open", half_close=True, timeout=5)
    thread.join(5)
