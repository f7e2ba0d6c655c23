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


def guestnet() -> Network:
    """The PowerPC guest's routed network: not a Compose network (it lives behind client-ppc's
    tap0), declared once, in the router's environment."""
    env = _compose()["services"]["router"]["environment"]
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
