"""Link-local IPv6 on the PowerPC guest's link (issue 21, docs/lessons.md): the guest and its
container (client-ppc) share tap0. From the container to the guest's fe80 address with
``%tap0``, and from the guest to the container's with ``%eth0``: connected; without the scope,
EINVAL on both kernels."""

from __future__ import annotations

import json

import pytest

from lab_tests.lab.test_hostnames import PORT, serving
from lab_tests.lab.test_link_local import link_local
from lab_tests.topology import APP_PORT, GUEST_GW_V4

#: The guest's MAC (qemu/bin/guest-supervisor, SOCKETLAB_GUEST_MAC), and so its EUI-64 address.
GUEST_MAC = "52:54:00:53:4c:02"
CONTAINER_SOCKETLAB = "PYTHONPATH=/opt/ppc-root/opt/socketlab python3 -m socketlab"


def eui64(mac: str) -> str:
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    words = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return "fe80::" + ":".join(f"{words[i] << 8 | words[i + 1]:x}" for i in range(0, 8, 2))


def test_eui64_of_the_guests_mac():
    assert eui64(GUEST_MAC) == "fe80::5054:ff:fe53:4c02"


def container_probe(lab, host: str, port: int) -> dict:
    result = lab.run("client-ppc", "sh", "-c", f"{CONTAINER_SOCKETLAB} probe '{host}' {port}")
    return json.loads(result.stdout)


def guest_probe(lab, host: str, port: int) -> dict:
    result = lab.run("client-ppc", "guest-exec", "--timeout", "60", "python3", "-m", "socketlab",
                     "probe", host, str(port), timeout=120)
    return lab.parse_probe(result)


@pytest.mark.parametrize("scope, outcome", [("%tap0", "connected"), ("", "error")],
                         ids=["with-scope", "negative-control-without"])
def test_from_the_container_to_the_guests_link_local_address(lab, scope, outcome):
    answer = container_probe(lab, eui64(GUEST_MAC) + scope, APP_PORT)
    assert answer["outcome"] == outcome, answer
    if not scope:
        assert answer["errno"] == "EINVAL", answer


@pytest.mark.parametrize("scope, outcome", [("%eth0", "connected"), ("", "error")],
                         ids=["with-scope", "negative-control-without"])
def test_from_the_guest_to_the_containers_link_local_address(lab, scope, outcome):
    container, _ = link_local(lab, "client-ppc", GUEST_GW_V4)
    with serving(lab, "client-ppc", "::", socketlab=CONTAINER_SOCKETLAB):
        answer = guest_probe(lab, container + scope, PORT)
    assert answer["outcome"] == outcome, answer
    if not scope:
        assert answer["errno"] == "EINVAL", answer
