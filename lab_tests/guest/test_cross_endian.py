"""Cross-endian suite: a big-endian PowerPC client and server against the little-endian lab.

Three big-endian positions (qemu/README.md):

* ``guest``: the full-system guest (qemu-system-ppc64, its own kernel and address on guestnet,
  topology.GUEST_V4 / GUEST_V6), commands run in it by ``guest-exec`` in the client-ppc container;
* ``user``: the fast tier, the same CPython under qemu-ppc64-static in client-ppc-user
  (the container's own network stack, topology.USER_V4 / USER_V6);
* the guest's ``app-server :: APP_PORT``, reached from the little-endian ``client``.

Expected answers are written out here, independent of the package. The negative control: the
server's ``app-server :: NAIVE_PORT --array-decoder naive`` reads arrays in its own (little-endian)
order, so it must give the big-endian clients WRONG numbers and the little-endian client right
ones: proof that the exact-value assertions below can fail.
"""

from __future__ import annotations

import math
import re
import struct

import pytest

from lab_tests import guide, topology
from lab_tests.batch import app_answer, client_case, probe_case
from lab_tests.probing import check, probe_port, probe_timeout, seen
from lab_tests.topology import (APP_PORT, CLIENT_V4, GUEST_V4, GUEST_V6, NAIVE_PORT, SERVER_V4,
                                SERVER_V6, USER_V4, USER_V6)
from socketlab import arrays, demo
from socketlab.errors import Outcome

BIG_ENDIAN_TIERS = ["guest", "user"]

# (label, action, value, expected result) for every non-array request kind.
REQUESTS = [
    ("search-morpheus", "search", "morpheus", guide.MORPHEUS),
    ("search-ring", "search", "ring", guide.RING),
    ("search-dog", "search", guide.DOG_QUERY, guide.DOG),
    ("search-unknown", "search", "nothing", guide.no_match("nothing")),
    # The guide's client sends any other action as binary content, ACTION + VALUE.
    ("action-double", "double", "10", repr(guide.binary_answer(b"double10"))),
    ("binary", "binary", "\U0001f40d bytes", repr(guide.binary_answer("binary\U0001f40d bytes".encode()))),
]

# The values come from the oracle (socketlab.demo.ARRAYS: no value's bytes read the same both
# ways round); the statistics are computed here, independently of socketlab.arrays.
ARRAYS = demo.ARRAYS


def expected_array(dtype: str) -> dict:
    code, values = arrays.DTYPES[dtype], ARRAYS[dtype]
    exact = list(struct.unpack(f">{len(values)}{code}", struct.pack(f">{len(values)}{code}", *values)))
    total = math.fsum(exact) if code in "fd" else sum(exact)
    return {"values": exact, "stats": {"count": len(exact), "sum": total, "min": min(exact), "max": max(exact)}}


def value_text(dtype: str) -> str:
    return ",".join(map(repr, ARRAYS[dtype]))


# -- running socketlab in each position ----------------------------------------------------------
#
# Starting Python in the emulated guest costs about a second, so the cases of each position run
# in one process (lab_tests.batch; the ``results`` fixture, once per session), and each test
# asserts on its own case. A test's parameters carry its Case.


def stats_cases(positions: list[str], host: str, port: int) -> list:
    """``(case, dtype)`` parameters: a stats request for each position and each of the oracle's
    arrays."""
    return [pytest.param(client_case(position, host, port, "stats", value_text(dtype), "--dtype", dtype),
                         dtype, id=f"{position}-{dtype}")
            for position in positions for dtype in sorted(ARRAYS)]


# -- the platform really is big-endian -----------------------------------------------------------


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
def test_python_is_big_endian(lab, tier):
    code = "import sys, platform; print(sys.byteorder, platform.machine())"
    if tier == "guest":
        result = lab.run("client-ppc", "guest-exec", "python3", "-c", code, timeout=90)
    else:
        result = lab.run("client-ppc-user", "ppc-python", "-c", code, timeout=60)
    assert result.returncode == 0, str(result)
    byteorder, machine = result.stdout.split()
    assert byteorder == "big"
    assert machine == "ppc64"


def test_guest_exec_reports_status_and_streams(lab):
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = lab.run("client-ppc", "guest-exec", "python3", "-c", code, timeout=90)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


# -- big-endian client -> little-endian server -----------------------------------------------


@pytest.mark.parametrize("case, expected", [
    pytest.param(client_case(tier, SERVER_V4, APP_PORT, action, value), expected, id=f"{tier}-{label}")
    for tier in BIG_ENDIAN_TIERS for label, action, value, expected in REQUESTS])
def test_be_client_request_kinds(results, case, expected):
    answer = app_answer(results[case])
    assert answer["byteorder"] == "big"
    assert answer["result"] == expected


@pytest.mark.parametrize("case, dtype", stats_cases(BIG_ENDIAN_TIERS, SERVER_V4, APP_PORT))
def test_be_client_stats_exact(results, case, dtype):
    answer = app_answer(results[case])
    assert answer["byteorder"] == "big"
    assert answer["request"]["byteorder"] == "big"
    assert answer["result"] == expected_array(dtype)


@pytest.mark.parametrize("case", [
    pytest.param(client_case(tier, SERVER_V6, APP_PORT, "stats", value_text("int64"), "--dtype", "int64",
                             "--byteorder", order), id=f"{tier}-{order}")
    for tier in BIG_ENDIAN_TIERS for order in ["little", "network"]])
def test_be_client_stats_declared_order(results, case):
    """A big-endian client may pack in any declared order; the real decoder follows the header."""
    assert app_answer(results[case])["result"] == expected_array("int64")


@pytest.mark.parametrize("case", [client_case("guest", SERVER_V4, APP_PORT, "search", "morpheus")])
def test_server_logs_the_guests_own_address(lab, results, case):
    answer = app_answer(results[case])
    local_addr, local_port = answer["local"]
    assert local_addr == GUEST_V4
    assert answer["peer"] == [SERVER_V4, APP_PORT]
    # The guide's line, with the peer as Python shows it (IPv4-mapped on the dual-stack "::").
    peer = rf"\('(::ffff:)?{re.escape(GUEST_V4)}', {local_port}(, 0, 0)?\)"
    pattern = rf"Received request \{{'action': 'search', 'value': 'morpheus'\}} from {peer}"
    lab.wait_log("server", pattern)  # the server logs the guest as the peer


# -- little-endian client -> big-endian server (the guest's app-server) ------------------------


@pytest.mark.parametrize("case, host, expected", [
    pytest.param(client_case("le", host, APP_PORT, action, value), host, expected, id=f"{host}-{label}")
    for host in [GUEST_V4, GUEST_V6] for label, action, value, expected in REQUESTS])
def test_le_client_to_guest_request_kinds(results, case, host, expected):
    answer = app_answer(results[case])
    assert answer["byteorder"] == "little"
    assert answer["peer"] == [host, APP_PORT]
    assert answer["result"] == expected


@pytest.mark.parametrize("case", [client_case("le", GUEST_V4, APP_PORT, "search", "ring")])
def test_guest_server_logs_the_le_clients_address(lab, results, case):
    """The guest's app-server (its commentary is on the guest console = client-ppc's log)."""
    answer = app_answer(results[case])
    local_addr, local_port = answer["local"]
    assert local_addr == CLIENT_V4  # no NAT anywhere on the way
    peer = rf"\('(::ffff:)?{re.escape(CLIENT_V4)}', {local_port}(, 0, 0)?\)"
    pattern = rf"Received request \{{'action': 'search', 'value': 'ring'\}} from {peer}"
    lab.wait_log("client-ppc", pattern)  # the guest logs the client as the peer


@pytest.mark.parametrize("case, dtype", stats_cases(["le"], GUEST_V4, APP_PORT))
def test_le_client_to_guest_stats_exact(results, case, dtype):
    answer = app_answer(results[case])
    assert answer["byteorder"] == "little"
    assert answer["result"] == expected_array(dtype)


@pytest.mark.parametrize("case", [
    client_case("user", GUEST_V6, APP_PORT, "stats", value_text("float64"), "--dtype", "float64")])
def test_fast_tier_to_guest_stats(results, case):
    """big-endian -> big-endian across the router, for completeness."""
    assert app_answer(results[case])["result"] == expected_array("float64")


# -- negative control: the naive (native-order) decoder ----------------------------------------


@pytest.mark.parametrize("case, dtype", stats_cases(BIG_ENDIAN_TIERS, SERVER_V4, NAIVE_PORT))
def test_naive_server_gets_big_endian_arrays_wrong(results, case, dtype):
    answer = app_answer(results[case])
    assert answer["result"]["values"] != expected_array(dtype)["values"]
    # ...and exactly wrong the way a byte swap is: each value's bytes reversed
    code = arrays.DTYPES[dtype]
    swapped = [struct.unpack(f"<{code}", struct.pack(f">{code}", v))[0] for v in expected_array(dtype)["values"]]
    got = answer["result"]["values"]
    assert all(g == s or (isinstance(s, float) and math.isnan(s) and math.isnan(g)) for g, s in zip(got, swapped))


@pytest.mark.parametrize("case, dtype", stats_cases(["le"], SERVER_V4, NAIVE_PORT))
def test_naive_server_is_right_for_little_endian_client(results, case, dtype):
    assert app_answer(results[case])["result"] == expected_array(dtype)


# -- firewall and binding, seen from the guest's own network stack -----------------------------

PROBE_TIMEOUT = 2.0
OWN = {"guest": {4: GUEST_V4, 6: GUEST_V6}, "user": {4: USER_V4, 6: USER_V6}}


@pytest.mark.parametrize("case, rule, server, own", [
    pytest.param(probe_case(tier, server, probe_port(rule), probe_timeout(seen(rule), PROBE_TIMEOUT)),
                 rule, server, OWN[tier][version], id=f"{tier}-ipv{version}-{probe_port(rule)}")
    for tier in BIG_ENDIAN_TIERS for version, server in [(4, SERVER_V4), (6, SERVER_V6)]
    for rule in topology.firewall()])
def test_firewall_from_big_endian_stack(lab, results, case, rule, server, own):
    answer = lab.parse_probe(results[case])
    port = probe_port(rule)
    check(answer, seen(rule), server, port, probe_timeout(seen(rule), PROBE_TIMEOUT))
    if seen(rule) == Outcome.CONNECTED:
        assert answer["local"][0] == own  # the guest's own address: its own stack


#: The server's listeners bound to one address (its loopback, one of its own): only that
#: address answers.
BOUND = [lst for lst in topology.server_ports() if lst.host not in ("::", "")]


@pytest.mark.parametrize("case, outcome", [
    pytest.param(probe_case("guest", server, lst.port, PROBE_TIMEOUT),
                 Outcome.CONNECTED if lst.host == server else Outcome.REFUSED,
                 id=f"{lst.port}-{lst.host}-from-{server}")
    for lst in BOUND for server in (SERVER_V4, SERVER_V6)])
def test_binding_from_guest(lab, results, case, outcome):
    assert lab.parse_probe(results[case])["outcome"] == outcome
