#!/usr/bin/env python3
"""What the lab costs when it is left running with nothing to do.

    python3 benchmarks/idle_lab.py [--seconds 60] [--processes] [--up] [--settle 5]

Reads each lab container's CPU time (its cgroup's counter, the number `docker stats` shows)
at the start and the end of the window and prints, per service, the CPU used as a
percentage of one core; the total is the lab's idle cost. Health checks are part of it:
each probe is a process started in the container. Below the table, the engine's own share
for these containers (dockerd, containerd and the lab's containerd-shims, which start every
probe with runc): host-side, not in `docker stats`, shared with any other Docker user of
the machine. Prints numbers; nothing is asserted.

It measures the lab that is running (project `socketlab`, or lab N's with SOCKETLAB_LAB=N:
the cost of one more lab beside the first); it brings nothing up unless
asked: --up runs `docker compose up -d --wait` first and prints how long that took. Either
way it waits until every health check is healthy and the guest's start-up demo has
finished (their own signals), then --settle seconds, then measures --seconds.
--processes adds the processes that used CPU in the window (read from the host's /proc,
so only where the containers' processes are visible, as on a Docker host); what no process
alive at the end accounts for was spent by processes that exited, mostly health checks.
"""

import argparse
import glob
import http.client
import json
import os
import socket
import subprocess
import sys
import time

PROJECT = "socketlab-%s" % os.environ["SOCKETLAB_LAB"] if os.environ.get("SOCKETLAB_LAB") else "socketlab"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
GUEST_DEMO = "/run/socketlab-guest/demo.status"  # written by guest-supervisor after the demo


# -- the lab's containers ----------------------------------------------------------------------

def containers():
    """{service: full container id} of the project's running containers."""
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--filter", "label=com.docker.compose.project=%s" % PROJECT,
         "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'],
        check=True, capture_output=True, text=True).stdout
    return {service: cid for cid, service in (line.split() for line in out.splitlines())}


def inspect(cid):
    return json.loads(subprocess.run(["docker", "inspect", cid], check=True, capture_output=True,
                                     text=True).stdout)[0]


def wait_until_idle(lab, timeout):
    """Every health check healthy, and the guest's demo done: the services' own signals."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = []
        for service, cid in lab.items():
            state = inspect(cid)["State"]
            health = (state.get("Health") or {}).get("Status")
            if health not in (None, "healthy"):
                waiting.append("%s %s" % (service, health))
        if "client-ppc" in lab and not waiting:
            done = subprocess.run(["docker", "exec", lab["client-ppc"], "test", "-e", GUEST_DEMO])
            if done.returncode != 0:
                waiting.append("client-ppc: the guest's demo")
        if not waiting:
            return
        if time.monotonic() > deadline:
            sys.exit("idle_lab: still waiting after %d s for: %s" % (timeout, ", ".join(waiting)))
        time.sleep(1)


# -- CPU counters -------------------------------------------------------------------------------

def cgroup_reader(cid):
    """A function returning the container's CPU time in ns, from its cgroup when this host
    shows it (v1 cpuacct.usage, v2 cpu.stat usage_usec), else from the Engine API."""
    for path in (glob.glob("/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage" % cid)
                 + glob.glob("/sys/fs/cgroup/cpu,cpuacct/docker/%s/cpuacct.usage" % cid)):
        return lambda: int(open(path).read())
    for path in (glob.glob("/sys/fs/cgroup/docker/%s/cpu.stat" % cid)
                 + glob.glob("/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat" % cid)):
        return lambda: 1000 * int(dict(line.split() for line in open(path))["usage_usec"])
    return lambda: api_stats(cid)["cpu_stats"]["cpu_usage"]["total_usage"]


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api_stats(cid):
    conn = _UnixHTTP(os.environ.get("DOCKER_SOCK", "/var/run/docker.sock"))
    conn.request("GET", "/containers/%s/stats?stream=false&one-shot=true" % cid)
    return json.loads(conn.getresponse().read())


def proc_stat(pid):
    """(comm, utime + stime, cutime + cstime) in clock ticks, or None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def processes(lab):
    """{pid: (owner, comm, own ticks, reaped children's ticks)}: the lab's processes (owner
    a service) and the engine's (owner "engine"), from the host's /proc."""
    owner_of = {cid: service for service, cid in lab.items()}
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/cgroup" % pid) as f:
                cgroup = f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        owner = next((owner_of[cid] for cid in owner_of if cid in cgroup), None)
        name = os.path.basename(argv[0].decode(errors="replace")) if argv[0] else ""
        if owner is None and (name in ("dockerd", "containerd") or (
                name.startswith("containerd-shim") and any(cid.encode() in argv for cid in owner_of))):
            owner = "engine"
        stat = owner and proc_stat(pid)
        if stat:
            found[pid] = (owner, " ".join(a.decode(errors="replace") for a in argv if a)[:70] or stat[0],
                          stat[1], stat[2])
    return found


# -- the measurement ----------------------------------------------------------------------------

def pct(ns, seconds):
    return 100.0 * ns / (seconds * 1e9)


def measure(lab, seconds, with_processes):
    readers = {service: cgroup_reader(cid) for service, cid in lab.items()}
    procs0 = processes(lab)
    t0 = time.monotonic()
    start = {service: read() for service, read in readers.items()}
    time.sleep(seconds)  # the window: nothing to wait for, the lab is being left alone
    end = {service: read() for service, read in readers.items()}
    elapsed = time.monotonic() - t0
    procs1 = processes(lab)

    used = {service: end[service] - start[service] for service in lab}
    print("\nidle lab, %.0f s window: CPU as %% of one core (the containers' cgroups, as docker stats)"
          % elapsed)
    print("  %-18s %8s %10s" % ("service", "% core", "CPU ms"))
    for service in sorted(lab):
        print("  %-18s %7.2f%% %10.0f" % (service, pct(used[service], elapsed), used[service] / 1e6))
    total = sum(used.values())
    print("  %-18s %7.2f%% %10.0f" % ("total", pct(total, elapsed), total / 1e6))

    rows = []
    for pid, (owner, argv, own, reaped) in procs1.items():
        before = procs0.get(pid)
        # a process born in the window counts whole; for the engine, its reaped children too (runc)
        d_own = own - (before[2] if before else 0)
        d_reaped = reaped - (before[3] if before else 0)
        rows.append((owner, pid, argv, d_own * 1e9 / TICK, d_reaped * 1e9 / TICK))
    if procs1:
        shims = sum(own + reaped for owner, _, argv, own, reaped in rows
                    if owner == "engine" and "containerd-shim" in argv)
        daemons = sum(own + reaped for owner, _, argv, own, reaped in rows
                      if owner == "engine" and "containerd-shim" not in argv)
        print("host side, not in docker stats:")
        print("  %-18s %7.2f%% %10.0f   the containers' containerd-shims and what they reaped: the runc"
              % ("lab's shims", pct(shims, elapsed), shims / 1e6))
        print("  %-18s %8s %10s    of every exec and health check, and those processes (again)" % ("", "", ""))
        print("  %-18s %7.2f%% %10.0f   the whole engine, shared with any other Docker user of the host"
              % ("dockerd+containerd", pct(daemons, elapsed), daemons / 1e6))
    if with_processes and procs1:
        print("\nprocesses that used CPU in the window (clock ticks of %.0f ms):" % (1000 / TICK))
        for service in sorted(lab):
            mine = sorted((r for r in rows if r[0] == service), key=lambda r: -r[3])
            seen = sum(r[3] for r in mine)
            for _, pid, argv, own, _ in mine:
                if own:
                    print("  %-16s %7.2f%%  %6d  %s" % (service, pct(own, elapsed), pid, argv))
            gone = used[service] - seen
            if gone > 1e6 * 1000 / TICK:
                print("  %-16s %7.2f%%          exited in the window (health checks, execs)"
                      % (service, pct(gone, elapsed)))
        for _, pid, argv, own, reaped in sorted((r for r in rows if r[0] == "engine"),
                                                key=lambda r: -(r[3] + r[4])):
            if own + reaped:
                print("  %-16s %7.2f%%  %6d  %s%s" % ("engine", pct(own + reaped, elapsed), pid, argv,
                                                      "  (%.2f%% its children)" % pct(reaped, elapsed)
                                                      if reaped else ""))
    return pct(total, elapsed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="the window (default 60)")
    parser.add_argument("--settle", type=float, default=5,
                        help="seconds to wait once every service signals it is up (default 5)")
    parser.add_argument("--up", action="store_true", help="run `docker compose up -d --wait` first")
    parser.add_argument("--processes", action="store_true", help="also list the processes' CPU")
    args = parser.parse_args()

    if args.up:
        t0 = time.monotonic()
        subprocess.run(["docker", "compose", "up", "-d", "--wait"], cwd=ROOT, check=True)
        print("docker compose up -d --wait: %.1f s" % (time.monotonic() - t0))
    lab = containers()
    if not lab:
        sys.exit("idle_lab: no running container of project %s (docker compose up -d --wait)" % PROJECT)
    wait_until_idle(lab, timeout=300)
    time.sleep(args.settle)
    measure(lab, args.seconds, args.processes)


if __name__ == "__main__":
    main()
