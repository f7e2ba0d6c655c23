"""Faults across the lab: the server, the router and the path fail under running clients.

Each fault test runs `socketlab app-client ... --timeout T` again and again in the client
container (lab_tests/clientloop.py: a new process each time, several at once), breaks
something (the server or the router stopped until clients fail, then started; the app port
dropped at the router mid-exchange; the PowerPC guest rebooted: lab_tests/guest/
test_guest_faults.py), and checks every run (lab_tests/faults.py):

* a run that fails exits 1 and prints exactly ONE stderr line, ``socketlab: <the guide's
  words> (<ERRNO>) ...`` (services/socketlab/errors.py; a timeout is ``timed out
  (ETIMEDOUT)``), from a set of outcomes that fault can cause;
  no traceback, no second line;
* no run lasts longer than its --timeout plus SLACK (the process starting and exiting): the
  timeout bounds the whole exchange, so nothing hangs, whatever the fault;
* a run that succeeds printed the exact answer;
* the clients succeed again after the fault WITHOUT anybody repairing anything: the test
  waits on real signals (the health check, the clients' own results), never a bare sleep.

The negative controls: ``test_timeout_bounds_the_whole_exchange`` shows a per-call-timeout
client (each connect/recv under T, the exchange over T) breaks the same bound that every
fault test asserts, and ``test_load_through_impaired_router`` first shows the load driver
counts a wrong answer as wrong (against the echo server). Each fault test also asserts that
its fault was seen (some runs failed): a fault that hit nobody proves nothing.

The load run: benchmarks/impaired_load.py (stdlib only, run in the client container) makes
1 000 clients x 10 requests through the router impaired by services/router/netem.py with 50 ms delay
and 5 % loss, and must get 10 000 right answers. Its figures are printed (pytest -s) and
recorded as properties of the junit test suite (`record_testsuite_property`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from lab_tests import guide
from lab_tests.clientloop import ClientLoop, Run
from lab_tests.topology import ECHO_ANY_PORT
from lab_tests.faults import (PORT, SERVER, SLACK, RouterRules, app_client, check_runs, outcome,
                             report, resumed, successes, within_deadline)


REPO = Path(__file__).resolve().parents[2]
LOAD_DRIVER = REPO / "benchmarks" / "impaired_load.py"


# -- impairment and firewall helpers ------------------------------------------------------------


@pytest.fixture
def netem(lab):
    """``start(*netem_args)``; stops at teardown. ``stop()`` returns netem's counters."""
    state = {"running": False, "counters": None}

    def start(*args: str) -> None:
        # The NFQUEUE helper on any kernel: the load run reads its counters.
        result = lab.root("router", "env", "IMPAIR_BACKEND=nfqueue", "/opt/socketlab/router/impair.sh", "start", *args)
        if result.returncode != 0:
            more = lab.root("router", "sh", "-c", "ls -la /run/socketlab-impair; cat /run/socketlab-impair/*.log; "
                            "cat /sys/fs/cgroup/memory/memory.failcnt /sys/fs/cgroup/memory/memory.max_usage_in_bytes; "
                            "df -h /tmp /run; ps -ef")
            raise AssertionError(f"netem did not start:\n{result}\n{more}")
        state["running"] = True

    def stop() -> dict:
        if state["running"]:
            result = lab.root("router", "/opt/socketlab/router/impair.sh", "stop")
            assert result.returncode == 0, str(result)
            state["running"] = False
            state["counters"] = json.loads(result.stdout.strip().splitlines()[-1])
        return state["counters"]

    start.stop = stop
    yield start
    stop()


def Cut(lab, port: int = PORT) -> RouterRules:
    """Drop every packet of the app port at the router (both ways, before the conntrack accept)."""
    return RouterRules(lab, f"tcp dport {port} drop; insert rule inet socketlab forward tcp sport {port} drop", 2)


def established(lab, port: int = PORT) -> int:
    """Client connections to the app port that are open right now (exchanges under way)."""
    result = lab.run("client", "ss", "-Htn", "state", "established", f"( dport = :{port} )")
    assert result.returncode == 0, str(result)
    return len(result.stdout.splitlines())


# -- the whole-exchange deadline, with its negative control ------------------------------------

PER_CALL_CLIENT = r"""
import json, socket, struct, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
content = json.dumps({"action": "search", "value": "ring"}).encode()
header = json.dumps({"byteorder": sys.byteorder, "content-type": "text/json",
                     "content-encoding": "utf-8", "content-length": len(content)}).encode()
sock = socket.create_connection((host, port), timeout=timeout)  # T for the connect...
sock.sendall(struct.pack(">H", len(header)) + header + content)
data = b""
while True:
    chunk = sock.recv(65536)  # ...and T again for every recv: no deadline for the exchange
    if not chunk:
        break
    data += chunk
print(data[-80:].decode(errors="replace"))
"""


def test_timeout_bounds_the_whole_exchange(lab, netem, record_testsuite_property):
    """1 s each way: connect and reply take 2 s each, 4 s in all. --timeout 2.5: a client
    bounding each call succeeds after ~4 s (past the bound); socketlab must give up at 2.5 s."""
    timeout = 2.5
    netem("--delay", "1000")
    control = {}
    thread = threading.Thread(target=lambda: control.update(result=lab.run(
        "client", "python3", "-c", PER_CALL_CLIENT, SERVER, str(PORT), str(timeout), timeout=60)))
    thread.start()
    result = lab.run("client", *app_client(timeout=timeout), timeout=60)
    thread.join(90)
    per_call = control["result"]
    # Negative control: the path is slow but works, and each call fits in T; a client without
    # a whole-exchange deadline answers late, and the bound below catches it.
    assert per_call.returncode == 0 and guide.RING in per_call.stdout, str(per_call)
    assert not within_deadline(per_call.elapsed, timeout), \
        f"the control should have exceeded {timeout} + {SLACK} s:\n{per_call}"
    # The property: socketlab's --timeout is the whole exchange.
    run = Run(0, 0, 0, result.elapsed, result.returncode, result.stdout, result.stderr)
    assert outcome(run) == "timeout", str(result)
    assert within_deadline(result.elapsed, timeout), \
        f"app-client --timeout {timeout:g} ran {result.elapsed:.2f} s through a 4 s exchange:\n{result}"
    assert result.elapsed >= timeout - 0.05, str(result)
    report(record_testsuite_property, "whole_exchange_deadline", {
        "timeout_s": timeout, "socketlab_s": round(result.elapsed, 2),
        "per_call_client_s": round(per_call.elapsed, 2), "line": result.stderr.strip()})


# -- the faults ---------------------------------------------------------------------------------


def restart_under_clients(lab, service: str, timeout: float, after_start=None) -> tuple[list, dict]:
    """Clients in a loop; stop SERVICE, keep it down until the clients have seen it (two failed
    runs: the signal), start it, wait for its health check and for the clients to be served
    again. A plain `docker compose restart` of the router is over in well under a second, which
    TCP's retransmission hides from a client with a 2 s timeout: it would test nothing."""
    with ClientLoop(lab, "client", app_client(timeout=timeout), workers=3, interval=0.25, name=service) as loop:
        loop.wait_for(lambda runs: successes(runs) >= 3, 30, "served before the fault")
        fault_at = time.time()
        stopped = lab.stop(service)
        assert stopped.returncode == 0, str(stopped)
        loop.wait_for(lambda runs: sum(1 for r in runs if not r.ok and r.start > fault_at) >= 2,
                      30, f"failing while {service} is down")
        down_s = time.time() - fault_at
        started = lab.start(service)
        assert started.returncode == 0, str(started)
        healthy_s = lab.wait_healthy(service, timeout=90)
        if after_start:
            after_start()
        loop.wait_for(lambda runs: successes(runs, max(r.start for r in runs if not r.ok)) >= 3,
                      60, f"served again after {service} came back")
        runs = loop.stop()
    figures = resumed(runs, fault_at)
    figures.update(down_s=round(down_s, 2), stop_s=round(stopped.elapsed, 2),
                   start_s=round(started.elapsed, 2), healthy_after_start_s=round(healthy_s, 2),
                   resumed_after_start_s=round(figures["resumed_s"] - down_s, 2), runs=len(runs))
    return runs, figures


def test_server_restart_during_clients(lab, record_testsuite_property):
    timeout = 2.0
    runs, figures = restart_under_clients(lab, "server", timeout)
    # While the container is away the router cannot reach the server (timed out, or no route
    # to host once its neighbour entry fails); while it starts, nobody listens (refused); a
    # connection the dying server had open may be reset.
    seen = check_runs(runs, timeout, {"refused", "timeout", "unreachable", "reset"})
    report(record_testsuite_property, "server_restart", dict(figures, outcomes=dict(seen)))


def test_router_restart_during_clients(lab, capture, record_testsuite_property):
    timeout = 2.0
    # The router's tcpdump (conftest's capture) dies with it: capture again once it is back.
    runs, figures = restart_under_clients(lab, "router", timeout, after_start=capture.start)
    # No router: packets are lost (timed out) or the client's own kernel finds no neighbour
    # for its gateway (no route to host). Coming back, the router may have its clientnet link
    # before its servernet one (Docker attaches them one by one): it then has no route to the
    # server's network and says so, ICMP net unreachable (ENETUNREACH; seen once in ~10 runs).
    # The server is never reached, so never refused.
    seen = check_runs(runs, timeout, {"timeout", "unreachable", "network-unreachable"})
    report(record_testsuite_property, "router_restart", dict(figures, outcomes=dict(seen)))


def test_path_cut_mid_exchange(lab, netem, record_testsuite_property):
    """300 ms each way makes every exchange last > 1 s, so the cut finds clients mid-exchange
    (connected, request sent, answer not yet in: ESTABLISHED on the client after the cut)."""
    timeout = 3.0
    netem("--delay", "300")
    with ClientLoop(lab, "client", app_client(timeout=timeout), workers=3, interval=0.2, name="cut") as loop:
        loop.wait_for(lambda runs: successes(runs) >= 3, 40, "served before the fault")
        for _ in range(10):
            deadline = time.monotonic() + 10
            while established(lab) == 0 and time.monotonic() < deadline:
                pass  # polling the client's sockets: the cut must find an exchange under way
            cut = Cut(lab).__enter__()
            caught = established(lab)  # connections open after the cut: cut mid-exchange
            if caught:
                break
            cut.__exit__()
        assert caught, "never managed to cut the path with an exchange under way"
        try:
            # Hold the cut until every client running at the cut has ended (and failed or not).
            loop.wait_for(lambda runs: all(any(r.worker == w and r.end > cut.at for r in runs)
                                           for w in range(3)), timeout + 10, "done with the cut exchanges")
        finally:
            cut.__exit__()
        uncut_at = time.time()
        loop.wait_for(lambda runs: successes(runs, uncut_at) >= 3, 30, "served again after the cut")
        runs = loop.stop()
    # A dropped path is silence: the only outcome is the client's own deadline.
    seen = check_runs(runs, timeout, {"timeout"})
    cut_runs = [r for r in runs if r.start < cut.at < r.end]
    failed_cut = [r for r in cut_runs if not r.ok]
    assert len(failed_cut) >= caught, (
        f"{caught} exchanges were open after the cut but only {len(failed_cut)} clients failed:\n"
        + "\n".join(map(str, cut_runs)))
    figures = resumed(runs, cut.at)
    back = min(r.end for r in runs if r.ok and r.end > uncut_at)
    figures.update(open_exchanges_cut=caught, cut_held_s=round(uncut_at - cut.at, 2),
                   resumed_after_uncut_s=round(back - uncut_at, 2), runs=len(runs), outcomes=dict(seen))
    report(record_testsuite_property, "path_cut", figures)


# -- load through the impaired router -----------------------------------------------------------


def load(lab, *args: str, timeout: float = 240) -> tuple[dict, object]:
    result = lab.run("client", "python3", "-c", LOAD_DRIVER.read_text(), SERVER, *args, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the load driver printed no summary:\n{result}"
    return json.loads(lines[-1]), result


CLIENTS = 400


def test_load_through_impaired_router(lab, netem, record_testsuite_property):
    netem("--delay", "50", "--loss", "5", "--seed", "11")
    # Negative control: the echo server (on "") answers with the request itself, and the
    # driver must count every such answer as wrong (the check below can fail).
    control, result = load(lab, "--port", str(ECHO_ANY_PORT), "--clients", "5", "--requests", "2", "--json")
    assert control["wrong"] == 10 and control["ok"] == 0 and result.returncode == 1, str(result)

    # 400 clients x 10 requests, 200 at once (the full 1 000 x 10 is the benchmark's default:
    # benchmarks/impaired_load.py; the suite keeps to 3 minutes).
    summary, result = load(lab, "--clients", str(CLIENTS), "--requests", "10", "--concurrency", "200",
                           "--timeout", "30", "--json")
    counters = netem.stop()
    figures = {k: summary[k] for k in ("requests", "ok", "wrong", "failed", "total_s", "rate_per_s",
                                       "p50_ms", "p90_ms", "p99_ms", "max_ms", "concurrency")}
    figures.update(netem_received=counters["received"], netem_dropped=counters["dropped"])
    report(record_testsuite_property, "impaired_load", figures)
    assert summary["wrong"] == 0, f"wrong answers through the impaired router:\n{result}"
    assert summary["failed"] == 0, f"failed exchanges through the impaired router:\n{result}"
    assert summary["ok"] == summary["requests"] == CLIENTS * 10, str(result)
    assert result.returncode == 0, str(result)
    # The impairment really happened: ~5 % of the packets were dropped.
    assert counters["received"] > CLIENTS * 60, counters  # ~11 packets per exchange
    assert 0.03 < counters["dropped"] / counters["received"] < 0.07, counters
    assert summary["p50_ms"] >= 190, summary  # 2 round trips of 2 x 50 ms at least
