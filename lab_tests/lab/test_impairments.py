"""The protocol across a bad path: delay, jitter, reordering, loss, then a small MTU.

The lab host's kernel has no sch_netem, so the router impairs forwarding with
services/router/netem.py (NFQUEUE, userspace) via services/router/impair.sh; the MTU is the real link
MTU of both router interfaces. Every answer must still be exact; impairments are
removed after each test.
"""

import json

import pytest


from lab_tests.topology import SERVER_V4, SERVER_V6

SERVER = {"IPv4": SERVER_V4, "IPv6": SERVER_V6}
BIG = ",".join(str(i * 7919 - 1_000_000) for i in range(3000))  # 3000 int64: 24 kB each way


@pytest.fixture(params=["IPv4", "IPv6"])
def server(request):
    return SERVER[request.param]


@pytest.fixture
def netem(lab):
    """Start the impairment; yields a callable that stops it and returns its counters."""
    started = lab.root("router", "/opt/socketlab/router/impair.sh", "start",
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
    result = lab.root("router", "/opt/socketlab/router/impair.sh", "mtu", "1280")
    assert result.returncode == 0, str(result)
    yield 1280
    lab.root("router", "/opt/socketlab/router/impair.sh", "mtu", "1500")
    for service in ("client", "server"):  # forget the learned path MTU
        lab.root(service, "ip", "route", "flush", "cache")
        lab.root(service, "ip", "-6", "route", "flush", "cache")


def check_protocol(lab, server):
    """Every request kind, exact, across the router."""
    for action, value, expected in [
        ("search", "morpheus", "Follow the white rabbit. \U0001f430"),
        ("search", "\U0001f436", "\U0001f43e Playing ball! \U0001f3d0"),
        ("double", "x", repr(b"First 10 bytes of request: doublex")),
    ]:
        result = lab.run("client", "socketlab", "app-client", server, "65432", action, value, "--json")
        assert result.returncode == 0, str(result)
        assert json.loads(result.stdout)["result"] == expected
    result = lab.run("client", "socketlab", "app-client", "--dtype", "int64", "--byteorder", "big", "--json",
                     "--", server, "65432", "stats", BIG)  # "--": the first number starts with "-"
    assert result.returncode == 0, str(result)
    numbers = [int(v) for v in BIG.split(",")]
    answer = json.loads(result.stdout)["result"]
    assert answer["values"] == numbers
    assert answer["stats"] == {"count": len(numbers), "sum": sum(numbers), "min": min(numbers), "max": max(numbers)}
    message = "0123456789abcdef" * 1000  # 16 kB through the echo server
    echo = lab.run("client", "socketlab", "echo-client", server, "65435", message)
    assert echo.returncode == 0, str(echo)
    assert f"Received b'{message}'" in echo.stdout


def check_multiconn(lab, server, connections=40):
    result = lab.run("client", "socketlab", "multiconn-client", server, "65435", str(connections), timeout=120)
    assert result.returncode == 0, str(result)
    assert f"{connections} connections" in result.stdout and "every message exact" in result.stdout, str(result)


def test_delay_jitter_reorder_loss(lab, server, netem):
    probe = lab.probe("client", server, 65432, timeout=10)
    assert probe["outcome"] == "connected"
    assert probe["elapsed_s"] >= 0.015  # SYN and SYN-ACK each held 20 +/- 10 ms (or lost and resent)
    check_protocol(lab, server)
    check_multiconn(lab, server)
    counters = netem()
    # The impairment really happened (a test that cannot fail is a defect).
    assert counters["received"] > 200
    assert counters["dropped"] > 0
    assert counters["reordered"] > 0


def test_small_mtu_path(lab, server, small_mtu):
    check_protocol(lab, server)
    check_multiconn(lab, server, connections=20)
    # Path-MTU discovery: the router's ICMP "too big" errors taught the client the path MTU.
    route = lab.run("client", "ip", "route", "get", server)
    assert f"mtu {small_mtu}" in route.stdout, str(route)


def test_small_mtu_and_impairments_together(lab, server, small_mtu, netem):
    check_protocol(lab, server)
    check_multiconn(lab, server, connections=20)
    assert netem()["dropped"] > 0
