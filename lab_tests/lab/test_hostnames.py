"""Using hostnames (issue 21, docs/lessons.md#using-hostnames): "localhost" is a name, and a name
is whatever the host's resolver says. On a lab host it is ::1 and 127.0.0.1, in that order; on
``peer`` the lab maps it to the host's network address (services/hosts/host-start.sh,
LAB_LOCALHOST), and a server bound to "localhost" there is reachable from across the router:
the guide's security note, made visible. Resolution here is the hosts file only (hermetic)."""

from __future__ import annotations

import contextlib
import re

import pytest

from lab_tests.loopback.support import wait_for
from lab_tests.topology import PEER_V4

PORT = 65438  # inside the router's accepted range; free on client and peer


@contextlib.contextmanager
def serving(lab, service: str, host: str, port: int = PORT, socketlab: str = "socketlab"):
    """``socketlab echo-server HOST PORT`` in ``service`` (``socketlab``: how that service
    runs the CLI), ready (its ready line read), then stopped."""
    log = f"/tmp/lesson-{port}.log"
    started = lab.run(service, "sh", "-c", f"{socketlab} echo-server '{host}' {port} -q > {log} 2>&1 & echo $!")
    pid = started.stdout.strip()
    assert started.returncode == 0 and pid.isdigit(), str(started)
    try:
        wait_for(lambda: "Listening on" in lab.run(service, "cat", log).stdout, timeout=15, interval=0.2)
        yield
    finally:  # and gone before the next one binds the port: kill, then poll its exit
        stopped = lab.run(service, "sh", "-c", f"kill {pid}; for _ in $(seq 100); do "
                          f"kill -0 {pid} 2>/dev/null || exit 0; sleep 0.05; done; exit 1")
        assert stopped.returncode == 0, str(stopped)


def addresses(lab, service: str, name: str) -> list[str]:
    result = lab.run(service, "socketlab", "addrinfo", name, str(PORT))
    assert result.returncode == 0, str(result)
    return re.findall(r", \('([^']+)', \d+", result.stdout)


def test_localhost_is_two_addresses_ipv6_first(lab):
    assert addresses(lab, "client", "localhost") == ["::1", "127.0.0.1"]


def test_a_server_bound_to_localhost_listens_on_the_first_address_only(lab):
    with serving(lab, "client", "localhost"):
        assert lab.probe("client", "::1", PORT)["outcome"] == "connected"
        assert lab.probe("client", "127.0.0.1", PORT)["outcome"] == "refused"


def test_a_client_to_localhost_falls_back_after_a_refusal(lab):
    """The server on 127.0.0.1 only: a client asking for "localhost" is refused on ::1 first,
    then connects to 127.0.0.1; probe says both, in order."""
    with serving(lab, "client", "127.0.0.1"):
        answer = lab.probe("client", "localhost", PORT)
    assert answer["outcome"] == "connected" and answer["peer"] == ["127.0.0.1", PORT], answer
    assert answer["attempts"] == [{"address": "::1", "outcome": "refused"},
                                  {"address": "127.0.0.1", "outcome": "connected"}], answer


def test_negative_control_a_name_with_one_address_has_no_fallback(lab):
    with serving(lab, "client", "127.0.0.1"):
        answer = lab.probe("client", "::1", PORT)
    assert answer["outcome"] == "refused" and len(answer["attempts"]) == 1, answer


def test_on_peer_localhost_is_its_network_address(lab):
    assert addresses(lab, "peer", "localhost") == [PEER_V4]


def test_a_server_bound_to_localhost_on_peer_is_reachable_across_the_router(lab):
    with serving(lab, "peer", "localhost"):
        answer = lab.probe("client", PEER_V4, PORT)
    assert answer["outcome"] == "connected", answer


def test_negative_control_bound_to_127_0_0_1_on_peer_it_stays_private(lab):
    with serving(lab, "peer", "127.0.0.1"):
        assert lab.probe("client", PEER_V4, PORT)["outcome"] == "refused"
        assert lab.run("peer", "socketlab", "probe", "127.0.0.1", str(PORT)).returncode == 0
