"""The guest's boot snapshot (qemu/README.md, "Boot snapshot"): the lab's guest is resumed from
the image's snapshot, not booted, and is the lab's host all the same (its settings: the time,
its addresses, /pki); a snapshot that cannot be resumed is booted instead.

The fallback runs guest-supervisor in a throw-away container of the lab's guest image, on no
network, on a tap of its own that nothing else is on (its guest reaches nothing), with the
image's kernel and initramfs and a copy of the snapshot cut short; then the same with the whole
snapshot (the control: the same set-up resumes)."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from lab_tests.topology import GUEST_V4, GUEST_V6

RUN = "/run/socketlab-guest"


def test_the_lab_guest_was_resumed_from_the_snapshot(lab):
    ready = json.loads(lab.read_file("client-ppc", f"{RUN}/ready"))
    assert ready["resumed"] is True, ready
    lab.wait_log("client-ppc", r"^guest-supervisor: guest ready [\d.]+ s after QEMU started \(resumed\)$")
    # the entropy it was sent reseeded its kernel's generator (every resumed guest starts from
    # the same random state); the agent says when the kernel refuses (test_guest_agent.py)
    assert "cannot reseed the kernel's generator" not in lab.logs("client-ppc")


def test_the_resumed_guest_has_the_labs_time_and_addresses(lab):
    """The snapshot's clock is the image build's: the settings set it (TLS checks dates with it)."""
    before = time.time()
    result = lab.run("client-ppc", "guest-exec", "--timeout", "60", "python3", "-c", "import time; print(time.time())")
    after = time.time()
    assert result.returncode == 0, str(result)
    assert before - 2 <= float(result.stdout) <= after + 2, (before, result.stdout, after)
    hosts = lab.run("client-ppc", "guest-exec", "python3", "-c", "print(open('/etc/hosts').read())")
    assert f"{GUEST_V4}\tppc-guest" in hosts.stdout and f"{GUEST_V6}\tppc-guest" in hosts.stdout, str(hosts)


FALLBACK = r"""
set -eu
G=/tmp/snapshot-test/guest R=/tmp/snapshot-test/run
mkdir -p "$G" "$R"
ln -s /opt/guest/vmlinux /opt/guest/initramfs.cpio "$G"/
cp /opt/guest/snapshot.json "$G"/
if [ "$1" = short ]; then head -c 4000000 /opt/guest/snapshot > "$G"/snapshot; else ln -s /opt/guest/snapshot "$G"/; fi
ip tuntap add dev tapsnap mode tap
ip link set tapsnap up
SOCKETLAB_GUEST_DIR="$G" SOCKETLAB_RUN_DIR="$R" SOCKETLAB_TAP=tapsnap SOCKETLAB_DEMO_SERVER= \
    guest-supervisor > /tmp/snapshot-test.out 2>&1 &
pid=$!
# the supervisor's own ready file, polled with a deadline
i=0; while [ ! -e "$R"/ready ] && kill -0 $pid 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
if [ -e "$R"/ready ]; then cat "$R"/ready; echo; else echo '{}'; fi
kill $pid; wait $pid || true
cat /tmp/snapshot-test.out
"""


@pytest.mark.parametrize("snapshot", ["short", "whole"])
def test_a_snapshot_that_cannot_resume_is_booted_instead(lab, snapshot):
    container = lab.container("client-ppc")
    guest_env = [f"--env={item}" for item in container.attrs["Config"]["Env"] if item.startswith("SOCKETLAB_GUEST_")]
    result = subprocess.run(["docker", "run", "--rm", "--network=none", "--cap-add=NET_ADMIN", "--device=/dev/net/tun",
                             "--memory=1g", *guest_env, container.attrs["Image"], "sh", "-c", FALLBACK, "fallback", snapshot],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result
    ready_line, out = result.stdout.split("\n", 1)
    ready = json.loads(ready_line)
    if snapshot == "whole":  # the control: this set-up resumes the whole snapshot
        assert ready.get("resumed") is True, result.stdout
        assert "booting it" not in out, out
        return
    assert ready.get("resumed") is False, result.stdout
    assert "qemu-system-ppc64: load of migration failed" in out, out
    assert re.search(r"^guest-supervisor: the guest did not resume from its snapshot \(QEMU exit status 1[^)]*\): "
                     r"booting it$", out, re.M), out
    assert "socketlab-guest: settings applied: " in out, out
