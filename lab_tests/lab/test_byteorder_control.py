"""The byte-order negative control (NAIVE_PORT: app-server --array-decoder naive).

The naive decoder reads arrays in the server's native order and ignores the header's
byte order. From a little-endian client to this little-endian server it happens to be
right; the cross-endian tests (lab_tests/guest) show it going wrong from a big-endian
machine. Here we force the same mistake on LE by sending big-endian numbers.
"""

import json

import pytest

from lab_tests.topology import APP_PORT, NAIVE_PORT, SERVER_V4


VALUES = [1, 2, -3, 70000]


def stats(lab, port, byteorder):
    result = lab.run("client", "socketlab", "app-client", SERVER_V4, str(port), "stats",
                     ",".join(map(str, VALUES)), "--dtype", "int32", "--byteorder", byteorder, "--json")
    assert result.returncode == 0, str(result)
    return json.loads(result.stdout)


def test_lab_hosts_are_little_endian(lab):
    assert lab.run("client", "python3", "-c", "import sys; print(sys.byteorder)").stdout.strip() == "little"


def test_naive_decoder_with_native_le_client_is_right(lab):
    answer = stats(lab, NAIVE_PORT, "native")
    assert answer["byteorder"] == "little"
    assert answer["result"]["values"] == VALUES
    assert answer["result"]["stats"] == {"count": 4, "sum": sum(VALUES), "min": -3, "max": 70000}


def test_naive_decoder_with_big_endian_payload_is_wrong(lab):
    """The control can fail: big-endian numbers, read natively, come out byte-swapped."""
    answer = stats(lab, NAIVE_PORT, "big")
    swapped = [int.from_bytes(v.to_bytes(4, "big", signed=True), "little", signed=True) for v in VALUES]
    assert answer["result"]["values"] == swapped != VALUES


@pytest.mark.parametrize("byteorder", ["native", "big", "little", "network"])
def test_real_decoder_is_right_in_every_order(lab, byteorder):
    answer = stats(lab, APP_PORT, byteorder)
    assert answer["result"]["values"] == VALUES
