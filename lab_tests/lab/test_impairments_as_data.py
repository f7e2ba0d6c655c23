"""Impairments as data: declared in the router's environment, applied when it starts.

compose.yaml gives the router ``IMPAIR_<NET>`` (impair.sh options for what it sends into that
network; empty: none) and ``IMPAIR_BACKEND``; services/router/start.sh runs ``impair.sh
apply`` after the firewall. The backend is tc netem where the kernel has sch_netem, else the
NFQUEUE helper (services/router/netem.py). Here:

* the selection, read from ``impair.sh plan`` (which prints the backend and the exact commands
  and changes nothing), follows the kernel; the netem command line is asserted with the backend
  forced (``IMPAIR_BACKEND=netem``), on a kernel without netem too; the helper's likewise;
* forcing netem where the kernel lacks it fails loudly and leaves nothing behind;
* what impair.sh cannot do, it refuses with one line;
* a router recreated with impairments declared (``lab.recreate``: compose interpolates
  ``IMPAIR_*`` from the environment of ``docker compose up``) starts impaired: delay and rate
  felt by the client, the duplicates the helper counts seen on the wire; recreated as
  compose.yaml has it, it is not (the negative control).
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest

from lab_tests import packets, topology

IMPAIR = "/opt/socketlab/router/impair.sh"
ALL = ["--delay", "20", "--jitter", "10", "--loss", "3", "--reorder", "10", "--duplicate", "1", "--rate", "1000"]
HELPER = ("setpriv --reuid=socketlab --regid=socketlab --init-groups --inh-caps=-all,+net_admin,+net_raw "
          "--ambient-caps=+net_admin,+net_raw --no-new-privs -- python3 /opt/socketlab/router/netem.py")


def impair(lab, *argv: str, backend: str = "", **environment: str):
    """impair.sh as root in the router, with IMPAIR_BACKEND and any IMPAIR_<NET> set."""
    env = [f"{name}={value}" for name, value in {"IMPAIR_BACKEND": backend, **environment}.items()]
    return lab.root("router", "env", *env, IMPAIR, *argv)


def interface(lab, network: str) -> tuple[str, int]:
    """The router's interface on ``network`` (the one with its address there) and its index."""
    address = topology.address("router", network, 4)
    shown = lab.root("router", "ip", "-o", "-4", "addr", "show")
    [line] = [line for line in shown.stdout.splitlines() if f" {address}/" in line]
    index, name = line.split()[:2]
    return name, int(index.rstrip(":"))


def kernel_has_netem(lab) -> bool:
    """The kernel's own answer: can a netem qdisc be made (on the router's loopback)?"""
    made = lab.root("router", "tc", "qdisc", "add", "dev", "lo", "root", "netem")
    if made.returncode == 0:
        lab.root("router", "tc", "qdisc", "del", "dev", "lo", "root")
    return made.returncode == 0


def test_the_backend_follows_the_kernel(lab):
    has_netem = kernel_has_netem(lab)
    plan = impair(lab, "plan", "--net", "clientnet", "--delay", "20")
    assert plan.returncode == 0, str(plan)
    expected = "netem (the kernel has sch_netem)" if has_netem else "nfqueue (the kernel has no sch_netem)"
    assert plan.stdout.splitlines()[0] == f"impair: clientnet: backend {expected}", str(plan)
    if has_netem:
        return
    # Negative control: netem forced where the kernel lacks it fails, and leaves nothing.
    forced = impair(lab, "start", "--net", "clientnet", "--delay", "20", backend="netem")
    assert forced.returncode != 0 and "tc qdisc replace" in forced.stderr + forced.stdout, str(forced)
    left = lab.root("router", "sh", "-c", "ls /run/socketlab-impair; tc qdisc show; iptables -t security -S FORWARD")
    assert ".state" not in left.stdout and "netem" not in left.stdout and "NFQUEUE" not in left.stdout, str(left)


def test_the_netem_command_line(lab):
    dev, _ = interface(lab, "servernet")
    plan = impair(lab, "plan", "--net", "servernet", *ALL, backend="netem")
    assert plan.returncode == 0, str(plan)
    assert plan.stdout.splitlines() == [
        "impair: servernet: backend netem (IMPAIR_BACKEND=netem)",
        f"tc qdisc replace dev {dev} root netem delay 20ms 10ms loss 3% reorder 10% duplicate 1% rate 1000kbit",
    ]
    # What start.sh runs: one qdisc per declared network, on that network's interface.
    client_dev, _ = interface(lab, "clientnet")
    plan = impair(lab, "apply", "--plan", backend="netem", IMPAIR_CLIENTNET="--delay 50", IMPAIR_SERVERNET="--loss 2")
    assert plan.returncode == 0, str(plan)
    assert plan.stdout.splitlines() == [
        "impair: clientnet: backend netem (IMPAIR_BACKEND=netem)",
        f"tc qdisc replace dev {client_dev} root netem delay 50ms",
        "impair: servernet: backend netem (IMPAIR_BACKEND=netem)",
        f"tc qdisc replace dev {dev} root netem loss 2%",
    ]


def test_the_helper_command_line(lab):
    dev, index = interface(lab, "clientnet")
    plan = impair(lab, "plan", "--net", "clientnet", *ALL, "--seed", "7", backend="nfqueue")
    assert plan.returncode == 0, str(plan)
    rule = f"-t security -A FORWARD -o {dev} -p tcp -j NFQUEUE --queue-num {index} --queue-bypass"
    assert plan.stdout.splitlines() == [
        "impair: clientnet: backend nfqueue (IMPAIR_BACKEND=nfqueue)",
        f"{HELPER} --queue {index} --delay 20 --jitter 10 --reorder 10 --loss 3 --duplicate 1 --rate 1000 --seed 7",
        f"iptables -w 5 {rule}",
        f"ip6tables -w 5 {rule}",
    ]
    # Without --net: everything forwarded, both ways, on queue 0 (what the tests' `netem` uses).
    plan = impair(lab, "plan", "--delay", "20", backend="nfqueue")
    rule = "-t security -A FORWARD -p tcp -j NFQUEUE --queue-num 0 --queue-bypass"
    assert plan.stdout.splitlines()[1:] == [f"{HELPER} --queue 0 --delay 20", f"iptables -w 5 {rule}",
                                            f"ip6tables -w 5 {rule}"], str(plan)


@pytest.mark.parametrize("argv, environment, says", [
    (["plan", "--delay", "x"], {}, "--delay 'x' is not a number"),
    (["plan", "--delay", "20", "--bogus", "1"], {}, "unknown option '--bogus'"),
    (["plan", "--reorder", "10"], {}, "--reorder needs --delay"),
    (["plan", "--net", "nonet", "--delay", "1"], {}, "no network 'nonet': NONET_V4 is not set"),
    (["plan", "--net", "client-net", "--delay", "1"], {}, "'client-net' is not a network name"),
    (["plan", "--net", "guestnet", "--delay", "1"], {}, "the router has no interface on guestnet"),
    (["plan", "--delay", "1"], {"backend": "tc"}, "IMPAIR_BACKEND is 'tc'"),
    (["apply", "--plan"], {"IMPAIR_CLIENTNET": "--delay"}, "--delay needs a value"),
], ids=["number", "option", "reorder-alone", "network", "name", "not-on-it", "backend", "declared"])
def test_what_it_cannot_do_it_refuses_in_one_line(lab, argv, environment, says):
    result = impair(lab, *argv, **environment)
    assert result.returncode == 2, str(result)
    [line] = result.stderr.splitlines()
    assert line.startswith("impair: ") and says in line, str(result)


# -- a lab declared impaired ------------------------------------------------------------------

DELAY_MS, RATE_KBIT, DUPLICATE = 150, 400, 30
SIZE = 16_000  # bytes to the echo server and back: 0.32 s at 400 kbit/s
DECLARED = {"IMPAIR_CLIENTNET": f"--delay {DELAY_MS} --duplicate {DUPLICATE} --seed 5",
            "IMPAIR_SERVERNET": f"--rate {RATE_KBIT}"}
#: One echo exchange, timed in the client from connect to the last byte back; the echo exact.
EXCHANGE = r"""
import json, socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = bytes(range(256)) * (size // 256)
start = time.monotonic()
with socket.create_connection((host, port), timeout=10) as sock:
    sock.sendall(data)
    got = b""
    while len(got) < len(data) and (chunk := sock.recv(65536)):
        got += chunk
print(json.dumps({"seconds": time.monotonic() - start, "exact": got == data}))
"""


@contextlib.contextmanager
def router_declared(lab, capture, environment: dict[str, str]):
    """The router recreated with ``environment`` (its ``IMPAIR_*``), then as compose.yaml has it."""
    try:
        up(lab, capture, environment)
        yield
    finally:
        up(lab, capture, {})


def up(lab, capture, environment: dict[str, str]) -> None:
    result = lab.recreate("router", {"IMPAIR_CLIENTNET": "", "IMPAIR_SERVERNET": "", **environment})
    assert result.returncode == 0, str(result)
    # The router's own signal that it forwards as declared, in its log: "router: ready" comes
    # after the firewall and the impairments (the health check waits for it too, but the log
    # can reach `docker compose logs` a moment after the health status turned).
    deadline = time.monotonic() + 30
    while "router: ready" not in lab.logs("router"):
        assert time.monotonic() < deadline, lab.logs("router")
        time.sleep(0.2)  # polling the router's own signal
    capture.start()  # the router's tcpdump went with the old container


def exchange_seconds(lab, server: str) -> float:
    result = lab.run("client", "python3", "-c", EXCHANGE, server, str(topology.port_of("multiconn-server")), str(SIZE))
    assert result.returncode == 0, str(result)
    answer = json.loads(result.stdout)
    assert answer["exact"], str(result)
    return answer["seconds"]


def test_a_lab_declared_impaired_starts_impaired(lab, capture):
    servers = [topology.SERVER_V4, topology.SERVER_V6]
    rate_bound = SIZE * 8 / (RATE_KBIT * 1000)
    with router_declared(lab, capture, DECLARED):
        log = lab.logs("router")
        assert "router: impair: clientnet: backend " in log and "router: impair: servernet: backend " in log, log
        for server in servers:
            # Into clientnet: the SYN-ACK held DELAY_MS. Into servernet: SIZE bytes at RATE_KBIT.
            probe = lab.probe("client", server, topology.APP_PORT)
            assert probe["outcome"] == "connected" and probe["elapsed_s"] >= DELAY_MS / 1000, probe
            assert exchange_seconds(lab, server) >= rate_bound + DELAY_MS / 1000
        stopped = lab.root("router", IMPAIR, "stop", "--net", "clientnet")
        assert stopped.returncode == 0, str(stopped)
        counters = json.loads(stopped.stdout.splitlines()[-1])
        seen = packets.read(lab.read_file("router", capture.pcap()))
        client_side = packets.interface_of(seen, topology.CLIENT_V4)
        # The copies, on the wire: what the helper says it sent twice, the capture shows twice.
        assert counters["duplicated"] > 0 and counters["copy_errors"] == 0, counters
        assert packets.duplicated(seen, client_side) == counters["duplicated"], counters
    # The negative control: the router as compose.yaml declares it is not impaired.
    assert "router: impair:" not in lab.logs("router")
    for server in servers:
        probe = lab.probe("client", server, topology.APP_PORT)
        assert probe["outcome"] == "connected" and probe["elapsed_s"] < DELAY_MS / 1000 / 3, probe
        assert exchange_seconds(lab, server) < rate_bound / 3
