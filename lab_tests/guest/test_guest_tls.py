"""TLS from the big-endian side: the demo over TLS from the PowerPC guest and the fast tier.

The guest's CPython has ssl on a cross-built OpenSSL (qemu/Dockerfile). It has no volume for
the lab's CA, so the test hands the CA's PEM over as an argument. The guest writes it to its
own /tmp and runs `socketlab demo --port 65439 --tls-ca`, trusting only that CA, against the
little-endian server (docs/tls.md).
"""

from __future__ import annotations

import re

import pytest

from lab_tests.topology import GUEST_V4, SERVER_V4, TLS_PORT, USER_V4

DEMO = ("import sys; from socketlab.cli import main; open('/tmp/lab-ca.pem', 'w').write(sys.argv[1]); "
        f"sys.exit(main(['demo', '{SERVER_V4}', '--port', '{TLS_PORT}', '--tls-ca', '/tmp/lab-ca.pem']))")


@pytest.mark.parametrize("position, me", [("guest", GUEST_V4), ("user", USER_V4)])
def test_the_demo_over_tls_from_the_big_endian_side(lab, position, me):
    ca = lab.read_file("server", "/pki/ca.pem").decode()
    if position == "guest":
        result = lab.run("client-ppc", "guest-exec", "--timeout", "120", "python3", "-c", DEMO, ca, timeout=150)
    else:
        result = lab.run("client-ppc-user", "ppc-python", "-c", DEMO, ca, timeout=150)
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("byteorder: big"), result.stdout
    assert "BAD" not in result.stdout
    last = result.stdout.splitlines()[-1]
    assert re.search(rf"all \d+ answers correct \(peer {re.escape(SERVER_V4)}, me {re.escape(me)}, over TLSv1\.3 ", last), last
