#!/usr/bin/env python3
"""Boot times of the big-endian PowerPC guest, and the fast tier's per-run overhead.

    python3 benchmarks/guest_boot.py [--runs 5] [--image socketlab-ppc:latest] [--no-tls] [--no-snapshot]
    python3 benchmarks/guest_boot.py --cold 10      # ten fresh containers, one boot each

Prints numbers; it is not a test (nothing is asserted). It runs one throw-away container of the
guest image (on Docker's default bridge, with a private tap0: no lab network needed) and in it:

* full system: QEMU start -> "socketlab-guest: ready" (app-server listening, exec agent up),
  measured by guest-supervisor, over --runs starts, each resumed from the image's boot snapshot
  (--no-snapshot: booted, as before the snapshot; qemu/README.md, "Boot snapshot"); then the round trip of one trivial
  guest-exec in the booted guest. As in the lab, the guest gets a CA and its certificate (made
  here by services/pki/make-pki.sh, mounted at /pki) and serves TLS on 65439 too; --no-tls
  boots it without them (the plain app-server only), for an A/B;
* fast tier: `ppc-python -c pass` (qemu-ppc64-static) vs the image's native `python3 -c pass`,
  and `socketlab-ppc --help` vs native `python3 -m socketlab --help`.

Target (LAB-NOTES): guest ready < 5 s warm.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def summary(values):
    return "median %.2f s  min %.2f s  max %.2f s  (%s)" % (
        statistics.median(values), min(values), max(values), ", ".join("%.2f" % v for v in values))


def timed(argv, runs, env=None):
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        out.append(time.monotonic() - t0)
    return out


def boot_once():
    """One boot under guest-supervisor; returns (QEMU start -> ready seconds, guest uptime)."""
    env = dict(os.environ, SOCKETLAB_DEMO_SERVER="")
    sup = subprocess.Popen(["guest-supervisor"], stdout=subprocess.PIPE, text=True, env=env)
    ready = uptime = None
    try:
        for line in sup.stdout:
            if line.startswith("socketlab-guest: ready"):
                uptime = float(line.split("uptime")[1].split()[0])
            if line.startswith("guest-supervisor: guest ready"):
                ready = float(line.split("ready")[1].split()[0])
                break
        else:
            raise RuntimeError("guest-supervisor ended before the guest was ready")
        return ready, uptime, sup
    except BaseException:
        sup.terminate()
        sup.wait()
        raise


def inside(runs, boot_only=False):
    subprocess.run(["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"], check=False)
    subprocess.run(["ip", "addr", "replace", os.environ["SOCKETLAB_GUEST_GW4"], "dev", "tap0"], check=True)
    subprocess.run(["ip", "link", "set", "tap0", "up"], check=True)

    print("full system (qemu-system-ppc64, TCG, VOF): QEMU start -> guest ready")
    readies, uptimes, exec_rt = [], [], []
    for i in range(runs):
        ready, uptime, sup = boot_once()
        readies.append(ready)
        uptimes.append(uptime)
        print("  run %d: %.2f s (guest kernel uptime at ready %.2f s)" % (i + 1, ready, uptime), flush=True)
        if i == runs - 1 and not boot_only:
            exec_rt = timed(["guest-exec", "python3", "-c", "pass"], 5)
            exec_true = timed(["guest-exec", "python3", "-S", "-c", "pass"], 5)
        sup.terminate()
        sup.wait()
    if boot_only:
        return
    print("  ready:       " + summary(readies))
    print("  cold (run 1) %.2f s, warm (runs 2..) median %.2f s" % (
        readies[0], statistics.median(readies[1:] or readies)))
    print("  guest-exec python3 -c pass:    " + summary(exec_rt))
    print("  guest-exec python3 -S -c pass: " + summary(exec_true))

    print("fast tier (qemu-ppc64-static) vs native python3, per run")
    native_env = dict(os.environ, PYTHONPATH=os.path.join(os.environ.get("SOCKETLAB_PPC_ROOT", "/opt/ppc-root"),
                                                          "opt/socketlab"))
    n = max(runs, 5)
    ppc = timed(["ppc-python", "-c", "pass"], n)
    nat = timed(["python3", "-c", "pass"], n)
    print("  ppc-python -c pass:       " + summary(ppc))
    print("  python3 -c pass (native): " + summary(nat))
    print("  overhead per start:       %.2f s" % (statistics.median(ppc) - statistics.median(nat)))
    ppc = timed(["socketlab-ppc", "--help"], n)
    nat = timed(["python3", "-m", "socketlab", "--help"], n, env=native_env)
    print("  socketlab-ppc --help:              " + summary(ppc))
    print("  python3 -m socketlab --help (native): " + summary(nat))
    print("  overhead per socketlab command:    %.2f s" % (statistics.median(ppc) - statistics.median(nat)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="socketlab-ppc:latest")
    parser.add_argument("--no-tls", action="store_true", help="no /pki: the guest serves plain only")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="boot the guest instead of resuming the image's boot snapshot (qemu/README.md)")
    parser.add_argument("--cold", type=int, default=0, metavar="N",
                        help="instead: N fresh containers, one boot each (cold boots), and their median")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--boot-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.runs, args.boot_only)
        return 0
    # The guest's addresses as the lab gives them (the instance SOCKETLAB_LAB names): none is built in.
    config = json.loads(subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=os.path.dirname(HERE),
                                       capture_output=True, text=True, check=True).stdout)
    lab_env = {key: value for key, value in config["services"]["client-ppc"]["environment"].items()
               if key.startswith("SOCKETLAB_GUEST_")}
    with tempfile.TemporaryDirectory() as pki:
        mounts = ["-v", "%s:/bench:ro" % HERE]
        if not args.no_tls:
            subprocess.run([os.path.join(HERE, "..", "services", "pki", "make-pki.sh"), pki,
                            "guest=DNS:guest,IP:%s" % lab_env["SOCKETLAB_GUEST_V4"].split("/")[0]],
                           check=True, stdout=subprocess.DEVNULL)
            mounts += ["-v", "%s:/pki:ro" % pki]
        argv = ["docker", "run", "--rm", "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun",
                "--sysctl", "net.ipv4.ip_forward=1", *mounts,
                *(arg for key, value in sorted(lab_env.items()) for arg in ("-e", "%s=%s" % (key, value))),
                *(["-e", "SOCKETLAB_GUEST_SNAPSHOT=0"] if args.no_snapshot else []),
                args.image, "python3", "/bench/guest_boot.py", "--inside"]
        if not args.cold:
            argv += ["--runs", str(args.runs)]
            print("$ " + " ".join(argv), flush=True)
            return subprocess.run(argv).returncode
        argv += ["--runs", "1", "--boot-only"]
        print("$ " + " ".join(argv) + "  # %d times" % args.cold, flush=True)
        cold = []
        for i in range(args.cold):
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            cold.append(float(out.split("run 1: ")[1].split()[0]))
            print("  container %d: %.2f s" % (i + 1, cold[-1]), flush=True)
        print("  cold (first boot of a fresh container): " + summary(cold))
        return 0


if __name__ == "__main__":
    sys.exit(main())
