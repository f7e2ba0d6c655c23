"""Cross-endian suite: a big-endian PowerPC client and server against the little-endian lab.

Three big-endian positions (qemu/README.md):

* ``guest``: the full-system guest (qemu-system-ppc64, its own kernel and address 198.18.3.2 /
  2001:db8:3::2), commands run in it by ``guest-exec`` in the client-ppc container;
* ``user``: the fast tier, the same CPython under qemu-ppc64-static in client-ppc-user
  (the container's own network stack, 198.18.2.30);
* the guest's ``app-server :: 65432``, reached from the little-endian ``client``.

Expected answers are written out here, independent of the package. The negative control: the
server's ``app-server :: 65437 --array-decoder naive`` reads arrays in its own (little-endian)
order, so it must give the big-endian clients WRONG numbers and the little-endian client right
ones: proof that the exact-value assertions below can fail.
"""

from __future__ import annotations

import json
import math
import re
import struct

import pytest

from lab_tests.topology import (CLIENT_V4, GUEST_V4, GUEST_V6, SERVER_V4, SERVER_V6, USER_V4,
                                USER_V6)
from socketlab import arrays, demo

APP_PORT, NAIVE_PORT = 65432, 65437
BIG_ENDIAN_TIERS = ["guest", "user"]

# (label, action, value, expected result) for every non-array request kind.
REQUESTS = [
    ("search-morpheus", "search", "morpheus", "Follow the white rabbit. \U0001f430"),
    ("search-ring", "search", "ring", "In the caves beneath the Misty Mountains. \U0001f48d"),
    ("search-dog", "search", "\U0001f436", "\U0001f43e Playing ball! \U0001f3d0"),
    ("search-unknown", "search", "nothing", "No match for 'nothing'."),
    # The guide's client sends any other action as binary content, ACTION + VALUE.
    ("action-double", "double", "10", repr(b"First 10 bytes of request: double10")),
    ("binary", "binary", "\U0001f40d bytes", repr(b"First 10 bytes of request: binary\xf0\x9f\x90\x8d")),
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


def socketlab(lab, tier: str, *argv: str, timeout: float = 60):
    """``socketlab ARGV`` on the big-endian guest, the fast tier, or the little-endian client."""
    if tier == "guest":
        return lab.run("client-ppc", "guest-exec", "--timeout", f"{timeout:g}",
                       "python3", "-m", "socketlab", *argv, timeout=timeout + 30)
    if tier == "user":
        return lab.run("client-ppc-user", "socketlab-ppc", *argv, timeout=timeout)
    assert tier == "le"
    return lab.run("client", "socketlab", *argv, timeout=timeout)


def app_client(lab, tier: str, host: str, port: int, action: str, value: str, *extra: str) -> dict:
    result = socketlab(lab, tier, "app-client", host, str(port), action, value, "--json", *extra)
    assert result.returncode == 0, str(result)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, str(result)
    return json.loads(lines[0])


def probe(lab, tier: str, host: str, port: int, timeout: float = 2.0) -> dict:
    result = socketlab(lab, tier, "probe", host, str(port), "--timeout", f"{timeout:g}", timeout=timeout + 60)
    return lab.parse_probe(result)


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


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
@pytest.mark.parametrize("label, action, value, expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_be_client_request_kinds(lab, tier, label, action, value, expected):
    answer = app_client(lab, tier, SERVER_V4, APP_PORT, action, value)
    assert answer["byteorder"] == "big"
    assert answer["result"] == expected


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
@pytest.mark.parametrize("dtype", sorted(ARRAYS))
def test_be_client_stats_exact(lab, tier, dtype):
    answer = app_client(lab, tier, SERVER_V4, APP_PORT, "stats", value_text(dtype), "--dtype", dtype)
    assert answer["byteorder"] == "big"
    assert answer["request"]["byteorder"] == "big"
    assert answer["result"] == expected_array(dtype)


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
@pytest.mark.parametrize("order", ["little", "network"])
def test_be_client_stats_declared_order(lab, tier, order):
    """A big-endian client may pack in any declared order; the real decoder follows the header."""
    answer = app_client(lab, tier, SERVER_V6, APP_PORT, "stats", value_text("int64"),
                        "--dtype", "int64", "--byteorder", order)
    assert answer["result"] == expected_array("int64")


def test_guest_demo(lab):
    result = socketlab(lab, "guest", "demo", SERVER_V4, timeout=180)
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("byteorder: big")
    assert "BAD" not in result.stdout
    assert f"me {GUEST_V4}" in result.stdout  # the guest's own address, not the container's


def test_server_logs_the_guests_own_address(lab):
    answer = app_client(lab, "guest", SERVER_V4, APP_PORT, "search", "morpheus")
    local_addr, local_port = answer["local"]
    assert local_addr == GUEST_V4
    assert answer["peer"] == [SERVER_V4, APP_PORT]
    # The guide's line, with the peer as Python shows it (IPv4-mapped on the dual-stack "::").
    peer = rf"\('(::ffff:)?{re.escape(GUEST_V4)}', {local_port}(, 0, 0)?\)"
    pattern = rf"Received request \{{'action': 'search', 'value': 'morpheus'\}} from {peer}"
    assert re.search(pattern, lab.logs("server")), "the server did not log the guest as the peer"


# -- little-endian client -> big-endian server (the guest's app-server) ------------------------


@pytest.mark.parametrize("host", [GUEST_V4, GUEST_V6])
@pytest.mark.parametrize("label, action, value, expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_le_client_to_guest_request_kinds(lab, host, label, action, value, expected):
    answer = app_client(lab, "le", host, APP_PORT, action, value)
    assert answer["byteorder"] == "little"
    assert answer["peer"] == [host, APP_PORT]
    assert answer["result"] == expected


def test_guest_server_logs_the_le_clients_address(lab):
    """The guest's app-server (its commentary is on the guest console = client-ppc's log)."""
    answer = app_client(lab, "le", GUEST_V4, APP_PORT, "search", "ring")
    local_addr, local_port = answer["local"]
    assert local_addr == CLIENT_V4  # no NAT anywhere on the way
    peer = rf"\('(::ffff:)?198\.18\.2\.10', {local_port}(, 0, 0)?\)"
    pattern = rf"Received request \{{'action': 'search', 'value': 'ring'\}} from {peer}"
    assert re.search(pattern, lab.logs("client-ppc")), "the guest did not log the client as the peer"


@pytest.mark.parametrize("dtype", sorted(ARRAYS))
def test_le_client_to_guest_stats_exact(lab, dtype):
    answer = app_client(lab, "le", GUEST_V4, APP_PORT, "stats", value_text(dtype), "--dtype", dtype)
    assert answer["byteorder"] == "little"
    assert answer["result"] == expected_array(dtype)


def test_fast_tier_to_guest_stats(lab):
    """big-endian -> big-endian across the router, for completeness."""
    answer = app_client(lab, "user", GUEST_V6, APP_PORT, "stats", value_text("float64"), "--dtype", "float64")
    assert answer["result"] == expected_array("float64")


# -- negative control: the naive (native-order) decoder ----------------------------------------


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
@pytest.mark.parametrize("dtype", sorted(ARRAYS))
def test_naive_server_gets_big_endian_arrays_wrong(lab, tier, dtype):
    answer = app_client(lab, tier, SERVER_V4, NAIVE_PORT, "stats", value_text(dtype), "--dtype", dtype)
    assert answer["result"]["values"] != expected_array(dtype)["values"]
    # ...and exactly wrong the way a byte swap is: each value's bytes reversed
    code = arrays.DTYPES[dtype]
    swapped = [struct.unpack(f"<{code}", struct.pack(f">{code}", v))[0] for v in expected_array(dtype)["values"]]
    got = answer["result"]["values"]
    assert all(g == s or (isinstance(s, float) and math.isnan(s) and math.isnan(g)) for g, s in zip(got, swapped))


@pytest.mark.parametrize("dtype", sorted(ARRAYS))
def test_naive_server_is_right_for_little_endian_client(lab, dtype):
    answer = app_client(lab, "le", SERVER_V4, NAIVE_PORT, "stats", value_text(dtype), "--dtype", dtype)
    assert answer["result"] == expected_array(dtype)


# -- firewall and binding, seen from the guest's own network stack -----------------------------

FIREWALL = [
    (65432, "connected", None),
    (65440, "refused", "ECONNREFUSED"),
    (65441, "timeout", "ETIMEDOUT"),
    (65442, "unreachable", "EHOSTUNREACH"),
]


@pytest.mark.parametrize("tier", BIG_ENDIAN_TIERS)
@pytest.mark.parametrize("server, own", [(SERVER_V4, {"guest": GUEST_V4, "user": USER_V4}),
                                         (SERVER_V6, {"guest": GUEST_V6, "user": USER_V6})],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("port, outcome, errno_name", FIREWALL, ids=[str(f[0]) for f in FIREWALL])
def test_firewall_from_big_endian_stack(lab, tier, server, own, port, outcome, errno_name):
    answer = probe(lab, tier, server, port, timeout=2.0)
    assert answer["outcome"] == outcome, answer
    if errno_name:
        assert answer["errno"] == errno_name, answer
    if outcome == "connected":
        assert answer["local"][0] == own[tier]  # the guest's own address: its own stack
        assert answer["peer"] == [server, port]
    if outcome == "timeout":
        assert answer["elapsed_s"] >= 1.9, answer


@pytest.mark.parametrize("host, port, outcome", [
    (SERVER_V4, 65433, "connected"),   # bound to 198.18.1.10 only
    (SERVER_V6, 65433, "refused"),
    (SERVER_V6, 65434, "connected"),   # bound to 2001:db8:1::10 only
    (SERVER_V4, 65434, "refused"),
    (SERVER_V4, 65431, "refused"),     # loopback only on the server
])
def test_binding_from_guest(lab, host, port, outcome):
    assert probe(lab, "guest", host, port)["outcome"] == outcome
