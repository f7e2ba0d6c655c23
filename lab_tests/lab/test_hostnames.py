"""Using hostnames (issue 21, docs/lessons.md#using-hostnames): "localhost" is a name, and a name
is whatever the host's resolver says. On a lab host it is ::1 and 127.0.0.1, in that order; on
``peer`` the lab maps it to the host's network address (services/hosts/host-start.sh,
LAB_LOCALHOST), and a server bound to "localhost" there is reachable from across the router:
the guide's security note, made visible. Resolution here is the hosts file only (hermetic)."""

from __future__ import annotations

import contextlib
import re


from lab_tests import topology
from lab_tests.topology import APP_PORT, DROPPED_PORT, PEER_V4, SERVER_V4, SERVER_V6

PORT = topology.spare_ports()[-1]  # accepted by the router; free on client and peer


@contextlib.contextmanager
def serving(lab, service: str, host: str, port: int = PORT, program: str = "echo-server",
            options: str = "-q", socketlab: str = "socketlab"):
    """``socketlab PROGRAM HOST PORT OPTIONS`` in ``service`` (``socketlab``: how that service
    runs the CLI), ready (its ready line read), then stopped and gone."""
    log = f"/tmp/lesson-{port}.log"
    pid = lab.background(service, f"{socketlab} {program} '{host}' {port} {options}", log)
    try:
        lab.wait_for_line(service, log, "^Listening on", timeout=15)
        yield log
    finally:
        lab.kill(service, pid)


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


# -- names across the lab ------------------------------------------------------------------------



def test_the_servers_name_gives_both_families_and_the_client_picks_the_first(lab):
    assert addresses(lab, "client", "server") == [SERVER_V6, SERVER_V4]
    answer = lab.probe("client", "server", APP_PORT)
    assert answer["peer"] == [SERVER_V6, APP_PORT] and len(answer["attempts"]) == 1, answer


def test_a_name_is_not_a_promise_the_first_address_spends_the_timeout(lab):
    """Where the router drops the SYN, the client's one deadline is spent on the name's first
    address, and the second is never tried; Python's socket.create_connection gives each
    address the whole timeout, so it takes twice as long to fail."""
    answer = lab.probe("client", "server", DROPPED_PORT, timeout=2)
    assert answer["attempts"] == [{"address": SERVER_V6, "outcome": "timeout"}], answer
    assert 2 - 0.05 <= answer["elapsed_s"] <= 2.5, answer
    stdlib = lab.run("client", "python3", "-c",
                     "import socket, time; start = time.monotonic()\n"
                     "try: socket.create_connection(('server', %d), timeout=2)\n"
                     "except TimeoutError: print(round(time.monotonic() - start, 2))" % DROPPED_PORT,
                     timeout=30)
    assert 4 - 0.1 <= float(stdlib.stdout) <= 5, str(stdlib)


def test_a_name_whose_first_address_is_dark_costs_the_wait_for_it(lab):
    """dark-2 is servernet's ::99 (nobody holds it), then the server's IPv4 address. The router
    looks for ::99 on servernet for about 3 s (neighbour discovery), then says it is
    unreachable; only then does the client try the next address, and connect."""
    answer = lab.probe("client", "dark-2", APP_PORT, timeout=10)
    assert answer["outcome"] == "connected" and answer["peer"] == [SERVER_V4, APP_PORT], answer
    dark, server = topology.named("client", "dark-2")
    assert server == SERVER_V4
    assert answer["attempts"] == [{"address": dark, "outcome": "unreachable"},
                                  {"address": SERVER_V4, "outcome": "connected"}], answer
    assert answer["elapsed_s"] >= 1.0, answer  # the wait for the dark address


def test_negative_control_a_timeout_shorter_than_that_wait_never_reaches_the_second(lab):
    answer = lab.probe("client", "dark-1", APP_PORT, timeout=1)
    assert answer["outcome"] == "timeout", answer
    assert answer["attempts"] == [{"address": topology.named("client", "dark-1")[0], "outcome": "timeout"}], answer


# -- the guide's recommendation table, each row with the command and the test that shows it ----

#: (application, usage, the guide's recommendation, a command that shows why, the test).
#: docs/lessons.md renders it (``make docs``): a renamed test fails here, at import.
RECOMMENDATIONS = [
    ("server", "loopback interface", "an IP address, such as 127.0.0.1 or ::1",
     f"`socketlab echo-server 127.0.0.1 {PORT}` on peer: private, though peer's localhost is not",
     test_negative_control_bound_to_127_0_0_1_on_peer_it_stays_private),
    ("server", "ethernet interface", f'an IP address, such as {SERVER_V4}; "" for every interface',
     f"`socketlab echo-server localhost {PORT}` on peer: reachable from across the router",
     test_a_server_bound_to_localhost_on_peer_is_reachable_across_the_router),
    ("client", "loopback interface", "an IP address, such as 127.0.0.1 or ::1",
     f"`socketlab probe localhost {PORT}`: ::1 first, 127.0.0.1 after a refusal",
     test_a_client_to_localhost_falls_back_after_a_refusal),
    ("client", "ethernet interface", "an IP address for consistency; a hostname for the typical case",
     f"`socketlab probe server {DROPPED_PORT}`: the name's first address spends the timeout",
     test_a_name_is_not_a_promise_the_first_address_spends_the_timeout),
]


def recommendation_table() -> str:
    rows = [f"| {app} | {usage} | {advice} | {command} | `lab_tests/lab/test_hostnames.py::{test.__name__}` |"
            for app, usage, advice, command, test in RECOMMENDATIONS]
    return "\n".join(["| application | usage | the guide recommends | shown by | test |",
                      "| --- | --- | --- | --- | --- |", *rows]) + "\n"
