"""The lab's topology, read from its one source, compose.yaml: networks, hosts, addresses.

Tests and the docs generator (lab_tests/docs.py, ``make docs``) ask this module by name
instead of writing addresses again::

    >>> topology.address("server", "servernet", 4)
    '198.18.1.10'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from socketlab.errors import Outcome

COMPOSE = Path(__file__).resolve().parent.parent / "compose.yaml"


@dataclass(frozen=True)
class Network:
    name: str
    subnets: tuple[str, ...]  # IPv4 first, then IPv6

    def subnet(self, version: int) -> str:
        return next(s for s in self.subnets if ipaddress.ip_network(s).version == version)


@cache
def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def networks() -> list[Network]:
    return [Network(name, tuple(entry["subnet"] for entry in spec["ipam"]["config"]))
            for name, spec in _compose()["networks"].items()]


def hosts(network: str) -> list[str]:
    """The services attached to ``network``, in compose.yaml's order."""
    return [name for name, spec in _compose()["services"].items()
            if network in (spec.get("networks") or {})]


def address(service: str, network: str, version: int) -> str:
    spec = _compose()["services"][service]["networks"][network]
    return spec["ipv4_address" if version == 4 else "ipv6_address"]


def environment(service: str) -> dict[str, str]:
    """A service's environment as compose.yaml writes it (``${...}`` not interpolated)."""
    return _compose()["services"][service]["environment"]


def router_environment() -> dict[str, str]:
    return environment("router")


def guestnet() -> Network:
    """The PowerPC guest's routed network: not a Compose network (it lives behind client-ppc's
    tap0), declared once, in the router's environment."""
    env = router_environment()
    return Network("guestnet", (env["GUESTNET_V4"], env["GUESTNET_V6"]))


def _short(service: str, network: str) -> str:
    v4, v6 = address(service, network, 4), address(service, network, 6)
    return f"{service} .{v4.rsplit('.', 1)[1]} / ::{v6.rsplit(':', 1)[1]}"


def network_table() -> str:
    """docs/address-plan.md's table of networks and who is on them."""
    rows = ["| network | IPv4 | IPv6 | who |", "| --- | --- | --- | --- |"]
    for net in networks():
        who = ", ".join(_short(service, net.name) for service in hosts(net.name))
        rows.append(f"| {net.name} | {net.subnet(4)} | {net.subnet(6)} | {who} |")
    guest = guestnet()
    rows.append(f"| {guest.name} (routed, inside client-ppc) | {guest.subnet(4)} | {guest.subnet(6)} "
                f"| client-ppc's tap0 .1 / ::1, the PowerPC guest .2 / ::2 |")
    return "\n".join(rows) + "\n"


# -- the server's ports (services/hosts/server.sh) and the firewall (services/router/nftables.conf)

SERVICES = COMPOSE.parent / "services"


@dataclass(frozen=True)
class Listener:
    port: int
    program: str
    host: str  # as the program is given it: "::", "127.0.0.1", "" ...
    options: tuple[str, ...]


def server_ports() -> list[Listener]:
    """The server host's listeners: the ``serve PORT PROGRAM HOST [OPTION...]`` lines of
    services/hosts/server.sh, the one place they are started."""
    import shlex

    listeners = []
    for line in (SERVICES / "hosts" / "server.sh").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) >= 4 and words[0] == "serve" and words[1].isdigit():
            listeners.append(Listener(int(words[1]), words[2], words[3], tuple(words[4:])))
    return listeners


@dataclass(frozen=True)
class Rule:
    first: int
    last: int
    verdict: str  # as written in the ruleset: "accept", "reject with tcp reset", "drop", ...
    outcome: Outcome  # what a Python client on the other side sees


#: nftables verdict -> the outcome a Python client sees through the router.
VERDICTS = {
    "accept": Outcome.CONNECTED,
    "reject with tcp reset": Outcome.REFUSED,
    "drop": Outcome.TIMEOUT,
    "reject with icmpx type host-unreachable": Outcome.UNREACHABLE,
}


def firewall() -> list[Rule]:
    """The router's ``tcp dport`` rules, read from services/router/nftables.conf, in order."""
    import re

    rules = []
    pattern = re.compile(r"^\s*tcp dport (\d+)(?:-(\d+))? (.+?)\s*$")
    for line in (SERVICES / "router" / "nftables.conf").read_text().splitlines():
        match = pattern.match(line)
        if match:
            first = int(match[1])
            verdict = match[3]
            rules.append(Rule(first, int(match[2] or first), verdict, VERDICTS[verdict]))
    return rules


def firewall_table() -> str:
    """docs/address-plan.md's firewall table."""
    rows = ["| traffic crossing the router | verdict | what Python sees |", "| --- | --- | --- |"]
    seen = {"connected": "connected", "refused": "`ConnectionRefusedError` (ECONNREFUSED), at once",
            "timeout": "`TimeoutError` after the client's timeout",
            "unreachable": "`OSError` EHOSTUNREACH (\"No route to host\")"}
    for rule in firewall():
        ports = f"{rule.first}-{rule.last}" if rule.last != rule.first else f"{rule.first}"
        rows.append(f"| TCP to {ports} | {rule.verdict} | {seen[rule.outcome]} |")
    rows.append("| ICMP / ICMPv6 echo and errors, established/related | accept | |")
    rows.append("| anything else | drop (the stated default) | `TimeoutError` |")
    return "\n".join(rows) + "\n"


#: What each host is for, in the picture.
ROLES = {
    "peer": "same network as the server, no router",
    "client": "little-endian, runs the demo",
    "client-ppc": "QEMU: boots the guest, its gateway",
    "client-ppc-user": "ppc64 CPython under qemu-user: the fast tier",
}


def guest_ports() -> tuple[int, int]:
    """The PowerPC guest's app-server ports, plain and TLS: its agent's (qemu/guest/agent.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("agent", COMPOSE.parent / "qemu" / "guest" / "agent.py")
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    return agent.APP_PORT, agent.TLS_PORT


def picture() -> str:
    """The topology as a Mermaid flowchart (GitHub renders it), from compose.yaml, server.sh
    and the ruleset."""
    lines = ["```mermaid", "flowchart TB"]
    for net in [*networks(), guestnet()]:
        lines.append(f'  subgraph {net.name}["{net.name} {net.subnet(4)} · {net.subnet(6)}"]')
        if net.name == "guestnet":
            app, tls = guest_ports()
            lines.append(f'    guest["PowerPC guest .2 / ::2<br/>ppc64 big-endian, Linux 6.1, CPython 3.11<br/>'
                         f'{app} app-server ::<br/>{tls} app-server :: over TLS (/pki/guest.pem)"]')
        for service in hosts(net.name):
            if service == "router":
                continue
            label = _short(service, net.name)
            if service in ROLES:
                label += f"<br/>{ROLES[service]}"
            if service == "server":
                label += "<br/>" + "<br/>".join(
                    f"{lst.port} {lst.program} {lst.host or '&quot;&quot;'} {' '.join(lst.options)}".rstrip()
                    for lst in server_ports())
            lines.append(f'    {service.replace("-", "_")}["{label}"]')
        lines.append("  end")
    rules = "<br/>".join(
        f"{r.first}{'-' + str(r.last) if r.last != r.first else ''} {r.verdict} → {r.outcome}"
        for r in firewall())
    lines.append(f'  router["router .254 / ::fe<br/>nftables, no NAT<br/>{rules}<br/>anything else: drop"]')
    lines.append("  servernet --- router --- clientnet")
    lines.append("  client_ppc -- tap0 --- guestnet")
    lines.append("```")
    return "\n".join(lines) + "\n"


# -- the addresses tests use, by name ------------------------------------------------------------

SERVER_V4, SERVER_V6 = address("server", "servernet", 4), address("server", "servernet", 6)
PEER_V4, PEER_V6 = address("peer", "servernet", 4), address("peer", "servernet", 6)
CLIENT_V4, CLIENT_V6 = address("client", "clientnet", 4), address("client", "clientnet", 6)
USER_V4, USER_V6 = address("client-ppc-user", "clientnet", 4), address("client-ppc-user", "clientnet", 6)
#: The PowerPC guest: host 2 of guestnet (client-ppc's tap0 is host 1, its gateway).
GUEST_V4 = str(ipaddress.ip_network(guestnet().subnet(4))[2])
GUEST_V6 = str(ipaddress.ip_network(guestnet().subnet(6))[2])


def port_of(program: str, *options: str, host: str = "::") -> int:
    """The port of the server's listener running ``program`` on ``host`` (every interface,
    "::", unless given) with exactly ``options``: ``port_of("app-server")`` is the guide's app
    server."""
    return next(lst.port for lst in server_ports()
                if (lst.program, lst.host, lst.options) == (program, host, options))


#: The guide's app server, and the same with the native-order (naive) array decoder.
APP_PORT = port_of("app-server")
NAIVE_PORT = port_of("app-server", "--array-decoder", "naive")
#: The multi-connection (echo) server; the echo server on "" (every IPv4 interface).
MULTICONN_PORT = port_of("multiconn-server")
ECHO_ANY_PORT = port_of("echo-server", host="")
#: The app server over TLS (docs/tls.md).
TLS_PORT = next(lst.port for lst in server_ports() if "--tls-cert" in lst.options)


def rule_port(outcome: Outcome) -> int:
    """The port of the router's one-port rule that gives ``outcome``."""
    return next(rule.first for rule in firewall() if rule.outcome == outcome and rule.first == rule.last)


def conformance_ports() -> range:
    """The router's accepted range that none of the lab's servers listens in: the conformance
    suite's own (docs/conformance.md)."""
    listening = {lst.port for lst in server_ports()}
    free = [range(r.first, r.last + 1) for r in firewall()
            if r.verdict == "accept" and not listening & set(range(r.first, r.last + 1))]
    assert len(free) == 1, f"one accepted range without the lab's servers, not {free}"
    return free[0]


#: Every port a rule of the router names: in a connection, the end holding one is the server's.
RULED_PORTS = frozenset(p for rule in firewall() for p in range(rule.first, rule.last + 1))
#: The router's one-port rules: a reset, silence, an ICMP error.
REFUSED_PORT, DROPPED_PORT, UNREACHABLE_PORT = (rule_port(o) for o in (Outcome.REFUSED, Outcome.TIMEOUT,
                                                                        Outcome.UNREACHABLE))


def spare_ports() -> list[int]:
    """Ports the router accepts where no server of the lab listens, outside the conformance
    suite's range: for a test's own short-lived server (test_troubleshooting, test_hostnames)."""
    listening = {lst.port for lst in server_ports()}
    return [p for rule in firewall() if rule.verdict == "accept" for p in range(rule.first, rule.last + 1)
            if p not in listening and p not in conformance_ports()]
