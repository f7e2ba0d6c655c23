"""Container hardening (compose.yaml ``x-hardening``, docs/lab.md#hardening), per service.

From ``docker inspect``: every capability dropped and only the service's own set added back,
no-new-privileges, a read-only root filesystem, a pids limit and a memory limit, no writable
mounts, no devices but the guest's /dev/net/tun. From inside: every process of the service's
own tree (PID 1, which is tini, and its descendants) runs as socketlab (uid 10001) with no
capabilities and no_new_privs; the root filesystem refuses writes, even from root; the kernel
enforces the limits that inspect reports.

Negative controls: the same check functions applied to deliberately broken inspect data and
to a real root process (``docker compose exec -u root``) report every violation.
"""

from __future__ import annotations

import copy
import json

import pytest

SOCKETLAB_UID = 10001

# The one table of what each service may add back (compose.yaml says why, per service).
ALLOWED_CAPS = {
    "router": {"NET_ADMIN", "NET_RAW", "SETUID", "SETGID"},
    "server": {"NET_ADMIN", "SETUID", "SETGID"},
    "peer": {"NET_ADMIN", "SETUID", "SETGID"},
    "client": {"NET_ADMIN", "SETUID", "SETGID"},
    "client-ppc": {"NET_ADMIN", "SETUID", "SETGID"},
    "client-ppc-user": {"NET_ADMIN", "SETUID", "SETGID"},
}
DEVICES = {"client-ppc": {"/dev/net/tun"}}
# A process that must be in the service's tree (comm, at most 15 characters): the check
# below is about the real long-running processes, not an empty list.
LONG_RUNNING = {
    "router": "sleep",
    "server": "socketlab",
    "peer": "sleep",
    "client": "sleep",
    "client-ppc": "qemu-system-ppc",
    "client-ppc-user": "sleep",
}
GUEST_SERVICES = {"client-ppc", "client-ppc-user"}
SERVICES = [pytest.param(s, id=s, marks=pytest.mark.guest if s in GUEST_SERVICES else pytest.mark.lab)
            for s in ALLOWED_CAPS]

# Every process's identity, read from /proc (python3 is in both images). One JSON line.
PROCESS_TABLE = r"""
import json, os
rows = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open("/proc/%s/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    except OSError:
        continue  # exited meanwhile
    rows.append({"pid": int(pid), "ppid": int(status["PPid"]), "name": status["Name"].strip(),
                 "uid": [int(x) for x in status["Uid"].split()], "gid": [int(x) for x in status["Gid"].split()],
                 "caps": {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")},
                 "no_new_privs": int(status["NoNewPrivs"])})
print(json.dumps(rows))
"""


def _caps(names) -> set[str]:
    return {name.upper().removeprefix("CAP_") for name in names or ()}


def policy_violations(service: str, attrs: dict) -> list[str]:
    """What in one container's ``docker inspect`` breaks the policy (empty: nothing)."""
    host = attrs["HostConfig"]
    problems = []
    if _caps(host.get("CapDrop")) != {"ALL"}:
        problems.append(f"CapDrop is {host.get('CapDrop')!r}, not ['ALL']")
    if _caps(host.get("CapAdd")) != ALLOWED_CAPS[service]:
        problems.append(f"CapAdd is {sorted(_caps(host.get('CapAdd')))!r}, "
                        f"not {sorted(ALLOWED_CAPS[service])!r}")
    if host.get("Privileged"):
        problems.append("Privileged is true")
    options = [opt.replace("=", ":") for opt in host.get("SecurityOpt") or ()]
    if not any(opt in ("no-new-privileges", "no-new-privileges:true") for opt in options):
        problems.append(f"SecurityOpt {host.get('SecurityOpt')!r} lacks no-new-privileges")
    if host.get("ReadonlyRootfs") is not True:
        problems.append("ReadonlyRootfs is not true")
    if not (host.get("PidsLimit") or 0) > 0:
        problems.append(f"PidsLimit is {host.get('PidsLimit')!r}, not a positive limit")
    if not (host.get("Memory") or 0) > 0:
        problems.append(f"Memory is {host.get('Memory')!r}, not a positive limit")
    devices = {d["PathOnHost"] for d in host.get("Devices") or ()}
    if devices != DEVICES.get(service, set()):
        problems.append(f"Devices are {sorted(devices)!r}, not {sorted(DEVICES.get(service, set()))!r}")
    writable = [m.get("Destination") for m in attrs.get("Mounts") or () if m.get("RW")]
    if writable:
        problems.append(f"writable mounts {writable!r} (only tmpfs may be written)")
    return problems


def process_violations(row: dict) -> list[str]:
    """What in one process's identity (a PROCESS_TABLE row) breaks the policy."""
    problems = []
    where = f"pid {row['pid']} ({row['name']})"
    if set(row["uid"]) != {SOCKETLAB_UID} or set(row["gid"]) != {SOCKETLAB_UID}:
        problems.append(f"{where} runs as uid {row['uid']} gid {row['gid']}, not socketlab")
    for kind, value in row["caps"].items():
        if value:
            problems.append(f"{where} has {kind} {value:#x}")
    if row["no_new_privs"] != 1:
        problems.append(f"{where} lacks no_new_privs")
    return problems


def main_tree(rows: list[dict]) -> list[dict]:
    """PID 1 and its descendants: the service itself, without `docker exec` sessions (a
    health check, this test's own reader), whose parent is outside the container (PPid 0)."""
    children: dict[int, list[dict]] = {}
    for row in rows:
        children.setdefault(row["ppid"], []).append(row)
    tree = [row for row in rows if row["pid"] == 1]
    for row in tree:
        tree.extend(children.get(row["pid"], []))
    return tree


def process_table(lab, service: str, user: str = "socketlab") -> list[dict]:
    result = lab.run(service, "python3", "-c", PROCESS_TABLE, user=user, timeout=30)
    assert result.returncode == 0, str(result)
    return json.loads(result.stdout)


# -- the policy, service by service ----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_inspect_shows_the_policy(lab, service):
    attrs = lab.container(service).attrs
    assert policy_violations(service, attrs) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_process_of_the_service_runs_unprivileged(lab, service):
    # The router's session capture (tcpdump, reparented to tini) is in the tree too: it opens
    # the capture as root and runs as the unprivileged user, so it must pass the same checks.
    tree = main_tree(process_table(lab, service))
    names = sorted(row["name"] for row in tree)
    assert [row["name"] for row in tree if row["pid"] == 1] == ["tini"], names
    assert LONG_RUNNING[service] in names, names
    assert [problem for row in tree for problem in process_violations(row)] == [], names


@pytest.mark.parametrize("service", SERVICES)
def test_root_filesystem_is_read_only_even_for_root(lab, service):
    result = lab.root(service, "touch", "/etc/socketlab-hardening-probe")
    assert result.returncode != 0 and "Read-only file system" in result.stderr, str(result)
    writable = lab.run(service, "sh", "-c", "touch /tmp/probe && rm /tmp/probe")
    assert writable.returncode == 0, f"/tmp must stay writable (tmpfs):\n{writable}"


@pytest.mark.parametrize("service", SERVICES)
def test_kernel_enforces_the_limits_inspect_reports(lab, service):
    host = lab.container(service).attrs["HostConfig"]
    # cgroup v2 files first, then cgroup v1's
    script = ("cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; "
              "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    result = lab.run(service, "sh", "-c", script)
    assert result.returncode == 0, str(result)
    assert result.stdout.split() == [str(host["PidsLimit"]), str(host["Memory"])]


# -- negative controls: the checks above can fail --------------------------------------------------


BREAKAGES = {
    "cap_drop missing": lambda h: h.update(CapDrop=None),
    "an extra capability": lambda h: h.update(CapAdd=[*(h["CapAdd"] or []), "SYS_ADMIN"]),
    "a capability short": lambda h: h.update(CapAdd=sorted(h["CapAdd"])[1:]),
    "privileged": lambda h: h.update(Privileged=True),
    "new privileges allowed": lambda h: h.update(SecurityOpt=None),
    "writable root": lambda h: h.update(ReadonlyRootfs=False),
    "no pids limit": lambda h: h.update(PidsLimit=None),
    "no memory limit": lambda h: h.update(Memory=0),
    "a device": lambda h: h.update(Devices=[{"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm"}]),
}


@pytest.mark.lab
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_policy_check_catches_a_violation(lab, breakage):
    attrs = copy.deepcopy(lab.container("server").attrs)
    assert policy_violations("server", attrs) == []
    BREAKAGES[breakage](attrs["HostConfig"])
    assert len(policy_violations("server", attrs)) == 1, breakage


@pytest.mark.lab
def test_policy_check_catches_a_writable_mount(lab):
    attrs = copy.deepcopy(lab.container("server").attrs)
    attrs["Mounts"] = [*(attrs.get("Mounts") or []), {"Type": "bind", "Destination": "/srv", "RW": True}]
    assert policy_violations("server", attrs) == ["writable mounts ['/srv'] (only tmpfs may be written)"]


@pytest.mark.lab
def test_process_check_catches_a_root_process(lab):
    # A real root process in the router (its own `docker exec -u root`): uid 0 and the
    # router's capabilities, which the check must report; the same reader as socketlab
    # passes it.
    rows = process_table(lab, "router", user="root")
    me = [row for row in rows if row["name"] == "python3" and row["uid"][0] == 0]
    assert len(me) == 1, rows
    problems = process_violations(me[0])
    assert any("not socketlab" in p for p in problems), problems
    assert any("CapEff" in p for p in problems), problems
    assert me[0] not in main_tree(rows), "a `docker exec` session is not part of the service's tree"
    unprivileged = [row for row in process_table(lab, "router") if row["name"] == "python3"]
    assert len(unprivileged) == 1 and process_violations(unprivileged[0]) == [], unprivileged
