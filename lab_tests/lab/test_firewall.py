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

from lab_tests import guide, packets, topology
from lab_tests.probing import SEEN, check, probe_port, probe_timeout, seen
from socketlab.errors import Outcome

TIMEOUT = 1.0
RULES = topology.firewall()
LISTENING = {listener.port for listener in topology.server_ports()}
ACCEPTED = [rule for rule in RULES if rule.outcome == Outcome.CONNECTED]
CLIENT = {4: topology.CLIENT_V4, 6: topology.CLIENT_V6}
ROUTER = {version: topology.address("router", "clientnet", version) for version in (4, 6)}
#: nft's `reject with icmpx type host-unreachable`, as each family puts it on the wire.
HOST_UNREACHABLE = {4: (packets.ICMP_UNREACH, packets.ICMP_HOST_UNREACH),
                    6: (packets.ICMP6_UNREACH, packets.ICMP6_ADDR_UNREACH)}


def check_packets(lab, capture, outcome: Outcome, server: str, port: int, *, by_router: bool = True) -> None:
    """The probe's packets say ``outcome``: what the router told the client (on the client's
    side of it), and whether it forwarded the SYN. ``by_router``: a refusal is the router's own
    reset, not the server's."""
    version = 6 if ":" in server else 4
    seen = [p for p in packets.connection(packets.read(lab.read_file("router", capture.pcap())), port)
            if p.version == version]
    listing = "\n".join(map(str, seen))
    client_side = packets.interface_of(seen, CLIENT[version])
    sent = [p for p in seen if p.ifindex == client_side and not p.outgoing]  # by the client
    told = [p for p in seen if p.ifindex == client_side and p.outgoing]  # to the client
    forwarded = [p for p in seen if p.ifindex != client_side and p.outgoing]  # to the server
    syns = [p for p in sent if p.flags == "S"]
    assert syns and all((p.src, p.dst) == (CLIENT[version], server) for p in sent), listing
    if outcome == Outcome.CONNECTED:
        assert any(p.flags == "S." and p.src == server for p in told), listing
        assert forwarded, listing
    elif outcome == Outcome.REFUSED:
        [reset] = told
        assert reset.flags == "R." and reset.src == server, listing  # RST, ACK: as if from the server
        assert reset.tcp.ack == (syns[0].tcp.seq + 1) % 2**32, listing
        assert bool(forwarded) != by_router, listing  # the router's reset: the SYN never went on
    elif outcome == Outcome.TIMEOUT:
        # Silence: the same SYN, sent again, never forwarded, never answered.
        assert told == [] and forwarded == [], listing
        assert sent == syns and len({p.tcp.seq for p in syns}) == 1, listing
    else:
        assert outcome == Outcome.UNREACHABLE
        assert forwarded == [] and told, listing
        assert all(p.src == ROUTER[version] for p in told), listing
        assert packets.unreachable(told) == [HOST_UNREACHABLE[version]] * len(told), listing
        assert {packets.quoted(p) for p in told} == {(6, syns[0].tcp.sport, port)}, listing


def test_ruleset_states_the_default(lab):
    result = lab.root("router", "nft", "list", "chain", "inet", "socketlab", "forward")
    assert result.returncode == 0, str(result)
    assert "policy drop;" in result.stdout


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.first}-{rule.outcome}")
def test_every_rule_of_the_ruleset_as_python_sees_it(lab, capture, server, rule):
    port, outcome = probe_port(rule), seen(rule)
    timeout = probe_timeout(outcome, TIMEOUT)
    check(lab.probe("client", server, port, timeout=timeout), outcome, server, port, timeout)
    check_packets(lab, capture, outcome, server, port, by_router=outcome == rule.outcome)


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
    assert answer["result"] == guide.MORPHEUS
    assert answer["peer"] == [server, topology.APP_PORT]


@pytest.mark.parametrize("rule", ACCEPTED, ids=lambda rule: f"{rule.first}-{rule.last}")
def test_allowed_port_without_listener_is_refused_by_the_server(lab, capture, server, rule):
    port = next(p for p in range(rule.first, rule.last + 1) if p not in LISTENING)
    check(lab.probe("client", server, port, timeout=TIMEOUT), Outcome.REFUSED, server, port, TIMEOUT)
    # The same reset as the router's, to Python; on the wire, the server's, forwarded.
    check_packets(lab, capture, Outcome.REFUSED, server, port, by_router=False)


def unlisted_ports() -> list[int]:
    """Ports no rule names, near the lab's and far from them: the stated default applies."""
    named = [(rule.first, rule.last) for rule in RULES]
    candidates = [max(last for _, last in named) + 1, 8080]
    return [p for p in candidates if not any(first <= p <= last for first, last in named)]


@pytest.mark.parametrize("port", unlisted_ports())
def test_unlisted_port_falls_to_the_default_drop(lab, capture, server, port):
    check(lab.probe("client", server, port, timeout=TIMEOUT), Outcome.TIMEOUT, server, port, TIMEOUT)
    check_packets(lab, capture, Outcome.TIMEOUT, server, port)


@pytest.mark.parametrize("port", [probe_port(r) for r in RULES if r.outcome != Outcome.CONNECTED]
                         + unlisted_ports()[:1])
def test_without_the_router_the_server_itself_refuses(lab, server, port):
    """Negative control: same ports from servernet's peer: no firewall, the server's kernel answers."""
    check(lab.probe("peer", server, port, timeout=TIMEOUT), Outcome.REFUSED, server, port, TIMEOUT)
