#!/usr/bin/env python3
"""Load run for the app server: N clients x M requests, every answer checked, p50/p99 latency.

    python3 impaired_load.py HOST [--port 65432] [--clients 1000] [--requests 10]
                             [--concurrency 100] [--timeout 30] [--json]

Each client makes its requests one after the other, one connection per request (the guide's
protocol: connect, send one request, read one answer, close); at most --concurrency clients
run at once, all on one selectors loop (no threads: the lab's containers have a pids limit). Requests cycle through `search` queries whose answers are written out
below, independent of the socketlab package, so a wrong answer cannot hide behind the code
under test. --timeout bounds each whole exchange (connect to last byte of the answer).

Standard library only and no socketlab import, so it runs anywhere Python 3.8+ does: on the
host, or in the lab's client container without copying anything:
`docker compose exec -T client sh -c 'python3 - "$LAB_SERVER"' < benchmarks/impaired_load.py`
(lab_tests/lab/test_faults.py passes the source with `python3 -c`).
The lab test runs it through the router impaired by services/router/netem.py (50 ms delay, 5 % loss).

Prints a summary and, last, one JSON line: clients, requests, ok, wrong, failed, total_s,
rate_per_s, p50_ms, p90_ms, p99_ms, max_ms, failures (reason -> count), examples (a few wrong
or failed exchanges). Exit status 0 only if every answer arrived and was right.
"""

import argparse
import errno
import heapq
import json
import math
import os
import selectors
import socket
import struct
import sys
import time

# The app server's `search` answers (services/socketlab/app.py SEARCH and its fallback),
# written out here on purpose.
EXPECTED = [
    ("morpheus", "Follow the white rabbit. \U0001f430"),
    ("ring", "In the caves beneath the Misty Mountains. \U0001f48d"),
    ("\U0001f436", "\U0001f43e Playing ball! \U0001f3d0"),
    ("nothing", "No match for 'nothing'."),
]
MAX_REPLY = 1 << 20


class Wrong(Exception):
    """The server answered, but not what the protocol promised."""


def request_bytes(query):
    content = json.dumps({"action": "search", "value": query}, ensure_ascii=False).encode("utf-8")
    header = json.dumps({"byteorder": sys.byteorder, "content-type": "text/json",
                         "content-encoding": "utf-8", "content-length": len(content)}).encode("utf-8")
    return struct.pack(">H", len(header)) + header + content


def parse_answer(buf):
    """The answer's ``result`` once ``buf`` holds a whole message; None while it needs more."""
    if len(buf) < 2:
        return None
    hlen = struct.unpack(">H", bytes(buf[:2]))[0]
    if len(buf) < 2 + hlen:
        return None
    try:
        header = json.loads(bytes(buf[2:2 + hlen]).decode("utf-8"))
        clen = int(header["content-length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Wrong("bad header %r: %s" % (bytes(buf[2:2 + hlen])[:200], exc))
    if not 0 <= clen <= MAX_REPLY:
        raise Wrong("content-length %r" % clen)
    if len(buf) < 2 + hlen + clen:
        return None
    if len(buf) > 2 + hlen + clen:
        raise Wrong("%d bytes after the answer" % (len(buf) - 2 - hlen - clen))
    if header.get("content-type") != "text/json":
        raise Wrong("content-type %r" % header.get("content-type"))
    try:
        content = json.loads(bytes(buf[2 + hlen:]).decode(header.get("content-encoding", "utf-8")))
    except (ValueError, LookupError) as exc:
        raise Wrong("bad content: %s" % exc)
    if not isinstance(content, dict) or "result" not in content:
        raise Wrong("no result in %r" % (content,))
    return content["result"]


class Exchange:
    """One request on its own non-blocking connection."""

    def __init__(self, client, number, family, sockaddr, timeout):
        self.client, self.number = client, number
        self.query, self.expected = EXPECTED[(client + number) % len(EXPECTED)]
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.out = request_bytes(self.query)
        self.buf = bytearray()
        self.connecting = True
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        code = self.sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, os.strerror(code))

    def on_write(self):
        """Returns True once the whole request is sent."""
        if self.connecting:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            self.connecting = False
        sent = self.sock.send(self.out)
        self.out = self.out[sent:]
        return not self.out

    def on_read(self):
        """The result once the whole answer is in; None while it needs more."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed after %d bytes of the answer" % len(self.buf))
        self.buf += chunk
        return parse_answer(self.buf)


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


def run(host, port, clients, requests, concurrency, timeout):
    """Every exchange on one selectors loop (no threads: the lab's containers limit pids)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    waiting = list(range(clients - 1, -1, -1))  # clients not started yet (pop from the end)
    sel = selectors.DefaultSelector()
    deadlines = []  # heap of (deadline, sequence, exchange); finished ones are skipped
    sequence = 0
    latencies = []
    counts = {"ok": 0, "wrong": 0, "failed": 0}
    failures = {}
    examples = []

    def note(kind, ex, detail):
        counts[kind] += 1
        if kind == "failed":
            reason = detail.split(":")[0]
            failures[reason] = failures.get(reason, 0) + 1
        if len(examples) < 10:
            examples.append({"client": ex.client, "request": ex.number, "query": ex.query,
                             "kind": kind, "detail": detail})

    def begin(client, number):
        nonlocal sequence
        while True:
            try:
                ex = Exchange(client, number, family, sockaddr, timeout)
            except OSError as exc:
                counts["failed"] += 1
                reason = type(exc).__name__
                failures[reason] = failures.get(reason, 0) + 1
                number += 1
                if number == requests:
                    return
                continue
            sel.register(ex.sock, selectors.EVENT_WRITE, ex)
            sequence += 1
            heapq.heappush(deadlines, (ex.deadline, sequence, ex))
            return

    def finish(ex):
        sel.unregister(ex.sock)
        ex.sock.close()
        ex.sock = None
        if ex.number + 1 < requests:
            begin(ex.client, ex.number + 1)
        elif waiting:
            begin(waiting.pop(), 0)

    started = time.monotonic()
    for _ in range(min(concurrency, clients)):
        begin(waiting.pop(), 0)
    while sel.get_map():
        now = time.monotonic()
        while deadlines and (deadlines[0][2].sock is None or deadlines[0][0] <= now):
            _, _, ex = heapq.heappop(deadlines)
            if ex.sock is not None:
                note("failed", ex, "TimeoutError: whole exchange over %g s" % timeout)
                finish(ex)
        if not sel.get_map():
            break
        wait = max(0.0, deadlines[0][0] - now) if deadlines else None
        for key, mask in sel.select(wait):
            ex = key.data
            if ex.sock is None:
                continue
            try:
                if mask & selectors.EVENT_WRITE and ex.on_write():
                    sel.modify(ex.sock, selectors.EVENT_READ, ex)
                    continue
                if mask & selectors.EVENT_READ:
                    result = ex.on_read()
                    if result is None:
                        continue
                    latencies.append(time.monotonic() - ex.started)
                    if result == ex.expected:
                        counts["ok"] += 1
                    else:
                        note("wrong", ex, "got %r, expected %r" % (result, ex.expected))
            except Wrong as exc:
                note("wrong", ex, str(exc))
            except (OSError, EOFError) as exc:
                note("failed", ex, "%s: %s" % (type(exc).__name__, exc))
            finish(ex)
    total = time.monotonic() - started
    sel.close()
    latencies.sort()

    def ms(value):
        return None if value is None else round(value * 1000, 1)

    return {
        "host": host, "port": port, "clients": clients, "requests": clients * requests,
        "concurrency": min(concurrency, clients), "timeout_s": timeout,
        "ok": counts["ok"], "wrong": counts["wrong"], "failed": counts["failed"],
        "total_s": round(total, 2), "rate_per_s": round(clients * requests / total, 1),
        "p50_ms": ms(percentile(latencies, 50)), "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)), "max_ms": ms(latencies[-1] if latencies else None),
        "failures": failures, "examples": examples,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("--port", type=int, default=65432)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--concurrency", type=int, default=100, help="clients running at once")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per whole exchange")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    summary = run(args.host, args.port, args.clients, args.requests, args.concurrency, args.timeout)
    if not args.json:
        print("%(clients)d clients x %(per)d requests to %(host)s port %(port)d, %(concurrency)d at once"
              % dict(summary, per=args.requests))
        print("total %(total_s).2f s (%(rate_per_s).1f requests/s); latency p50 %(p50_ms)s ms, "
              "p90 %(p90_ms)s ms, p99 %(p99_ms)s ms, max %(max_ms)s ms" % summary)
        print("answers: %(ok)d right, %(wrong)d wrong, %(failed)d failed" % summary)
        for example in summary["examples"]:
            print("  %(kind)s: client %(client)d request %(request)d (%(query)r): %(detail)s" % example)
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0 if summary["wrong"] == 0 and summary["failed"] == 0 and summary["ok"] == summary["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
