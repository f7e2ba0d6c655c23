"""The router's policy (services/router/nftables.conf) as a Python client on clientnet sees it.

Every rule of the ruleset is read from the file itself (``topology.firewall()``) and probed
from inside the client container, over IPv4 and IPv6: a rule added there is tested here. What
each verdict must look like to Python (the exception, the errno, how soon) is
``lab_tests.probing.SEEN``. The same ports probed from `peer` (same network as the server, no
router in the path) show the server's own answer: proof that the router, not the server, makes
the difference.
"""

import json

import pytest

from lab_tests import topology
from lab_tests.probing import SEEN, check, probe_port, probe_timeout
from socketlab.errors import Outcome

SERVER = {"IPv4": topology.address("server", "servernet", 4),
          "IPv6": topology.address("server", "servernet", 6)}
TIMEOUT = 1.0
RULES = topology.firewall()
LISTENING = {listener.port for listener in topology.server_ports()}
ACCEPTED = [rule for rule in RULES if rule.outcome == Outcome.CONNECTED]


@pytest.fixture(params=["IPv4", "IPv6"])
def server(request):
    return SERVER[request.param]


def test_ruleset_states_the_default(lab):
    result = lab.root("router", "nft", "list", "chain", "inet", "socketlab", "forward")
    assert result.returncode == 0, str(result)
    assert "policy drop;" in result.stdout


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.first}-{rule.outcome}")
def test_every_rule_of_the_ruleset_as_python_sees_it(lab, server, rule):
    port = probe_port(rule)
    timeout = probe_timeout(rule.outcome, TIMEOUT)
    check(lab.probe("client", server, port, timeout=timeout), rule.outcome, server, port, timeout)


@pytest.mark.parametrize("rule", [r for r in RULES if r.outcome != Outcome.CONNECTED],
                         ids=lambda rule: f"{rule.first}-{rule.outcome}")
def test_the_client_says_it_in_one_line(lab, server, rule):
    timeout = probe_timeout(rule.outcome, TIMEOUT)
    result = lab.run("client", "socketlab", "app-client", server, str(probe_port(rule)), "search", "x",
                     "--timeout", f"{timeout:g}")
    _, errno_name, _, _ = SEEN[rule.outcome]
    assert result.returncode == 1, str(result)
    [line] = result.stderr.splitlines()  # stdout has the guide's "Starting connection to ..."
    assert line.startswith("socketlab: ") and f"({errno_name})" in line, str(result)


def test_allowed_port_gives_the_exact_answer(lab, server):
    result = lab.run("client", "socketlab", "app-client", server, str(topology.APP_PORT), "search",
                     "morpheus", "--json")
    assert result.returncode == 0, str(result)
    answer = json.loads(result.stdout)
    assert answer["result"] == "Follow the white rabbit. \U0001f430"
    assert answer["peer"] == [server, topology.APP_PORT]


@pytest.mark.parametrize("rule", ACCEPTED, ids=lambda rule: f"{rule.first}-{rule.last}")
def test_allowed_port_without_listener_is_refused_by_the_server(lab, server, rule):
    port = next(p for p in range(rule.first, rule.last + 1) if p not in LISTENING)
    check(lab.probe("client", server, port, timeout=TIMEOUT), Outcome.REFUSED, server, port, TIMEOUT)


def unlisted_ports() -> list[int]:
    """Ports no rule names, near the lab's and far from them: the stated default applies."""
    named = [(rule.first, rule.last) for rule in RULES]
    candidates = [max(last for _, last in named) + 1, 8080]
    return [p for p in candidates if not any(first <= p <= last for first, last in named)]


@pytest.mark.parametrize("port", unlisted_ports())
def test_unlisted_port_falls_to_the_default_drop(lab, server, port):
    check(lab.probe("client", server, port, timeout=TIMEOUT), Outcome.TIMEOUT, server, port, TIMEOUT)


@pytest.mark.parametrize("port", [probe_port(r) for r in RULES if r.outcome != Outcome.CONNECTED]
                         + unlisted_ports()[:1])
def test_without_the_router_the_server_itself_refuses(lab, server, port):
    """Negative control: same ports from servernet's peer: no firewall, the server's kernel answers."""
    check(lab.probe("peer", server, port, timeout=TIMEOUT), Outcome.REFUSED, server, port, TIMEOUT)
