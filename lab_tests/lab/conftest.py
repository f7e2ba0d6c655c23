"""Fixtures of the lab tier: the server's address by family, the router's impairments
(services/router/impair.sh)."""

import json

import pytest

from lab_tests.topology import SERVER_V4, SERVER_V6

SERVER = {"IPv4": SERVER_V4, "IPv6": SERVER_V6}


@pytest.fixture(params=["IPv4", "IPv6"])
def server(request):
    """The server's address, once per family."""
    return SERVER[request.param]


@pytest.fixture
def netem(lab):
    """Start the impairment; yields a callable that stops it and returns its counters. The
    NFQUEUE helper (services/router/netem.py) on any kernel: the counters are its own."""
    started = lab.root("router", "env", "IMPAIR_BACKEND=nfqueue", "/opt/socketlab/router/impair.sh", "start",
                       "--delay", "20", "--jitter", "10", "--reorder", "10", "--loss", "3", "--seed", "7")
    assert started.returncode == 0, str(started)
    counters = {}

    def stop():
        if not counters:
            stopped = lab.root("router", "/opt/socketlab/router/impair.sh", "stop")
            assert stopped.returncode == 0, str(stopped)
            counters.update(json.loads(stopped.stdout.strip().splitlines()[-1]))
        return counters

    yield stop
    stop()


@pytest.fixture
def small_mtu(lab):
    """Both router interfaces at 1280 bytes; the hosts learn it anew (path-MTU discovery)."""
    forget_path_mtu(lab)  # learned before, by another test or a kept lab's last session
    result = lab.root("router", "/opt/socketlab/router/impair.sh", "mtu", "1280")
    assert result.returncode == 0, str(result)
    yield 1280
    lab.root("router", "/opt/socketlab/router/impair.sh", "mtu", "1500")
    forget_path_mtu(lab)


def forget_path_mtu(lab) -> None:
    for service in ("client", "server"):
        forgotten = lab.root(service, "sh", "-c", FORGET_PATH_MTU)
        assert forgotten.returncode == 0 and " mtu " not in forgotten.stdout, str(forgotten)


#: Forget the path MTU a host learned, so the next test learns it again from the router's ICMP
#: errors. IPv6: flush the cached routes. IPv4 keeps it as an exception of the next hop of the
#: routes via the router, and `ip route flush cache` cannot drop it in a container (it writes
#: /proc/sys, read-only here, says so and exits 0): those routes are replaced by copies with a
#: metric, then by the originals, so that next hop goes, its exceptions with it. Prints the
#: path MTUs still known: none.
FORGET_PATH_MTU = """set -e
ip -6 route flush cache
ip -4 route show | grep " via $LAB_ROUTER_V4 " | while read -r net rest; do
    ip -4 route replace "$net" $rest mtu 1500
done
ip -4 route show | grep " via $LAB_ROUTER_V4 " | while read -r net rest; do
    ip -4 route replace "$net" via "$LAB_ROUTER_V4"
done
ip -4 route show cache
ip -6 route show cache
"""
