"""The router's policy (services/router/nftables.conf) as a Python client on clientnet sees it.

Every row is asserted from inside the client container, over IPv4 and IPv6. The same
ports probed from `peer` (same network as the server, no router in the path) show the
server's own answer: proof that the router, not the server, makes the difference.
"""

import json

import pytest

from lab_tests import topology

SERVER = {"IPv4": topology.address("server", "servernet", 4),
          "IPv6": topology.address("server", "servernet", 6)}
TIMEOUT = 2.0


@pytest.fixture(params=["IPv4", "IPv6"])
def server(request):
    return SERVER[request.param]


def test_allowed_port_gives_the_exact_answer(lab, server):
    result = lab.run("client", "socketlab", "app-client", server, "65432", "search", "morpheus", "--json")
    assert result.returncode == 0, str(result)
    answer = json.loads(result.stdout)
    assert answer["result"] == "Follow the white rabbit. \U0001f430"
    assert answer["peer"] == [server, 65432]


def test_allowed_port_without_listener_is_refused_by_the_server(lab, server):
    answer = lab.probe("client", server, 65438, timeout=TIMEOUT)
    assert (answer["outcome"], answer["errno"]) == ("refused", "ECONNREFUSED")


def test_65440_tcp_reset_is_connection_refused(lab, server):
    answer = lab.probe("client", server, 65440, timeout=TIMEOUT)
    assert (answer["outcome"], answer["exception"], answer["errno"]) == (
        "refused", "ConnectionRefusedError", "ECONNREFUSED")
    assert answer["elapsed_s"] < 0.5  # at once


def test_65440_app_client_says_connection_refused(lab, server):
    result = lab.run("client", "socketlab", "app-client", server, "65440", "search", "x")
    assert result.returncode == 1
    assert "connection refused (ECONNREFUSED)" in result.stderr, str(result)


def test_65441_drop_is_a_timeout_after_the_clients_timeout(lab, server):
    answer = lab.probe("client", server, 65441, timeout=TIMEOUT)
    assert (answer["outcome"], answer["exception"]) == ("timeout", "TimeoutError")
    assert TIMEOUT - 0.05 <= answer["elapsed_s"] <= TIMEOUT + 0.5


def test_65442_icmp_host_unreachable_is_ehostunreach(lab, server):
    # One SYN's ICMP error may be rate-limited by the router's kernel; the SYN sent
    # again after 1 s gets its answer. Either way it is an answer, not a timeout.
    answer = lab.probe("client", server, 65442, timeout=5.0)
    assert (answer["outcome"], answer["exception"], answer["errno"]) == (
        "unreachable", "OSError", "EHOSTUNREACH")
    assert answer["message"] == "No route to host"
    assert answer["elapsed_s"] < 4.0


def test_65442_app_client_says_no_route_to_host(lab, server):
    result = lab.run("client", "socketlab", "app-client", server, "65442", "search", "x", "--timeout", "5")
    assert result.returncode == 1
    assert "EHOSTUNREACH" in result.stderr, str(result)


@pytest.mark.parametrize("port", [65443, 8080])
def test_unlisted_port_falls_to_the_default_drop(lab, server, port):
    answer = lab.probe("client", server, port, timeout=TIMEOUT)
    assert (answer["outcome"], answer["exception"]) == ("timeout", "TimeoutError")
    assert TIMEOUT - 0.05 <= answer["elapsed_s"] <= TIMEOUT + 0.5


@pytest.mark.parametrize("port", [65440, 65441, 65442, 65443])
def test_without_the_router_the_server_itself_refuses(lab, server, port):
    """Negative control: same ports from servernet's peer: no firewall, the server's kernel answers."""
    answer = lab.probe("peer", server, port, timeout=TIMEOUT)
    assert (answer["outcome"], answer["errno"]) == ("refused", "ECONNREFUSED")


def test_ruleset_states_the_default(lab):
    result = lab.root("router", "nft", "list", "chain", "inet", "socketlab", "forward")
    assert result.returncode == 0, str(result)
    assert "policy drop;" in result.stdout


@pytest.mark.parametrize("rule", topology.firewall(), ids=lambda rule: f"{rule.first}-{rule.outcome}")
def test_every_rule_of_the_ruleset_as_python_sees_it(lab, server, rule):
    """Read from services/router/nftables.conf itself: a rule added there is tested here."""
    listening = [lst.port for lst in topology.server_ports() if rule.first <= lst.port <= rule.last]
    port = listening[0] if listening else rule.first
    # An ICMP error may be rate-limited once; the SYN sent again a second later gets it.
    answer = lab.probe("client", server, port, timeout=5.0 if rule.outcome == "unreachable" else TIMEOUT)
    assert answer["outcome"] == rule.outcome, answer
