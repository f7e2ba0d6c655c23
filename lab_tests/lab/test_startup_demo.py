"""The demo each client host runs at start-up, as its own test: a wrong answer is a named
failure here (which case, which host), while the lab stays up for every other test.

Each client host runs it twice against the little-endian server: plain on the app port, then
over TLS on the TLS port, trusting only the lab's CA (docs/tls.md). The little-endian client and the fast tier
turn healthy once theirs has finished, right or wrong (/tmp/demo.exit); the PowerPC guest runs
its own once it is ready (guest-supervisor: demo.status), with its own address."""

import re

import pytest

from lab_tests.topology import CLIENT_V4, GUEST_V4, SERVER_V4, TLS_PORT, USER_V4

GUEST_STATUS = "/run/socketlab-guest/demo.status"


def status_of(lab, service: str) -> str:
    if service != "client-ppc":
        return lab.read_file(service, "/tmp/demo.exit").decode().strip()
    # The guest's demo starts when the guest is ready (the health check): wait for its verdict,
    # written when the demo's process ended.
    waited = lab.run(service, "timeout", "150", "sh", "-c", f"until [ -e {GUEST_STATUS} ]; do sleep 0.2; done",
                     timeout=160)
    assert waited.returncode == 0, f"the guest's start-up demo did not end within 150 s: {waited}"
    return lab.read_file(service, GUEST_STATUS).decode().strip()


@pytest.mark.parametrize("service, me", [
    ("client", CLIENT_V4),
    pytest.param("client-ppc-user", USER_V4, marks=pytest.mark.guest),
    pytest.param("client-ppc", GUEST_V4, marks=pytest.mark.guest),  # the guest's own address
])
def test_the_start_up_demo_passed(lab, service, me):
    status = status_of(lab, service)
    log = lab.logs(service)
    verdicts = [line for line in log.splitlines() if "demo: " in line or line.lstrip().startswith("BAD")]
    assert status == "0", f"the demo in {service} exited {status}:\n" + "\n".join(verdicts)
    peer = rf"all \d+ answers correct \(peer {re.escape(SERVER_V4)}, me {re.escape(me)}"
    plain = [line for line in verdicts if re.search(peer + r"\)$", line)]
    over_tls = [line for line in verdicts if re.search(peer + r", over TLSv1\.3 \S+\)$", line)]
    assert plain and over_tls, log[-3000:]  # (a restarted guest ran it again: more than one)
    if service == "client-ppc":
        demo = [line for line in log.splitlines() if line.startswith("guest demo | ")]
        assert re.fullmatch(r"guest demo \| byteorder: big \(this client: Python \S+ on ppc64\)", demo[0]), demo[:2]
        assert f"guest demo | server: {SERVER_V4} port {TLS_PORT}" in demo, demo
