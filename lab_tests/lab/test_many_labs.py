"""Many labs on one host (issue 18, docs/scale.md): a second instance beside the session's.

The session's lab is instance ``topology.instance()`` (SOCKETLAB_LAB, unset: 0); this module
brings up another one with plain Compose (``SOCKETLAB_LAB=N docker compose up -d --wait``, the
guest included), and checks that:
- each lab's demos are right against its own server (the second's guest too);
- no host of one lab reaches any address of the other, in either family (every host of each
  lab has no default route: Docker's bridges are isolated in IPv4 only, and its gateway, this
  host, would forward IPv6 between them); the negative control puts the default route back
  in one host and sees its packets leave the lab;
- taking the second lab down leaves the session's untouched.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest

from lab_tests import topology
from lab_tests.harness import REPO



def _free_instance() -> int:
    """The first instance other than the session's with nothing running: a lab somebody else
    has up (make test on lab 1 while lab 2 runs) is left alone."""
    for n in topology.INSTANCES:
        busy = subprocess.run(["docker", "ps", "-q", "--filter",
                               f"label=com.docker.compose.project={topology.project(n)}"],
                              capture_output=True, text=True, check=False).stdout.strip()
        if n and n != topology.instance() and not busy:
            return n
    raise RuntimeError("every lab instance is in use")


#: Deadline for the second lab's `up` (warm: ~20 s beside the first; a build is the session's).
UP_DEADLINE = 300
#: Deadline for its guest's demo, after the guest is ready (~5 s alone, more beside a busy lab).
GUEST_DEMO_DEADLINE = 180


def compose(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOCKETLAB_LAB": str(n) if n else ""}
    return subprocess.run(["docker", "compose", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def addresses(n: int) -> dict[str, str]:
    """Every address of lab ``n`` a host of another lab could aim at: each service's, both
    families, and the guest's."""
    lab = topology.lab_config(n)
    found = {}
    for service, spec in lab["services"].items():
        for network, where in (spec.get("networks") or {}).items():
            for key in ("ipv4_address", "ipv6_address"):
                found[f"{service} {network} {key[:4]}"] = where[key]
    env = lab["services"]["client-ppc"]["environment"]
    for key in ("SOCKETLAB_GUEST_V4", "SOCKETLAB_GUEST_V6"):
        found[f"guest {key[-2:]}"] = env[key].split("/")[0]
    return found


def probe(n: int, service: str, host: str, port: int = topology.APP_PORT, timeout: float = 2) -> dict:
    out = compose(n, "exec", "-T", service, "socketlab", "probe", host, str(port), "--timeout", str(timeout))
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def other(lab) -> int:
    """Another instance than the session's, free."""
    return _free_instance()


@pytest.fixture(scope="module")
def second(other):
    """Lab ``other``, up beside the session's for this module, then down."""
    out = compose(other, "up", "-d", "--wait", timeout=UP_DEADLINE)
    assert out.returncode == 0, f"lab {other} did not come up:\n{out.stderr}"
    try:
        yield other
    finally:
        compose(other, "down", "--remove-orphans", timeout=120)


def test_the_second_lab_has_its_own_project_and_subnets(lab, second):
    mine, theirs = topology.lab_config(topology.instance()), topology.lab_config(second)
    ps = compose(second, "ps", "--format", "json").stdout
    assert f"{topology.project(second)}-server-1" in ps
    ours = {ipaddress.ip_network(c["subnet"]) for net in mine["networks"].values() for c in net["ipam"]["config"]}
    other = {ipaddress.ip_network(c["subnet"]) for net in theirs["networks"].values() for c in net["ipam"]["config"]}
    assert len(ours) == len(other) == 4
    assert not any(a.overlaps(b) for a in ours for b in other)


def test_each_labs_demos_are_right_against_its_own_server(lab, second):
    assert lab.read_file("client", "/tmp/demo.exit").strip() == b"0"
    server = addresses(second)["server servernet ipv4"]
    deadline = time.monotonic() + GUEST_DEMO_DEADLINE  # `up --wait` returns when the guest is ready
    while "demo in the guest done" not in (guest := compose(second, "logs", "--no-color", "client-ppc").stdout):
        assert time.monotonic() < deadline, guest[-3000:]
        time.sleep(1)  # polling the log, with a deadline
    assert "demo in the guest done (exit status 0)" in guest
    # plain and TLS, from the client and from the guest (each service's log read on its own:
    # two services' lines can interleave), each against its own lab's server
    for log in (compose(second, "logs", "--no-color", "client").stdout, guest):
        demos = [line for line in log.splitlines() if "demo: all 15 answers correct" in line]
        assert len(demos) == 2, log[-3000:]
        assert all(f"(peer {server}," in line for line in demos), demos


@pytest.mark.parametrize("direction", ["from-the-second", "from-the-sessions"])
def test_no_host_of_one_lab_reaches_any_address_of_the_other(lab, second, direction):
    source, target = (second, topology.instance()) if direction == "from-the-second" else (topology.instance(), second)
    reached = {}
    for name, address in addresses(target).items():
        for service in ("client", "server"):
            answer = probe(source, service, address)
            if answer["outcome"] != "network-unreachable":
                reached[f"{service} -> {name} {address}"] = answer["outcome"]
    assert reached == {}, reached
    # ... while each reaches its own server, in both families (the probes can connect)
    own = topology.lab_config(source)["services"]["server"]["networks"]["servernet"]
    for key in ("ipv4_address", "ipv6_address"):
        assert probe(source, "client", own[key])["outcome"] == "connected", own[key]


def test_the_guest_of_the_second_lab_reaches_nothing_of_the_sessions(lab, second):
    target = addresses(topology.instance())
    for name in ("server servernet ipv4", "server servernet ipv6"):
        out = compose(second, "exec", "-T", "client-ppc", "guest-exec", "--timeout", "60", "python3", "-m",
                      "socketlab", "probe", target[name], str(topology.APP_PORT), "--timeout", "2", timeout=90)
        assert json.loads(out.stdout)["outcome"] == "network-unreachable", out.stdout


def test_negative_control_a_default_route_would_lead_out_of_the_lab(lab, second):
    """Docker's gateway put back as one host's default route: its packets for the session's
    server leave the lab (whatever then becomes of them), so the isolation above is the removed
    default route's doing, and the test would see it gone."""
    gateways = json.loads(subprocess.run(
        ["docker", "network", "inspect", f"socketlab-{second}_clientnet"], capture_output=True, text=True,
        check=True).stdout)[0]["IPAM"]["Config"]
    # Docker's gateway (its bridge on this host): the subnet's first address unless it says otherwise
    gateway6 = next(c.get("Gateway") or str(ipaddress.ip_network(c["Subnet"])[1])
                    for c in gateways if ":" in c.get("Subnet", ""))
    target = addresses(topology.instance())["server servernet ipv6"]
    add = compose(second, "exec", "-T", "-u", "root", "client", "ip", "-6", "route", "add", "default",
                  "via", gateway6)
    assert add.returncode == 0, add.stderr
    try:
        assert probe(second, "client", target)["outcome"] != "network-unreachable"
    finally:
        compose(second, "exec", "-T", "-u", "root", "client", "ip", "-6", "route", "del", "default")
    assert probe(second, "client", target)["outcome"] == "network-unreachable"


def test_taking_the_second_lab_down_leaves_the_sessions_untouched(lab, second):
    before = {service: lab.compose.get_container(service).ID for service in ("router", "server", "client")}
    out = compose(second, "down", "--remove-orphans")
    assert out.returncode == 0, out.stderr
    assert compose(second, "ps", "-q").stdout.strip() == ""
    assert {service: lab.compose.get_container(service).ID for service in before} == before
    assert all(lab.health(service) == "healthy" for service in before)
    answer = lab.probe("client", topology.SERVER_V6, topology.APP_PORT)
    assert answer["outcome"] == "connected", answer


def test_a_lab_whose_subnet_is_taken_is_explained_in_one_line(lab):
    """Another Docker network on a free lab's servernet: Compose fails with Docker's "Pool
    overlaps", and scripts/lab-instance.py (make up, the test session) says which lab, which of
    its networks and subnet, and which Docker network holds it."""
    other = _free_instance()  # not the module's second lab, if it is still up
    subnet = topology.lab_config(other)["networks"]["servernet"]["ipam"]["config"][0]["subnet"]
    squatter = f"socketlab-test-squatter-{other}"
    subprocess.run(["docker", "network", "create", "--subnet", subnet, squatter], capture_output=True,
                   check=True)
    try:
        up = compose(other, "up", "-d", "--wait", "router", timeout=UP_DEADLINE)
        assert up.returncode != 0 and "overlaps" in up.stderr, up.stderr
        explained = subprocess.run([str(REPO / "scripts" / "lab-instance.py"), "clash"], capture_output=True,
                                   text=True, env={**os.environ, "SOCKETLAB_LAB": str(other)}, check=False)
        assert explained.returncode == 1 and len(explained.stderr.splitlines()) == 1, explained
        assert f"lab {other}'s servernet (IPv4) {subnet} overlaps {subnet} of the Docker network " \
               f"'{squatter}'" in explained.stderr, explained.stderr
    finally:
        compose(other, "down", "--remove-orphans")
        subprocess.run(["docker", "network", "rm", squatter], capture_output=True, check=False)
    # the negative control: with the subnet free again, nothing to explain
    free = subprocess.run([str(REPO / "scripts" / "lab-instance.py"), "clash"], capture_output=True, text=True,
                          env={**os.environ, "SOCKETLAB_LAB": str(other)}, check=False)
    assert (free.returncode, free.stderr) == (0, ""), free
