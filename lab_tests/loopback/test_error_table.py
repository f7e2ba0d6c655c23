"""The guide's error table, reproduced on loopback (the rest needs the lab's router:
lab_tests/lab/test_firewall.py).

Each case shows the exception Python raises, its errno, and the one line the CLI prints.
"""

import errno
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from lab_tests.topology import NOWHERE_V4
from socketlab import cli
from socketlab.errors import classify
from socketlab.server import create_listener

from .support import reset, run_cli, wait_for



def free_port(host="127.0.0.1"):
    """A port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def test_econnrefused_nothing_listening(host):
    port = free_port(host)
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection((host, port), timeout=5)
    assert info.value.errno == errno.ECONNREFUSED
    result = run_cli("app-client", host, str(port), "search", "ring")
    assert result.returncode == 1
    assert result.stderr == f"socketlab: connection refused (ECONNREFUSED) talking to {host} port {port}\n"


def test_eaddrinuse_second_listener_on_one_port(listen, host):
    port = listen(host).getsockname()[1]
    with pytest.raises(OSError) as info:
        listen(host, port)  # SO_REUSEADDR does not allow two listeners
    assert info.value.errno == errno.EADDRINUSE
    result = run_cli("app-server", host, str(port))
    assert result.returncode == 1
    assert result.stderr == (f"socketlab: address already in use (EADDRINUSE) binding {host!r} "
                             f"port {port}: another program is listening there\n")


def test_so_reuseaddr_lets_a_restarted_server_bind_over_time_wait(listen, connect):
    listener = listen("127.0.0.1")
    port = listener.getsockname()[1]
    peer = connect("127.0.0.1", port)
    conn, _ = listener.accept()
    conn.close()  # the server closes first: its side goes to TIME_WAIT
    peer.recv(1)
    peer.close()
    listener.close()
    create_listener("127.0.0.1", port).close()  # would be EADDRINUSE without SO_REUSEADDR


def test_eaddrnotavail_address_not_on_this_host():
    result = run_cli("app-server", NOWHERE_V4, "0")  # lab range, never on the host
    assert result.returncode == 1
    assert result.stderr == ("socketlab: cannot assign requested address (EADDRNOTAVAIL) binding "
                             f"'{NOWHERE_V4}' port 0: '{NOWHERE_V4}' is not an address of this host\n")


def test_eacces_privileged_port_without_privilege():
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        first_unprivileged = int(f.read())
    if first_unprivileged == 0:
        pytest.fail("every port is unprivileged on this host: EACCES cannot be shown")
    port = first_unprivileged - 1
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, then run the CLI in-process (modules are already loaded)
        try:
            os.close(read_end)
            os.dup2(write_end, 2)
            if os.getuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            sys.stderr = os.fdopen(2, "w")
            code = cli.main(["app-server", "127.0.0.1", str(port)])
            sys.stderr.flush()
        finally:
            os._exit(locals().get("code", 99))
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        err = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert err == (f"socketlab: permission denied (EACCES) binding '127.0.0.1' port {port}: "
                   "ports below 1024 need root or CAP_NET_BIND_SERVICE\n")


def test_ewouldblock_fill_the_buffer(listen, connect, closing):
    """The guide's demo: a non-blocking sender whose peer does not read fills the buffers."""
    listener = listen("127.0.0.1")
    sender = connect(*listener.getsockname())
    closing(listener.accept()[0])  # the receiver: never reads
    sender.setblocking(False)
    sent = 0
    with pytest.raises(BlockingIOError) as info:
        while True:
            sent += sender.send(b"x" * 65536)
    assert info.value.errno == errno.EWOULDBLOCK
    assert classify(info.value).line("sending") == "resource temporarily unavailable (EWOULDBLOCK) sending"
    assert sent > 0  # it took a while: the kernel buffered what it could


def test_econnreset_peer_closes_uncleanly(listen, connect, host):
    listener = listen(host)
    conn = connect(*listener.getsockname()[:2])
    server_side, _ = listener.accept()
    reset(server_side)  # RST instead of FIN
    conn.settimeout(5)
    with pytest.raises(ConnectionResetError) as info:
        conn.recv(1)
    assert info.value.errno == errno.ECONNRESET
    assert classify(info.value).line("reading") == "connection reset by peer (ECONNRESET) reading"


def test_timeout_peer_never_answers(listen):
    listener = listen("127.0.0.1")  # accepts (in the kernel) but never answers
    port = listener.getsockname()[1]
    result = run_cli("app-client", "127.0.0.1", str(port), "search", "ring", "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stderr == f"socketlab: timed out (ETIMEDOUT) talking to 127.0.0.1 port {port}\n"


def test_probe_reports_the_exact_outcome(host):
    port = free_port(host)
    result = run_cli("probe", host, str(port))
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert {k: report[k] for k in ("outcome", "exception", "errno", "host", "port", "family")} == {
        "outcome": "refused", "exception": "ConnectionRefusedError", "errno": "ECONNREFUSED",
        "host": host, "port": port, "family": "AF_INET6" if ":" in host else "AF_INET"}
    assert report["elapsed_s"] < 1.0


# Hermetic: no name here may reach a DNS server. "!" cannot be in a host name, so the
# resolver library (glibc's res_hnok) refuses it without sending a query; an empty label is
# refused by Python itself, before any resolver is asked.
UNRESOLVABLE = ["no-such-host!.invalid", "no-such..host"]


@pytest.mark.parametrize("name", UNRESOLVABLE)
def test_name_not_resolved_is_one_clear_line(name):
    result = run_cli("probe", name, "80")
    assert result.returncode == 1
    assert json.loads(result.stdout)["outcome"] == "name-not-resolved"
    for argv in (["app-client", name, "80", "search", "x"], ["echo-client", name, "80"],
                 ["multiconn-client", name, "80", "2"], ["app-server", name, "0"]):
        result = run_cli(*argv)
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "name not resolved" in result.stderr, result


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["app-client", "127.0.0.1", "http", "search", "x"], "invalid port 'http': not a number"),
        (["app-client", "127.0.0.1", "70000", "search", "x"], "invalid port 70000: must be 1..65535"),
        (["app-client", "127.0.0.1", "0", "search", "x"], "invalid port 0: must be 1..65535"),
        (["app-server", "127.0.0.1", "65536"], "invalid port 65536: must be 0..65535"),
        (["multiconn-client", "127.0.0.1", "1", "0"],
         "argument NUM_CONNS: must be a whole number of connections, above 0 to 10000; got '0'"),
        (["multiconn-client", "127.0.0.1", "1", "many"],
         "argument NUM_CONNS: must be a whole number of connections, above 0 to 10000; got 'many'"),
        (["app-client", "127.0.0.1", "1", "stats", "1,two", "--dtype", "int16"],
         "cannot read '1,two' as int16 values"),
        (["app-client", "127.0.0.1", "1", "stats", "70000", "--dtype", "int16"],
         "cannot pack [70000] as int16"),
        (["app-client", "127.0.0.1", "1", "stats", "1e300", "--dtype", "float32"],
         "cannot pack [1e+300] as float32"),
        # Hostile peers, round two (issue 19): each of these once ended in a traceback, or
        # (an empty TLS option) in cleartext without a word.
        *[([cmd, "127.0.0.1", "1", *args, "--timeout", "1e10"], "must be seconds, above 0 to 31536000")
          for cmd, args in (("echo-client", ["x"]), ("app-client", ["search", "x"]),
                            ("multiconn-client", ["1"]), ("fill-client", []), ("probe", []))],
        (["demo", "--timeout", "1e10"], "must be seconds, above 0 to 31536000"),
        (["app-server", "127.0.0.1", "0", "--idle-timeout", "1e308"], "must be seconds, 0 to 31536000"),
        (["app-server", "127.0.0.1", "0", "--request-timeout", "inf"], "must be seconds, 0 to 31536000"),
        *[(["echo-client", "127.0.0.1", "1", "x", "--tls-server-name", name],
           f"--tls-server-name {name!r} cannot be checked against a certificate")
          for name in ("a" * 64, ".x", "a..b", "\udcff", "")],
        (["echo-client", "", "1", "x", "--tls"],
         "HOST '' cannot be checked against a certificate: server_hostname cannot be an empty "
         "string or start with a leading dot.; give --tls-server-name"),
        (["echo-client", "127.0.0.1", "1", "x", "--tls-ca", ""], "argument --tls-ca: must name a file, got ''"),
        (["app-server", "127.0.0.1", "0", "--tls-cert", "", "--tls-key", "k"],
         "argument --tls-cert: must name a file, got ''"),
        (["fill-client", "127.0.0.1", "1", "--sndbuf", str(2**40)], "must be a whole number of bytes, above 0 to 1073741824"),
        (["fill-server", "127.0.0.1", "0", "--rcvbuf", str(2**40)], "must be a whole number of bytes, above 0 to 1073741824"),
        (["fill-client", "127.0.0.1", "1", "--hold", "1e308"], "must be seconds, 0 to 31536000"),
        (["multiconn-client", "127.0.0.1", "1", "1", "--messages", "100000000"],
         "must be a whole number of messages, above 0 to 10000"),
        (["app-server", "127.0.0.1", "0", "--socket-buffer", "4294967296"],
         "must be a whole number of bytes, above 0 to 1073741824"),
        (["app-server", "127.0.0.1", "0", "--max-buffered", "1e3"], "must be a whole number of bytes"),
        (["app-client", "127.0.0.1", "1", "search", "\udcff"], "cannot encode the content as utf-8 JSON"),
        (["app-client", "127.0.0.1", "1", "double", "\udcff"], "cannot send"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(argv, message):
    result = run_cli(*argv)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no usage block, no traceback
    assert result.stderr.startswith(f"socketlab {argv[0]}: error: ")  # the subcommand's
    assert message in result.stderr, result.stderr
    assert result.stdout == ""  # checked before anything starts


def test_an_argument_that_is_not_utf8_is_sent_as_the_bytes_typed(cli_server):
    """argv is bytes on POSIX: Python hands ``\\xff`` over as a lone surrogate, and the echo
    client sends the byte back as it came (it used to end in a UnicodeEncodeError)."""
    server = cli_server("echo-server", "127.0.0.1", "0", "-q")
    result = subprocess.run([sys.executable, "-m", "socketlab", "echo-client", "127.0.0.1",
                             str(server.port), b"caf\xe9 \xff".decode("utf-8", "surrogateescape")],
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "Received b'caf\\xe9 \\xff'\n"), result.stderr


def test_ewouldblock_fill_the_buffer_commands(cli_server, host):
    """The guide's demonstration as two commands: fill-server never reads, fill-client sends
    until EWOULDBLOCK; every byte the kernel took is in one of the two queues."""
    server = cli_server("fill-server", host, "0")
    result = run_cli("fill-client", host, str(server.port), "--timeout", "20")
    assert result.returncode == 0, result
    full = re.search(r"^BlockingIOError: .* \(EWOULDBLOCK\) after (\d+) bytes", result.stdout, re.M)
    send_q = re.search(r"^Send-Q: (\d+) of the (\d+) bytes", result.stdout, re.M)
    assert full and send_q, result.stdout
    total, in_send_q = int(full[1]), int(send_q[1])
    assert int(send_q[2]) == total > 0

    def recv_q():
        lines = [line for line in server.stdout if line.startswith("Recv-Q: ")]
        return int(lines[-1].split()[1]) if lines else None

    # Loopback has no wire: what is not in the client's Send-Q is in the server's Recv-Q.
    wait_for(lambda: recv_q() == total - in_send_q, timeout=5)
    assert recv_q() > 0


def test_classify_while_another_thread_is_importing_ssl(monkeypatch):
    """A threaded program (lab_tests/batch.py runs the CLI in threads) may classify a plain
    error while another thread's TLS is still importing ssl: sys.modules then holds a module
    without its names yet. The plain error is classified as ever. (Met in the guest's batch: a
    traceback escaped the CLI while it handled an ECONNRESET, as a TLS case imported ssl.)"""
    import types

    monkeypatch.setitem(sys.modules, "ssl", types.ModuleType("ssl"))  # half-made: no SSLError yet
    failure = classify(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
    assert (failure.outcome, failure.errno_name) == ("reset", "ECONNRESET")
