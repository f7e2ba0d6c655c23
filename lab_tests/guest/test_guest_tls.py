"""TLS across byte orders: the big-endian guest as TLS client and as TLS server.

Every host has the lab's CA at /pki/ca.pem, the guest too: guest-supervisor sends the CA and
the guest's certificate and key (the pki service made them) with the guest's settings, and the
guest's agent serves ``app-server :: TLS_PORT --tls-cert /pki/guest.pem`` beside the plain APP_PORT. The
demo over TLS from the guest and the fast tier ran at start-up (lab_tests/lab/test_startup_demo.py);
here the little-endian client runs it against the guest's TLS server, and the failure table is
seen from the big-endian side: the guest's OpenSSL as the client that refuses (the exception's
words in probe's JSON, the one line of app-client) and as the server that logs why.
The expired certificate and the dropped or reset handshake stay with the little-endian tiers
(lab_tests/loopback/test_tls.py, lab_tests/lab/test_tls.py): a date check and the router's
rules, the same whichever byte order the peers have.
"""

from __future__ import annotations

import re

import pytest

from lab_tests.batch import Case, app_answer, client_case, probe_case
from lab_tests.topology import APP_PORT, CLIENT_V4, GUEST_V4, GUEST_V6, SERVER_V4, TLS_PORT
from socketlab.errors import Outcome

CA = "/pki/ca.pem"
TIMEOUT = 15.0  # the guest is emulated: a handshake there is slower than on the other hosts

UNKNOWN_CA = "certificate verify failed: unable to get local issuer certificate (CERTIFICATE_VERIFY_FAILED)"


def mismatch(name: str) -> str:
    return f"certificate verify failed: Hostname mismatch, certificate is not valid for '{name}'. (CERTIFICATE_VERIFY_FAILED)"


# -- the little-endian client, the guest's TLS server ------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(Case("le", ("demo", GUEST_V4, "--port", str(TLS_PORT), "--tls-ca", CA)),
                                               id="le-client")])
def test_the_demo_over_tls_against_the_guest(results, case):
    result = results[case]
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("byteorder: little"), result.stdout
    assert "BAD" not in result.stdout
    last = result.stdout.splitlines()[-1]
    assert re.search(rf"all \d+ answers correct \(peer {re.escape(GUEST_V4)}, me {re.escape(CLIENT_V4)}, "
                     r"over TLSv1\.3 ", last), last


@pytest.mark.parametrize("case, host", [
    pytest.param(probe_case("le", host, TLS_PORT, TIMEOUT, "--tls-ca", CA), host, id=host) for host in (GUEST_V4, GUEST_V6)])
def test_the_guests_tls_server_both_families(lab, results, case, host):
    answer = lab.parse_probe(results[case])
    assert answer["outcome"] == Outcome.CONNECTED, answer
    assert answer["peer"] == [host, TLS_PORT], answer
    assert answer["tls"]["version"] == "TLSv1.3" and answer["tls"]["peer_cn"] == "guest", answer
    assert answer["tls"]["cipher"] and answer["tls"]["bits"] >= 128, answer


@pytest.mark.parametrize("case", [pytest.param(
    client_case("le", GUEST_V6, TLS_PORT, "stats", "258,-2,1e300", "--dtype", "float64", "--tls-ca", CA), id="float64")])
def test_an_array_over_tls_into_the_big_endian_server(results, case):
    answer = app_answer(results[case])
    assert answer["byteorder"] == "little" and answer["tls"]["version"] == "TLSv1.3", answer
    assert answer["result"]["values"] == [258.0, -2.0, 1e300], answer


# -- the failure table, seen from the big-endian side ------------------------------------------
# (case, outcome in probe's JSON or None for app-client, the client's words, what the guest logs)

#: The server reads the plaintext request whole (it is not a TLS record) and closes: a FIN, no
#: answer (docs/tls.md).
PLAINTEXT_ON_TLS = "protocol error: server closed the connection without a response"

FAILURES = {
    # the guest as the client: its OpenSSL refuses the little-endian server
    "guest-client-unknown-ca": (probe_case("guest", SERVER_V4, TLS_PORT, TIMEOUT, "--tls"), UNKNOWN_CA, None),
    "guest-client-name-mismatch": (probe_case("guest", SERVER_V4, TLS_PORT, TIMEOUT, "--tls-ca", CA,
                                              "--tls-server-name", "guest"), mismatch("guest"), None),
    "guest-client-plaintext-on-the-tls-port": (
        client_case("guest", SERVER_V4, TLS_PORT, "search", "morpheus", "--timeout", f"{TIMEOUT:g}"),
        PLAINTEXT_ON_TLS, None),
    # the guest as the server: the little-endian client is refused, the guest logs why
    "guest-server-unknown-ca": (probe_case("le", GUEST_V4, TLS_PORT, TIMEOUT, "--tls"), UNKNOWN_CA,
                                "TLS handshake failed: [SSL: TLSV1_ALERT_UNKNOWN_CA]"),
    "guest-server-name-mismatch": (probe_case("le", GUEST_V4, TLS_PORT, TIMEOUT, "--tls-ca", CA,
                                              "--tls-server-name", "server"), mismatch("server"),
                                   "TLS handshake failed: [SSL: SSLV3_ALERT_BAD_CERTIFICATE]"),
    "guest-server-plaintext-on-the-tls-port": (
        client_case("le", GUEST_V4, TLS_PORT, "search", "ring", "--timeout", f"{TIMEOUT:g}"),
        PLAINTEXT_ON_TLS, "TLS handshake failed: [SSL: WRONG_VERSION_NUMBER]"),
    "guest-server-tls-client-on-the-plain-port": (
        client_case("le", GUEST_V4, APP_PORT, "search", "ring", "--timeout", f"{TIMEOUT:g}", "--tls-ca", CA),
        # Debian's python3.11 ignores an unexpected EOF: SSLZeroReturnError (docs/tls.md)
        "tls/ssl connection has been closed (eof) (SSL_ERROR_ZERO_RETURN)", "request not complete within 10 s"),
}


@pytest.mark.parametrize("case, client_says, guest_logs", [
    pytest.param(*row, id=name) for name, row in FAILURES.items()])
def test_tls_failure_table_from_the_big_endian_side(lab, results, case, client_says, guest_logs):
    result = results[case]
    host, port = case.argv[1], case.argv[2]
    if case.argv[0] == "probe":
        answer = lab.parse_probe(result)
        assert answer["outcome"] == Outcome.TLS_ERROR, answer
        verify_message = client_says.removeprefix("certificate verify failed: ").removesuffix(" (CERTIFICATE_VERIFY_FAILED)")
        assert answer["errno"] == "CERTIFICATE_VERIFY_FAILED" and verify_message in answer["message"], answer
    else:  # the one line of app-client
        assert result.returncode == 1, str(result)
        where = "" if client_says.startswith("protocol error: ") else f" talking to {host} port {port}"
        assert result.stderr == f"socketlab: {client_says}{where}\n", str(result)
    if guest_logs:
        # the guest's console (client-ppc's log): that connection, from the client's own address
        lab.wait_log("client-ppc", rf"^{port} app-server \| .* WARNING \[::ffff:{re.escape(CLIENT_V4)}\]:\d+ "
                                   rf"{re.escape(guest_logs)}")


def test_the_guests_key_is_handed_over_for_its_owner_only(lab):
    """docs/tls.md: the guest's key goes from the pki volume to the guest through the agent's
    socket only, which is socketlab's alone; no copy is left in the container; in the guest it
    is root's, mode 0600."""
    sock = lab.run("client-ppc", "stat", "-c", "%U %A", "/run/socketlab-guest/agent.sock")
    assert sock.returncode == 0 and sock.stdout.split()[0] == "socketlab", str(sock)
    assert sock.stdout.split()[1][7:] in ("---", "r-x", "r--"), f"others may connect: {sock}"  # no write: no connect
    copies = lab.run("client-ppc", "grep", "-rl", "PRIVATE KEY", "/run/socketlab-guest", "/tmp")
    assert copies.returncode == 1 and copies.stdout == "", str(copies)
    mode = lab.run("client-ppc", "guest-exec", "--timeout", "60", "python3", "-c",
                   "import os; s = os.stat('/pki/guest.key'); print(s.st_uid, oct(s.st_mode & 0o777))")
    assert mode.stdout == "0 0o600\n", str(mode)
