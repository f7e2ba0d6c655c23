"""Link-local IPv6 across a lab link (issue 21, docs/lessons.md): fe80::/10 is on every link at
once, so an address alone names no interface. The client and the router share clientnet; the
client reaches the router's link-local address with ``%eth0`` (the 4-tuple's scope_id), and
without it the kernel refuses to even try: EINVAL."""

from __future__ import annotations

import re

from lab_tests.topology import address

from .test_hostnames import PORT, serving


def link_local(lab, service: str, interface_address: str) -> tuple[str, str]:
    """(the fe80:: address, the interface) of ``service``'s interface holding ``interface_address``."""
    links = lab.run(service, "ip", "-o", "addr", "show").stdout
    interface = re.search(rf"^\d+: (\S+)\s+inet6? {re.escape(interface_address)}/", links, re.M)[1]
    fe80 = re.search(rf"^\d+: {re.escape(interface)}\s+inet6 (fe80::[0-9a-f:]+)/64 scope link", links, re.M)
    assert fe80, links
    return fe80[1], interface


def test_the_routers_link_local_address_with_a_scope_connects(lab):
    router, _ = link_local(lab, "router", address("router", "clientnet", 4))
    with serving(lab, "router", "::"):
        answer = lab.probe("client", f"{router}%eth0", PORT)
    assert answer["outcome"] == "connected" and answer["family"] == "AF_INET6", answer
    assert answer["peer"] == [router, PORT], answer


def test_negative_control_without_the_scope_the_kernel_cannot_even_try(lab):
    router, _ = link_local(lab, "router", address("router", "clientnet", 4))
    with serving(lab, "router", "::"):
        answer = lab.probe("client", router, PORT)
    assert (answer["outcome"], answer["errno"]) == ("error", "EINVAL"), answer
