#!/usr/bin/env python3
"""How long `docker compose up -d --wait` takes on a warm machine, and where the seconds go.

    python3 benchmarks/lab_up.py [--runs 5] [--labs K]

Prints numbers; it is not a test (nothing is asserted). Each run takes the lab down (not
timed; the pki volume stays, as it does between a user's runs), then times `up -d --wait`
with every image built. After each run it reads, from `docker inspect`, when each container
started and when its health check first passed, relative to the router's start: the chain
issue 20 describes (router -> server -> clients -> guest). Prints each run's timeline and the
median of the wall times. Target (issue 20): <= 10 s, median of 5.

--labs K (issue 18, docs/scale.md): one lab, then labs 0 .. K-1 brought up at once (one `up`
each, SOCKETLAB_LAB=N), in turn for each run; prints the medians and their ratio (target for
two: <= 1.5).

--cpu: with each run, the CPU its `up` cost: the machine's busy core-seconds (/proc/stat), each
container's (its cgroup, counted from its start, when `up` returns) and the engine's daemons'
(dockerd and containerd with what they reaped: the iptables and runc they ran), the same
counters as benchmarks/idle_lab.py's. What two labs at once cost on two cores follows from it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def compose(*args, check=True, lab=0):
    return subprocess.run(["docker", "compose", *args], cwd=REPO, capture_output=True, text=True,
                          check=check, timeout=600, env=instance(lab))


def instance(n):
    """The environment that names lab ``n`` (0: the variable unset)."""
    return {**os.environ, "SOCKETLAB_LAB": str(n) if n else ""}


def together(k):
    """Labs 0 .. k-1 down, then up at once: the wall time until the last is up and healthy."""
    for n in range(k):
        compose("down", "--remove-orphans", lab=n)
    t0 = time.monotonic()
    ups = [subprocess.Popen(["docker", "compose", "up", "-d", "--wait"], cwd=REPO, env=instance(n),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for n in range(k)]
    for n, up in enumerate(ups):
        _, err = up.communicate(timeout=600)
        if up.returncode:
            sys.exit(f"lab {n}: up failed: {err.strip()[-800:]}")
    return time.monotonic() - t0


def many(runs, k):
    one, all_k = [], []
    for run in range(1, runs + 1):
        for n in range(1, k):
            compose("down", "--remove-orphans", lab=n)
        one.append(together(1))
        all_k.append(together(k))
        print(f"run {run}: one lab {one[-1]:.1f} s, {k} labs at once {all_k[-1]:.1f} s", flush=True)
    for n in range(1, k):
        compose("down", "--remove-orphans", lab=n)
    a, b = statistics.median(one), statistics.median(all_k)
    print(f"up -d --wait, warm, median of {runs}: one lab {a:.1f} s, {k} labs at once {b:.1f} s: "
          f"{b / a:.2f}x (target for two <= 1.5x)")


def when(stamp):
    """Docker's RFC 3339 time with nanoseconds, as seconds since the epoch."""
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, rest = stamp.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:6] if rest else "0"
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + fraction)


def timeline():
    """{service: (started, first healthy or None)} in seconds since the epoch."""
    ids = compose("ps", "-a", "-q").stdout.split()
    rows = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                     check=True).stdout)
    out = {}
    for row in rows:
        service = row["Config"]["Labels"].get("com.docker.compose.service")
        state = row["State"]
        passed = [when(entry["End"]) for entry in (state.get("Health") or {}).get("Log", [])
                  if entry.get("ExitCode") == 0]
        out[service] = (when(state.get("StartedAt")), min(passed) if passed else None)
    return out


def busy():
    """Core-seconds this machine has spent busy since boot (all CPUs; idle and iowait aside)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK


def engine_cpu():
    """{dockerd, containerd: core-seconds, with their reaped children} from /proc."""
    from idle_lab import proc_stat

    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        stat = proc_stat(int(pid))
        if stat and stat[0] in ("dockerd", "containerd"):
            out[stat[0]] = out.get(stat[0], 0) + (stat[1] + stat[2]) / TICK
    return out


def containers_cpu():
    """{service: core-seconds} of the lab's containers, since each started."""
    from idle_lab import cgroup_reader

    ids = compose("ps", "-a", "-q").stdout.split()
    rows = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                     check=True).stdout)
    return {row["Config"]["Labels"]["com.docker.compose.service"]: cgroup_reader(row["Id"])() / 1e9
            for row in rows if row["State"]["Running"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--labs", type=int, default=1, help="labs at once, against one (issue 18)")
    parser.add_argument("--cpu", action="store_true", help="what each run's `up` cost in CPU")
    args = parser.parse_args()
    if args.labs > 1:
        return many(args.runs, args.labs)
    walls = []
    for run in range(1, args.runs + 1):
        compose("down", "--remove-orphans")
        engine0, busy0 = engine_cpu(), busy()
        t0, began = time.monotonic(), time.time()
        up = compose("up", "-d", "--wait", check=False)
        wall = time.monotonic() - t0
        machine, engine1 = busy() - busy0, engine_cpu()
        if up.returncode != 0:
            sys.exit(f"run {run}: up failed after {wall:.1f} s: {up.stderr.strip()[-800:]}")
        walls.append(wall)
        seen = timeline()
        zero = seen["router"][0]
        print(f"run {run}: up --wait {wall:.1f} s; from the router's start (`up` began "
              f"{began - zero:+.1f} s, returned {began + wall - zero:+.1f} s):", flush=True)
        for service, (started, healthy) in sorted(seen.items(), key=lambda kv: kv[1][0] or 0):
            first = f"healthy +{healthy - zero:.1f} s" if healthy else "no health check"
            print(f"    {service:<16} started +{started - zero:.1f} s, {first}")
        if args.cpu:
            used = containers_cpu()
            engine = {name: engine1[name] - engine0.get(name, 0) for name in engine1}
            print(f"  CPU: the machine {machine:.1f} core-s ({100 * machine / wall / os.cpu_count():.0f} % of "
                  f"{os.cpu_count()} cores); containers {sum(used.values()):.1f} ("
                  + ", ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]))
                  + "); engine " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(engine.items())))
    print(f"up -d --wait, warm: median {statistics.median(walls):.1f} s over {len(walls)} runs "
          f"({', '.join(f'{w:.1f}' for w in walls)}); target <= 10 s")


if __name__ == "__main__":
    main()
