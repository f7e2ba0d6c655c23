#!/usr/bin/env python3
"""The lab instance SOCKETLAB_LAB names (docs/scale.md), for make and the test harness.

    scripts/lab-instance.py check [VALUE]
                                      nothing if SOCKETLAB_LAB (or VALUE: make's) names a
                                      lab (unset or empty: lab 0); else one line and exit 2
    scripts/lab-instance.py clash     one line naming a subnet of the instance that another
                                      Docker network holds (Docker's "Pool overlaps",
                                      explained), exit 1; nothing and 0 if none

The labs there are: the labs/N/lab.env files (`make docs` writes them from
lab_tests/topology.py). Standard library only: it runs before the test environment exists.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

LABS = Path(__file__).resolve().parent.parent / "labs"


def instances() -> list[int]:
    return sorted(int(p.parent.name) for p in LABS.glob("*/lab.env") if p.parent.name.isdecimal())


def instance(value: str | None = None) -> int:
    value = os.environ.get("SOCKETLAB_LAB", "") if value is None else value
    if value == "":
        return 0
    known = instances() or [0]
    if not (value.isdecimal() and value == str(int(value)) and int(value) in known):
        print(f"socketlab: SOCKETLAB_LAB={value!r} is not a lab: give a number from {known[0]} "
              f"to {known[-1]} (unset: lab 0)", file=sys.stderr)
        sys.exit(2)
    return int(value)


def subnets(n: int) -> dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The instance's Docker networks' subnets, from its file (guestnet is not Docker's)."""
    env = dict(line.split("=", 1) for line in (LABS / str(n) / "lab.env").read_text().splitlines()
               if line and not line.startswith("#"))
    out = {}
    for name in ("servernet", "clientnet"):
        out[f"{name} (IPv4)"] = ipaddress.ip_network(f"{env[name.upper() + '4']}.0/24")
        out[f"{name} (IPv6)"] = ipaddress.ip_network(f"{env[name.upper() + '6']}::/64")
    return out


def project(n: int) -> str:
    return f"socketlab-{n}" if os.environ.get("SOCKETLAB_LAB") else "socketlab"


def clashes(n: int) -> list[str]:
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True,
                         check=True).stdout.split()
    networks = json.loads(subprocess.run(["docker", "network", "inspect", *ids], capture_output=True,
                                         text=True, check=True).stdout) if ids else []
    lines = []
    for net in networks:
        if net.get("Labels", {}).get("com.docker.compose.project") == project(n):
            continue  # the instance's own, from an earlier up
        for config in (net.get("IPAM") or {}).get("Config") or []:
            try:
                theirs = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            for name, ours in subnets(n).items():
                if ours.version == theirs.version and ours.overlaps(theirs):
                    lines.append(f"socketlab: lab {n}'s {name} {ours} overlaps {theirs} of the Docker "
                                 f"network {net['Name']!r}: remove that network, or choose another "
                                 f"SOCKETLAB_LAB (docs/scale.md)")
    return lines


def main(argv: list[str]) -> int:
    if not (argv[:1] == ["check"] and len(argv) <= 2 or argv == ["clash"]):
        sys.exit(__doc__.split("\n\n")[1])
    n = instance(*argv[1:])
    if argv == ["clash"]:
        found = clashes(n)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            print(found[0] + more, file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
