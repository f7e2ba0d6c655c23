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


def test_a_link_local_address_is_usable_at_once_not_after_dad(lab):
    """services/hosts/link-local-now.sh (issue 20): Docker gives the lab's addresses "nodad",
    not the fe80:: ones, whose duplicate address detection held every host's start ~1.7 s. On a
    fresh veth pair in the router: its fe80:: addresses are tentative (the negative control:
    what the script has to end), and after the script none is, each re-added with nodad, its
    fe80::/64 route back."""
    script = """
set -eu
ip link add lltest0 type veth peer name lltest1
trap 'ip link del lltest0' EXIT
ip link set lltest0 up; ip link set lltest1 up
for _ in $(seq 1 100); do  # the kernel's own signal: the address appears, tentative
    ip -6 -o addr show dev lltest0 scope link tentative | grep -q fe80 && break
    sleep 0.01
done
echo "before: $(ip -6 -o addr show dev lltest0 scope link)"
/opt/socketlab/hosts/link-local-now.sh
echo "after: $(ip -6 -o addr show dev lltest0 scope link)"
echo "route: $(ip -6 route show dev lltest0)"
"""
    result = lab.root("router", "sh", "-c", script)
    assert result.returncode == 0, str(result)
    before, after, route = (re.search(rf"^{word}: (.*)$", result.stdout, re.M)[1]
                            for word in ("before", "after", "route"))
    assert "fe80::" in before and "tentative" in before, result.stdout
    assert "fe80::" in after and "tentative" not in after and "nodad" in after, result.stdout
    assert "fe80::/64" in route, result.stdout


def test_every_lab_hosts_link_local_addresses_skipped_dad(lab):
    for service in ("router", "server", "client"):
        links = lab.run(service, "ip", "-6", "-o", "addr", "show", "scope", "link").stdout
        assert "fe80::" in links and "tentative" not in links, (service, links)
        assert all("nodad" in line for line in links.splitlines() if "fe80::" in line), (service, links)
