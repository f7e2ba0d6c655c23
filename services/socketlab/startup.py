"""A lab host's start-up demo, plain then over TLS, in one process::

    python3 -m socketlab.startup SERVER TLS_PORT

The client hosts and the PowerPC guest run it when the lab comes up (services/hosts/client.sh,
qemu/bin/client-ppc-user-start, qemu/bin/guest-supervisor): ``socketlab demo SERVER`` and then
``socketlab demo SERVER --port TLS_PORT --tls-ca /pki/ca.pem``, where the host has the lab's CA
(docs/tls.md). Each waits up to a minute for its port: a host starts beside its server, not
after it, and the server's listeners come up one by one. One process for both, because a Python
start costs about a second on the PowerPC hosts (emulated), and their start-up is most of what
a lab's `up` costs (benchmarks/lab_up.py --cpu). Nothing in the package imports this module.
"""

from __future__ import annotations

import os
import sys

from socketlab.cli import main

__all__ = ["LAB_CA", "startup"]

#: Where a lab host finds the lab's CA (the pki volume); without it, no TLS demo at start.
LAB_CA = "/pki/ca.pem"
#: How long each demo waits for its server's port, in seconds.
WAIT = "60"


def startup(server: str, tls_port: int) -> int:
    """Both demos against ``server``; the exit status (non-zero if either failed)."""
    status = main(["demo", server, "--wait", WAIT])
    if os.path.exists(LAB_CA):
        status = main(["demo", server, "--port", str(tls_port), "--tls-ca", LAB_CA, "--wait", WAIT]) or status
    return status


if __name__ == "__main__":
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        sys.exit("usage: python3 -m socketlab.startup SERVER TLS_PORT")
    sys.exit(startup(sys.argv[1], int(sys.argv[2])))
