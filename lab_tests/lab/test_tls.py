"""TLS across the lab: the app protocol over TLS on its own port, the lab's run-time CA.

The `pki` service made the CA and the server's certificate in the `pki` volume
(services/pki/make-pki.sh); the server serves TLS on TLS_PORT (services/hosts/server.sh) and
every client host ran the demo over it at start-up, trusting only the lab's CA
(lab_tests/lab/test_startup_demo.py). Here, from the
little-endian client, through the router: what was negotiated, a name the certificate does
not carry, and the handshake cut by the firewall (dropped: a timeout; reset: ECONNRESET).
Loopback has the rest of the failure table (lab_tests/loopback/test_tls.py).
"""

from __future__ import annotations

import json

from lab_tests.faults import RouterRules
from lab_tests.topology import SERVER_V4, SERVER_V6, TLS_PORT
from socketlab.errors import Outcome

CA = "/pki/ca.pem"


def tls_probe(lab, host: str, *options: str, timeout: float = 3.0) -> dict:
    return lab.parse_probe(lab.run("client", "socketlab", "probe", host, str(TLS_PORT), "--tls-ca", CA,
                                   "--timeout", f"{timeout:g}", *options, timeout=timeout + 30))


def test_tls_through_the_router_both_families(lab):
    for host in (SERVER_V4, SERVER_V6):
        answer = tls_probe(lab, host)
        assert answer["outcome"] == Outcome.CONNECTED, answer
        assert answer["tls"]["version"] == "TLSv1.3" and answer["tls"]["peer_cn"] == "server", answer
    result = lab.run("client", "socketlab", "app-client", SERVER_V4, str(TLS_PORT), "stats", "258,-2",
                     "--dtype", "int16", "--json", "--tls-ca", CA)
    assert result.returncode == 0, str(result)
    answer = json.loads(result.stdout)
    assert answer["result"]["values"] == [258, -2] and answer["tls"]["cipher"], answer


def test_a_name_the_certificate_does_not_carry(lab):
    answer = tls_probe(lab, SERVER_V4, "--tls-server-name", "guest")
    assert answer["outcome"] == Outcome.TLS_ERROR, answer
    assert answer["errno"] == "CERTIFICATE_VERIFY_FAILED" and "Hostname mismatch" in answer["message"], answer


def data_to_tls_port(lab, verdict: str) -> RouterRules:
    """Let the TCP handshake through, then apply ``verdict`` to the first data (the
    ClientHello), while in use."""
    return RouterRules(lab, f"tcp dport {TLS_PORT} tcp flags & psh == psh {verdict}")


def test_the_handshake_dropped_by_the_firewall_is_a_timeout(lab):
    with data_to_tls_port(lab, "drop"):
        answer = tls_probe(lab, SERVER_V4, timeout=1.0)
    assert answer["outcome"] == Outcome.TIMEOUT and answer["errno"] == "ETIMEDOUT", answer
    assert 1.0 - 0.05 <= answer["elapsed_s"] <= 1.5, answer
    assert tls_probe(lab, SERVER_V4)["outcome"] == Outcome.CONNECTED  # the rule gone, served again


def test_the_handshake_reset_by_the_firewall(lab):
    with data_to_tls_port(lab, "reject with tcp reset"):
        answer = tls_probe(lab, SERVER_V4)
    assert answer["outcome"] == Outcome.RESET and answer["errno"] == "ECONNRESET", answer
    assert answer["elapsed_s"] < 1.0, answer


def test_wireshark_sees_tls_records_not_the_protocol(lab, capture):
    result = lab.run("client", "socketlab", "app-client", SERVER_V4, str(TLS_PORT), "search", "morpheus",
                     "-q", "--tls-ca", CA)
    assert result.returncode == 0, str(result)
    pcap = capture.pcap()
    shown = lab.run("router", "tshark", "-n", "-r", pcap, "-Y", f"tcp.port == {TLS_PORT}", "-T", "fields",
                    "-e", "tls.handshake.type", "-e", "tls.record.content_type", "-e", "socketlab.header")
    assert shown.returncode == 0, str(shown)
    handshakes = {t for line in shown.stdout.splitlines() for t in line.split("\t")[0].split(",") if t}
    assert {"1", "2"} <= handshakes, shown.stdout  # ClientHello, ServerHello
    assert all(not line.split("\t")[2] for line in shown.stdout.splitlines()), shown.stdout  # no message seen
    # Not a byte of the request in clear on the wire (the plain port shows it: test_troubleshooting).
    assert b"morpheus" not in lab.read_file("router", pcap)
