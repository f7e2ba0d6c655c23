"""The lab node (issue 18, docs/scale.md#the-lab-node): a container with its own Docker engine
and one whole lab inside, the unit a cluster would schedule. Two nodes side by side on this
host (deploy/lab-node/node.sh), each with the lab's images loaded from this host's engine: both
labs up, at lab 0's addresses (every address in the docs holds inside), their demos right, the
guest's too, and neither node on any network (nothing between them, or to the session's lab).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from lab_tests import topology
from lab_tests.harness import REPO

NODES = ("socketlab-test-node-1", "socketlab-test-node-2")
#: Deadline for a node: its engine, loading the two images (~45 s), its lab's `up --wait`.
NODE_DEADLINE = 600
#: Deadline for a node's guest demo after its `up --wait` (the guest is ready, not done).
GUEST_DEMO_DEADLINE = 240
#: Lab 0's server: inside a node the lab keeps the documented addresses.
SERVER = topology.lab_config(0)["services"]["server"]["networks"]["servernet"]["ipv4_address"]


def node(*args: str, timeout: float = NODE_DEADLINE) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "deploy" / "lab-node" / "node.sh"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


def inside(name: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", name, *argv], capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def nodes(lab):
    built = node("build")
    assert built.returncode == 0, built.stderr
    try:
        for name in NODES:  # one after the other: each loads ~1 GB of images
            started = time.monotonic()
            up = node("up", name)
            assert up.returncode == 0, up.stderr
            print(f"\n{name}: up in {time.monotonic() - started:.1f} s")
        yield NODES
    finally:
        for name in NODES:
            node("down", name, timeout=120)


@pytest.mark.parametrize("index", [0, 1], ids=NODES)
def test_each_nodes_lab_is_up_with_its_demos_right(nodes, index):
    name = nodes[index]
    deadline = time.monotonic() + GUEST_DEMO_DEADLINE
    while "demo in the guest done" not in (guest := inside(name, "docker", "compose", "logs", "--no-color",
                                                           "client-ppc").stdout):
        assert time.monotonic() < deadline, guest[-3000:]
        time.sleep(1)  # polling the log, with a deadline
    client = inside(name, "docker", "compose", "logs", "--no-color", "client").stdout
    for log in (client, guest):  # plain and TLS, each against lab 0's server
        demos = [line for line in log.splitlines() if "demo: all 15 answers correct" in line]
        assert len(demos) == 2 and all(f"(peer {SERVER}," in line for line in demos), log[-3000:]
    assert "demo in the guest done (exit status 0)" in guest
    probe = inside(name, "docker", "compose", "exec", "-T", "client", "socketlab", "probe", SERVER,
                   str(topology.APP_PORT))
    assert json.loads(probe.stdout)["outcome"] == "connected", probe


def test_the_nodes_are_on_no_network(nodes):
    for name in nodes:
        links = inside(name, "ls", "/sys/class/net").stdout.split()
        # its own engine's bridges and their veths aside (its lab's networks, inside it), only lo
        assert [link for link in links if link != "docker0" and not link.startswith(("br-", "veth"))] == ["lo"], links
        networks = subprocess.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name],
                                  capture_output=True, text=True, check=True).stdout
        assert '"none"' in networks, networks


def test_negative_control_the_same_lab_addresses_serve_both_nodes_each_its_own(nodes):
    """Both nodes answer at lab 0's server address, each its own server: the container ids the
    server reports differ, so the probes above did not reach one shared lab."""
    hosts = {inside(name, "docker", "compose", "exec", "-T", "server", "cat", "/etc/hostname").stdout.strip()
             for name in nodes}
    ids = {inside(name, "docker", "compose", "ps", "-q", "server").stdout.strip() for name in nodes}
    assert hosts == {"server"} and len(ids) == 2 and "" not in ids, (hosts, ids)
