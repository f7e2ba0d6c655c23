"""TLS on loopback: the same programs and protocol inside TLS, and the TLS failure table.

Certificates come from services/pki/make-pki.sh (the lab's own script) in a temporary folder:
the lab CA, a certificate for 127.0.0.1/::1/localhost, an expired one, and one signed by a CA
nobody trusts. Each failure is reproduced with the real programs and asserted with the
exception (socketlab.errors.classify's words) and the one-line CLI message, from both sides.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time

import pytest

from socketlab import app
from socketlab.protocol import NEED_DATA, MessageDecoder
from socketlab.errors import Outcome, classify

from .support import run_cli, tls_server, wait_for


def test_every_request_kind_over_tls(cli_server, pki, host):
    server = tls_server(cli_server, pki, host)
    result = run_cli("demo", host, "--port", str(server.port), "--tls-ca", str(pki / "ca.pem"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "over TLSv1.3" in result.stdout.splitlines()[-1], result.stdout


def test_echo_over_tls(cli_server, pki, host):
    server = tls_server(cli_server, pki, host, "localhost", "echo-server")
    result = run_cli("echo-client", host, str(server.port), "ping over TLS", "--tls-ca", str(pki / "ca.pem"))
    assert (result.returncode, result.stdout) == (0, "Received b'ping over TLS'\n"), result.stderr


def test_probe_reports_the_negotiated_version_and_cipher(cli_server, pki, host):
    server = tls_server(cli_server, pki, host)
    result = run_cli("probe", host, str(server.port), "--tls-ca", str(pki / "ca.pem"))
    answer = json.loads(result.stdout)
    assert result.returncode == 0 and answer["outcome"] == "connected", result.stdout
    assert answer["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert answer["tls"]["cipher"] and answer["tls"]["bits"] >= 128
    assert answer["tls"]["peer_cn"] == "localhost"


# -- the failure table -------------------------------------------------------------------------
# (server certificate, client options, what the client's line says, what the server logs)
FAILURES = {
    "unknown CA": ("stranger", ["--tls-ca", "ca.pem"],
                   "certificate verify failed: unable to get local issuer certificate (CERTIFICATE_VERIFY_FAILED)",
                   "TLSV1_ALERT_UNKNOWN_CA"),
    "name mismatch": ("localhost", ["--tls-ca", "ca.pem", "--tls-server-name", "server.lab"],
                      "certificate verify failed: Hostname mismatch, certificate is not valid for "
                      "'server.lab'. (CERTIFICATE_VERIFY_FAILED)",
                      "SSLV3_ALERT_BAD_CERTIFICATE"),
    "expired certificate": ("expired", ["--tls-ca", "ca.pem"],
                            "certificate verify failed: certificate has expired (CERTIFICATE_VERIFY_FAILED)",
                            "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_tls_failure_table(cli_server, pki, host, case):
    cert, options, client_says, server_logs = FAILURES[case]
    server = tls_server(cli_server, pki, host, cert)
    options = [str(pki / o) if o.endswith(".pem") else o for o in options]
    result = run_cli("app-client", host, str(server.port), "search", "morpheus", "-q", *options)
    assert result.returncode == 1
    assert result.stderr == f"socketlab: {client_says} talking to {host} port {server.port}\n"
    # The exception itself, and the outcome the lab's vocabulary gives it.
    context = ssl.create_default_context(cafile=options[1])
    with socket.create_connection((host, server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            context.wrap_socket(raw, server_hostname=options[3] if len(options) > 2 else host)
    assert classify(info.value).outcome == Outcome.TLS_ERROR
    # The server: that connection's failure, logged; it goes on serving.
    wait_for(lambda: server_logs in "".join(server.stderr), timeout=5)
    good = tls_server(cli_server, pki, host)  # and a right client is served by a right server
    ok = run_cli("app-client", host, str(good.port), "search", "ring", "-q", "--tls-ca", str(pki / "ca.pem"))
    assert ok.returncode == 0, ok.stderr


def test_a_plaintext_client_on_the_tls_port(cli_server, pki, host):
    """The client's request is not a TLS record: the server reads it, logs WRONG_VERSION_NUMBER
    and closes; the client sees the close, and no answer."""
    server = tls_server(cli_server, pki, host)
    result = run_cli("app-client", host, str(server.port), "search", "morpheus", "-q", "--timeout", "5")
    assert result.returncode == 1
    assert result.stderr == "socketlab: protocol error: server closed the connection without a response\n"
    wait_for(lambda: "TLS handshake failed: [SSL: WRONG_VERSION_NUMBER]" in "".join(server.stderr), timeout=5)


def test_a_tls_client_on_the_plaintext_port(cli_server, pki, host):
    """The ClientHello reads as a header length of 0x1603 (5635) bytes that never come: the
    plain server waits for its request deadline; the client's own timeout ends it first."""
    server = cli_server("app-server", host, "0", "--request-timeout", "1")
    started = time.monotonic()
    result = run_cli("app-client", host, str(server.port), "search", "morpheus", "-q",
                     "--tls-ca", str(pki / "ca.pem"), "--timeout", "3")
    assert result.returncode == 1
    # The plain server's deadline closes it after 1 s: to the TLS client, an EOF mid-handshake.
    assert "(UNEXPECTED_EOF_WHILE_READING)" in result.stderr or "ECONNRESET" in result.stderr, result.stderr
    assert time.monotonic() - started < 3
    wait_for(lambda: "request not complete within 1 s" in "".join(server.stderr), timeout=5)


@pytest.mark.parametrize("ignore_unexpected_eof, exception, line", [
    (False, ssl.SSLEOFError, "unexpected eof while reading (UNEXPECTED_EOF_WHILE_READING)"),
    # Debian's python3.11 (the lab's hosts, the guest) sets OP_IGNORE_UNEXPECTED_EOF by default
    (True, ssl.SSLZeroReturnError, "tls/ssl connection has been closed (eof) (SSL_ERROR_ZERO_RETURN)"),
])
def test_what_a_tls_client_on_the_plaintext_port_sees_by_python_build(cli_server, pki, host,
                                                                         ignore_unexpected_eof, exception, line):
    """The same EOF mid-handshake is two exceptions, by one option a build may set by default:
    both are one clear line."""
    server = cli_server("app-server", host, "0", "--request-timeout", "1")
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if ignore_unexpected_eof:
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    else:
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    with socket.create_connection((host, server.port), timeout=5) as raw:
        with pytest.raises(exception) as info:
            context.wrap_socket(raw, server_hostname=host)
    failure = classify(info.value)
    assert (failure.outcome, failure.line("x")) == (Outcome.TLS_ERROR, f"{line} x")


def test_slowloris_on_the_handshake_is_bounded_by_the_request_deadline(cli_server, connect, pki, host):
    server = tls_server(cli_server, pki, host, "localhost", "app-server", "--request-timeout", "1")
    silent = connect(host, server.port, timeout=5)
    trickle = connect(host, server.port, timeout=5)
    trickle.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and then nothing
    started = time.monotonic()
    # A right client is served meanwhile: the stalled handshakes hold nobody else up.
    ok = run_cli("app-client", host, str(server.port), "search", "ring", "-q", "--tls-ca", str(pki / "ca.pem"))
    assert ok.returncode == 0, ok.stderr
    for sock in (silent, trickle):
        assert sock.recv(1) == b""  # closed by the server, within its deadline
    assert time.monotonic() - started < 1 + 1.5
    wait_for(lambda: "".join(server.stderr).count("TLS handshake not complete within 1 s") == 2, timeout=5)


def test_negative_control_without_a_deadline_a_silent_handshake_is_held(cli_server, connect, pki, host):
    server = tls_server(cli_server, pki, host, "localhost", "app-server", "--request-timeout", "0")
    silent = connect(host, server.port, timeout=2)
    with pytest.raises(TimeoutError):
        silent.recv(1)  # nothing ends it: the deadline is what bounds a handshake


def test_the_guides_protocol_bytes_are_the_same_inside_tls(cli_server, pki, host):
    """What the TLS client sends is the plain request, byte for byte, inside the records."""
    server = tls_server(cli_server, pki, host, "localhost", "echo-server")
    wire = app.make_request("search", "morpheus")
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection((host, server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as sock:
            sock.sendall(wire)
            echoed = b""
            while len(echoed) < len(wire):
                echoed += sock.recv(65536)
    assert echoed == wire


def test_a_tls_reply_survives_a_client_that_sent_too_much(cli_server, pki, host):
    """The orderly close under TLS: close_notify, then the same shutdown-and-drain, so a
    request followed by bytes nobody asked for still gets its whole answer."""
    server = tls_server(cli_server, pki, host)
    values = [float(i) for i in range(100_000)]  # 800 kB each way: still in flight at the close
    wire = app.make_request("stats", ",".join(map(repr, values)), dtype="float64")
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection((host, server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as sock:
            sock.sendall(wire + b"x" * 65536)
            time.sleep(0.3)  # not readiness: this is the slow reader being simulated
            decoder = MessageDecoder()
            while (reply := decoder.next_message()) is NEED_DATA:
                decoder.receive_data(sock.recv(65536))
    assert app.describe_response(reply)["values"] == values


def test_a_python_without_ssl_runs_every_plain_program(tmp_path):
    """docs/tls.md: only socketlab.tls imports ssl, and only for TLS (the guest before it had
    OpenSSL; a minimal build). ssl made unimportable, a plain server and client still talk."""
    code = (
        "import sys, threading; sys.modules['ssl'] = None\n"
        "from socketlab import app, cli, client, demo\n"
        "from socketlab.handlers import AppHandler\n"
        "from socketlab.server import Server, create_listener\n"
        "server = Server(create_listener('127.0.0.1', 0), AppHandler)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "reply = client.request('127.0.0.1', server.address[1], app.make_request('search', 'ring'))\n"
        "print(app.describe_response(reply.response))\n"
        "server.shutdown()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, app.SEARCH["ring"] + "\n"), result.stderr
    # ...and asking for TLS there is one clear line, not a traceback.
    asked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['ssl'] = None; "
                            "from socketlab.cli import main; sys.exit(main(sys.argv[1:]))",
                            "app-server", "127.0.0.1", "0", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
                           capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert (asked.returncode, asked.stderr) == (1, "socketlab: TLS: this Python has no ssl module\n")
