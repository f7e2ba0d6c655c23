"""App-server benchmark: requests/s and p50/p99 latency, socketlab vs a plain asyncio baseline,
a minimal selectors server and the guide's approach.

    python benchmarks/app_server.py [--requests N] [--rounds 3] [--idle 10000] [--guide-reference DIR] [--buffered] [--loop-only]

The guide's semantics: one request per connection (connect, send, read the answer, close).
The load comes from loadgen.c (C + epoll, built here with gcc) so the client side is not the
limit. On 2+ cores the server is pinned to CPU 0 and the load generator to CPU 1. The asyncio
baseline runs the same sans-I/O handler (socketlab.handlers.AppHandler) under asyncio's
transports, so the comparison is of the I/O layers. socketlab runs twice: with --quiet, and
with the guide's commentary (four lines a connection, flushed once per round of its loop); so
does the guide's approach, lab_tests/conform/programs/guide_style/app-server.py (a line per
event, as the guide's reference server prints them; the reference itself is not in this tree).
Every server runs with PYTHONUNBUFFERED=1, as in the lab's images (--buffered: without it).
Then it holds --idle idle connections open against socketlab and measures again. Prints a
table; asserts nothing (speed is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from socketlab import app
from socketlab.addresses import ready_line, ready_port
from socketlab.handlers import AppHandler

HERE = Path(__file__).resolve().parent
GUIDE_STYLE = HERE.parent / "lab_tests" / "conform" / "programs" / "guide_style" / "app-server.py"


def asyncio_baseline(port: int) -> None:
    """The same handler (socketlab.handlers.AppHandler, sans-I/O) under asyncio's transports
    instead of socketlab's selectors loop: the comparison is of the I/O layers only."""

    class Adapter(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport = transport
            self.handler = AppHandler(transport.get_extra_info("peername"))

        def data_received(self, data: bytes) -> None:
            self._send(self.handler.data_received(data))

        def eof_received(self) -> bool:
            self._send(self.handler.eof_received())
            return False

        def _send(self, out: bytes) -> None:
            if out:
                self.transport.write(out)
            if self.handler.finished:
                self.transport.close()  # after the buffered output is flushed

        def connection_lost(self, exc) -> None:
            self.handler.connection_lost()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Adapter, "127.0.0.1", port, backlog=4096)
        print(ready_line("127.0.0.1", server.sockets[0].getsockname()[1]), flush=True)
        await server.serve_forever()

    asyncio.run(main())


def minimal_server(port: int) -> None:
    """The least Python can do for this protocol: a selectors loop that reads until the
    message is complete (header length, header, content-length), answers a fixed reply and
    closes. No limits, no deadlines, no orderly close: the ceiling to measure socketlab by."""
    import json
    import selectors
    import struct

    reply = app.respond(next(iter(_one_message(app.make_request("search", "morpheus")))))
    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    print(ready_line("127.0.0.1", listener.getsockname()[1]), flush=True)
    buffers: dict = {}
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                try:
                    while True:
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        buffers[conn] = b""
                        sel.register(conn, selectors.EVENT_READ)
                except BlockingIOError:
                    continue
            conn = key.fileobj
            data = conn.recv(65536)
            buf = buffers[conn] = buffers[conn] + data
            if len(buf) >= 2:
                (hlen,) = struct.unpack_from(">H", buf)
                if len(buf) >= 2 + hlen:
                    clen = json.loads(buf[2:2 + hlen])["content-length"]
                    if len(buf) >= 2 + hlen + clen or not data:
                        conn.send(reply)
                        data = b""
            if not data:
                sel.unregister(conn)
                del buffers[conn]
                conn.close()


def loop_only_server(port: int) -> None:
    """socketlab's server (its loop, limits, orderly close and all) whose handler answers the
    fixed reply without reading the request: how much of the gap to the minimal server is the
    loop's and how much the request's own handling (--loop-only)."""
    from socketlab import cli, handlers

    reply = app.respond(next(iter(_one_message(app.make_request("search", "morpheus")))))

    def data_received(self, data: bytes) -> bytes:
        self.finished = True
        return reply

    handlers.AppHandler.data_received = data_received
    handlers.AppHandler.buffered = 0
    cli.main(["app-server", "127.0.0.1", str(port), "--quiet", "--idle-timeout", "0",
              "--max-connections", "20000"])


def _one_message(wire: bytes):
    from socketlab.protocol import MessageDecoder
    decoder = MessageDecoder()
    decoder.receive_data(wire)
    yield decoder.next_message()


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() >= 2 else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(buffered: bool) -> dict:
    """The servers' environment: PYTHONUNBUFFERED=1, as the lab's images set it (their output
    goes to `docker compose logs` at once), or, with --buffered, without it (Python's default for
    a pipe: block-buffered prints). Explicit, so that the numbers do not depend on the shell."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return env if buffered else {**env, "PYTHONUNBUFFERED": "1"}


def start_server(kind: str, reference: Path | None = None, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = "0"
    if kind.startswith("socketlab"):
        argv = [sys.executable, "-m", "socketlab", "app-server", "127.0.0.1", "0",
                "--idle-timeout", "0", "--max-connections", "20000"]
        argv += [] if kind == "socketlab-commentary" else ["--quiet"]
    elif kind == "guide-style":  # prints the port it was given: give it a free one
        port = str(free_port())
        argv = [sys.executable, str(GUIDE_STYLE), "127.0.0.1", port]
    elif kind == "guide-reference":  # the guide's own app-server.py (realpython/materials)
        port = str(free_port())
        argv = [sys.executable, str(reference / "app-server.py"), "127.0.0.1", port]
    else:
        argv = [sys.executable, __file__, f"--{kind}-server", "0"]
    proc = subprocess.Popen(pin(0) + argv, stdout=subprocess.PIPE, text=True, env=env)
    if kind.startswith("guide"):  # their print()s may be block-buffered into the pipe: no line yet
        port = int(port) if listening(int(port), proc) else None
        line = f"nothing listening on {port}"
    else:
        line = proc.stdout.readline()
        port = ready_port(line)
    if port is None:
        proc.kill()
        raise SystemExit(f"{kind} server did not start: {line!r}")
    # the commentary goes on: read and dropped, as a terminal or docker's log would take it
    threading.Thread(target=lambda: shutil.copyfileobj(proc.stdout, open(os.devnull, "w")), daemon=True).start()
    return proc, port


def listening(port: int, proc: subprocess.Popen, wait: float = 10.0) -> bool:
    """Whether PROC accepts a connection on PORT within WAIT seconds (polled, with a deadline)."""
    deadline = time.monotonic() + wait
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)  # polling for the listening socket, with a deadline
    return False


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(loadgen: Path, port: int, concurrency: int, total: int, request_file: Path,
         server_pid: int) -> dict:
    """One loadgen run; adds the CPU share of the server and of the load generator."""
    server_before = cpu_seconds(server_pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(pin(1) + [str(loadgen), "127.0.0.1", str(port), str(concurrency),
                                   str(total), str(request_file)],
                         capture_output=True, text=True, timeout=600)
    try:  # a run with failed requests is a result too (its errors column says how many)
        result = json.loads(out.stdout)
    except ValueError:
        raise SystemExit(f"loadgen failed (exit {out.returncode}): {out.stdout}{out.stderr}") from None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    loadgen_cpu = (children.ru_utime - children_before.ru_utime
                   + children.ru_stime - children_before.ru_stime)
    result["server_cpu"] = (cpu_seconds(server_pid) - server_before) / result["seconds"]
    result["loadgen_cpu"] = loadgen_cpu / result["seconds"]
    return result


def row(name: str, conc: int, r: dict, rss: float) -> str:
    return (f"| {name:<22} | {conc:>5} | {r['requests_per_s']:>8.0f} | {r['p50_ms']:>7.2f} | "
            f"{r['p99_ms']:>7.2f} | {rss:>7.1f} | {r['server_cpu']:>6.0%} | {r['loadgen_cpu']:>7.0%} | "
            f"{r['errors']:>6} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per measurement")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections to hold")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row (the median is shown)")
    parser.add_argument("--guide-reference", type=Path, metavar="DIR",
                        help="also measure the guide's own app-server.py from DIR (realpython/materials, "
                             "python-sockets-tutorial; not in this tree: docs/conformance.md says how to get it)")
    parser.add_argument("--buffered", action="store_true",
                        help="run the servers without PYTHONUNBUFFERED=1 (the lab's images set it)")
    parser.add_argument("--asyncio-baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--loop-only", action="store_true",
                        help="also measure socketlab's loop with a handler that does not read the request")
    parser.add_argument("--minimal-selectors-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--loop-only-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.asyncio_baseline_server is not None:
        return asyncio_baseline(args.asyncio_baseline_server)
    if args.minimal_selectors_server is not None:
        return minimal_server(args.minimal_selectors_server)
    if args.loop_only_server is not None:
        return loop_only_server(args.loop_only_server)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        loadgen = Path(tmp) / "loadgen"
        subprocess.run(["gcc", "-O2", "-o", str(loadgen), str(HERE / "loadgen.c")], check=True)
        request_file = Path(tmp) / "request.bin"
        request_file.write_bytes(app.make_request("search", "morpheus"))

        print(f"# {args.requests} requests per run, median of {args.rounds} interleaved rounds, "
              f"one request per connection, "
              f"{'PYTHONUNBUFFERED unset' if args.buffered else 'PYTHONUNBUFFERED=1 (as in the lab)'}, "
              f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print("| server                 | conc. |   req/s  | p50 ms  | p99 ms  | RSS MiB | server CPU | loadgen CPU | errors |")
        print("|------------------------|-------|----------|---------|---------|---------|--------|---------|--------|")
        # All three servers up at once (idle ones cost nothing), measured in turn, round after
        # round: drift on a shared host hits each alike. A row is the median round by req/s.
        kinds = ("socketlab", "socketlab-commentary", "guide-style", "asyncio-baseline", "minimal-selectors")
        kinds += ("guide-reference",) if args.guide_reference else ()
        kinds += ("loop-only",) if args.loop_only else ()
        env = server_environment(args.buffered)
        servers = {kind: start_server(kind, args.guide_reference, env) for kind in kinds}
        runs: dict[tuple[str, int], list[dict]] = {}
        try:
            for proc, port in servers.values():
                load(loadgen, port, 16, 2000, request_file, proc.pid)  # warm up
            for conc in (1, 64, 512):
                total = args.requests if conc > 1 else args.requests // 4
                for _ in range(args.rounds):
                    for kind, (proc, port) in servers.items():
                        runs.setdefault((kind, conc), []).append(
                            load(loadgen, port, conc, total, request_file, proc.pid))
            rates = {}
            for kind, (proc, _) in servers.items():
                for conc in (1, 64, 512):
                    ordered = sorted(runs[kind, conc], key=lambda r: r["requests_per_s"])
                    median = ordered[len(ordered) // 2]
                    rates[kind, conc] = median["requests_per_s"]
                    print(row(kind, conc, median, rss_mib(proc.pid)), flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait()
        print("# socketlab --quiet / minimal selectors server (the least Python can do): " + ", ".join(
            f"{rates['socketlab', c] / rates['minimal-selectors', c]:.2f} at {c}" for c in (1, 64, 512)))
        if args.loop_only:
            print("# socketlab's loop, not reading the request / minimal selectors server: " + ", ".join(
                f"{rates['loop-only', c] / rates['minimal-selectors', c]:.2f} at {c}" for c in (1, 64, 512)))
        for guide in [kind for kind in kinds if kind.startswith("guide")]:
            print(f"# socketlab with the guide's commentary / {guide}, commentary on: " + ", ".join(
                f"{rates['socketlab-commentary', c] / rates[guide, c]:.2f} at {c}" for c in (1, 64, 512)))

        proc, port = start_server("socketlab", env=env)
        idle = []
        try:
            for _ in range(args.idle):
                idle.append(socket.create_connection(("127.0.0.1", port)))
            # Every idle connection has been accepted once a request behind them is answered.
            load(loadgen, port, 1, 10, request_file, proc.pid)
            for conc in (1, 64, 512):
                total = args.requests if conc > 1 else args.requests // 4
                print(row(f"socketlab +{args.idle} idle", conc,
                          load(loadgen, port, conc, total, request_file, proc.pid), rss_mib(proc.pid)),
                      flush=True)
        finally:
            for sock in idle:
                sock.close()
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
