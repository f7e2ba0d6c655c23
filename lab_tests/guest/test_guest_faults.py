"""Faults across the lab, the PowerPC guest's part: reboot the guest under running clients.

The guest powers off when its agent ends and QEMU runs with -no-reboot, so a reboot that
comes back by itself is the container's: ``docker compose restart client-ppc`` stops QEMU
(the guest is gone, mid-exchange or not), then client-ppc-start and guest-supervisor boot a
new guest, whose health check turns healthy on "socketlab-guest: ready".

Meanwhile the little-endian client runs `socketlab app-client GUEST_V4 APP_PORT search ring
--timeout T` again and again (the guest's app-server). The checks are those of
lab_tests/lab/test_faults.py: every failing run one clean line in the guide's words, nobody
past T + SLACK, and the clients served again by the new guest without anybody repairing
anything; then the guest as a client (big-endian, guest-exec) is served by the lab's server.
"""

from __future__ import annotations

import json
import time

from lab_tests.clientloop import ClientLoop
from lab_tests.faults import RING, app_client, check_runs, report, resumed, successes


from lab_tests.topology import APP_PORT, GUEST_V4, SERVER_V4


def test_guest_reboot_during_clients(lab, record_testsuite_property):
    timeout = 2.0
    assert lab.wait_healthy("client-ppc", timeout=180) >= 0  # the guest of this session is up
    with ClientLoop(lab, "client", app_client(GUEST_V4, timeout=timeout), workers=2, interval=0.25,
                    name="guest") as loop:
        loop.wait_for(lambda runs: successes(runs) >= 2, 60, "served by the guest before the fault")
        fault_at = time.time()
        restarted = lab.restart("client-ppc")
        assert restarted.returncode == 0, str(restarted)
        ready_s = lab.wait_healthy("client-ppc", timeout=180)
        loop.wait_for(lambda runs: any(not r.ok for r in runs)
                      and successes(runs, max(r.start for r in runs if not r.ok)) >= 2,
                      90, "served by the rebooted guest")
        runs = loop.stop()
    # The guest away: its gateway container gone (timed out, or no route to host from the
    # router's failed neighbour lookup); the container back but the guest still booting (no
    # route to host from client-ppc, which routes guestnet on tap0); the container back
    # before it has made tap0, so with no route to guestnet at all (ICMP net unreachable:
    # ENETUNREACH, seen once in ~6 runs; as the router's restart, test_faults.py); the kernel up
    # but the app-server not yet listening (refused); a connection the old guest had open (reset).
    seen = check_runs(runs, timeout, {"timeout", "unreachable", "network-unreachable", "refused", "reset"})
    figures = resumed(runs, fault_at)
    figures.update(restart_s=round(restarted.elapsed, 2), ready_after_restart_s=round(ready_s, 2),
                   runs=len(runs), outcomes=dict(seen))
    # The new guest is a client again too: big-endian, its own address, through the router.
    result = lab.run("client-ppc", "guest-exec", "--timeout", "60", "python3", "-m", "socketlab",
                     "app-client", SERVER_V4, str(APP_PORT), "search", "ring", "--json", timeout=120)
    assert result.returncode == 0, str(result)
    answer = json.loads(result.stdout)
    assert (answer["result"], answer["byteorder"], answer["local"][0]) == (RING, "big", GUEST_V4)
    report(record_testsuite_property, "guest_reboot", figures)
