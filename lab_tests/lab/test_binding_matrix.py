"""Every server binding x every client position, probed from inside the lab."""

import pytest

from lab_tests import topology
from lab_tests.lab import binding_matrix as bm


SOURCE = {  # the address a connection from each position leaves from (no NAT anywhere)
    ("server", "127.0.0.1"): "127.0.0.1",
    ("server", "::1"): "::1",
    ("server", bm.SERVER_V4): bm.SERVER_V4,
    ("server", bm.SERVER_V6): bm.SERVER_V6,
    ("peer", bm.SERVER_V4): topology.PEER_V4,
    ("peer", bm.SERVER_V6): topology.PEER_V6,
    ("client", bm.SERVER_V4): topology.CLIENT_V4,
    ("client", bm.SERVER_V6): topology.CLIENT_V6,
}


@pytest.mark.parametrize(
    ("port", "bound", "service", "host", "label", "expected"),
    [pytest.param(*case, id=f"{case[0]}-{case[2]}-{case[3]}") for case in bm.cases()],
)
def test_binding(lab, port, bound, service, host, label, expected):
    answer = lab.probe(service, host, port, timeout=2.0)
    assert answer["outcome"] == expected, f"{label} -> {host} port {port} (bound {bound}): {answer}"
    if expected == bm.C:
        assert answer["peer"] == [host, port]
        assert answer["local"][0] == SOURCE[service, host]
    else:
        assert answer["errno"] == "ECONNREFUSED"
        assert answer["elapsed_s"] < 1.0  # a refusal is immediate, not a timeout
