"""TLS handshake flood: what replayed ClientHellos cost the loop, and a right client meanwhile.

    python benchmarks/tls_flood.py [--seconds 5] [--flooders 4]

A socketlab app-server serves TLS on loopback (certificates from services/pki/make-pki.sh in a
temporary folder). Flooders, each a process of its own, connect, send one real ClientHello
(captured once, replayed) and reset the connection, as fast as they can; a plaintext connect
flood (connect, reset) is the comparison. Meanwhile a right TLS client asks one search at a time.
Prints, for each: the server's CPU share, the connections it saw, its CPU per connection, and
the right client's p50/p90. Asserts nothing (speed is not a test); docs/tls.md quotes it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app_server import cpu_seconds  # this folder's: the script's own directory is on sys.path
from socketlab import app, client, tls
from socketlab.addresses import ready_port

ROOT = Path(__file__).resolve().parents[1]


def client_hello(ca: str) -> bytes:
    context = ssl.create_default_context(cafile=ca)
    obj = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def flood(port: int, first: bytes, stop_at: float, counter) -> None:
    linger = struct.pack("ii", 1, 0)
    sent = 0
    while time.monotonic() < stop_at:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if first:
                    sock.sendall(first)
                    sock.recv(1)  # the server's flight: the handshake's work is done
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sent += 1
        except OSError:
            pass
    with counter.get_lock():
        counter.value += sent


def measure(port: int, ca: str, first: bytes | None, seconds: float, flooders: int, server_pid: int):
    stop_at = time.monotonic() + seconds
    counter = multiprocessing.Value("i", 0)
    procs = [multiprocessing.Process(target=flood, args=(port, first, stop_at, counter))
             for _ in range(flooders if first is not None else 0)]
    before = cpu_seconds(server_pid)
    for proc in procs:
        proc.start()
    latencies = []
    wire = app.make_request("search", "ring")
    while time.monotonic() < stop_at:
        start = time.monotonic()
        reply = client.request("127.0.0.1", port, wire, timeout=10, tls=tls.ClientTLS(ca=ca))
        assert app.describe_response(reply.response) == app.SEARCH["ring"]
        latencies.append(time.monotonic() - start)
    for proc in procs:
        proc.join()
    cpu = cpu_seconds(server_pid) - before
    latencies.sort()
    return {"cpu": cpu / seconds, "connections": counter.value + len(latencies),
            "cpu_ms_per_connection": 1000 * cpu / max(1, counter.value + len(latencies)),
            "p50_ms": 1000 * statistics.median(latencies),
            "p90_ms": 1000 * latencies[int(len(latencies) * 0.9)], "right": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--flooders", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as pki:
        subprocess.run([str(ROOT / "services/pki/make-pki.sh"), pki, "--failures",
                        "localhost=DNS:localhost,IP:127.0.0.1,IP:::1"], check=True, capture_output=True)
        ca = f"{pki}/ca.pem"
        server = subprocess.Popen(
            [sys.executable, "-m", "socketlab", "app-server", "127.0.0.1", "0", "-q",
             "--tls-cert", f"{pki}/localhost.pem", "--tls-key", f"{pki}/localhost.key"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = ready_port(server.stdout.readline())
            rows = {
                "no flood": measure(port, ca, None, args.seconds, 0, server.pid),
                f"{args.flooders} x connect + reset (plaintext)": measure(
                    port, ca, b"", args.seconds, args.flooders, server.pid),
                f"{args.flooders} x replayed ClientHello + reset": measure(
                    port, ca, client_hello(ca), args.seconds, args.flooders, server.pid),
            }
        finally:
            server.kill()
            server.wait()
    print(f"{'load':<40} {'server CPU':>10} {'conns':>7} {'ms CPU/conn':>11} "
          f"{'right p50':>10} {'p90':>9} {'right n':>8}")
    for name, row in rows.items():
        print(f"{name:<40} {row['cpu']:>9.0%} {row['connections']:>7} "
              f"{row['cpu_ms_per_connection']:>11.2f} {row['p50_ms']:>8.1f}ms "
              f"{row['p90_ms']:>7.1f}ms {row['right']:>8}")


if __name__ == "__main__":
    main()
