#!/usr/bin/env python3
"""A small userspace netem for the router: delay, jitter, reordering and loss.

The lab host's kernel has no ``sch_netem``, so ``tc qdisc ... netem`` is not available.
This does the same job one layer up: an iptables NFQUEUE rule hands every forwarded TCP
packet to this process (netlink, standard library only), which gives each one its verdict
later: after ``--delay`` +/- ``--jitter`` ms (accept), at once (``--reorder`` percent: it
overtakes packets still waiting) or never (``--loss`` percent: drop).

    netem.py --delay 20 --jitter 10 --reorder 10 --loss 3 [--queue 0] [--seed 1]

On SIGTERM/SIGINT it releases every held packet, prints one JSON line of counters
(``received``, ``dropped``, ``reordered`` = packets released before one that arrived
earlier) and exits. The queue rule uses ``--queue-bypass``, so when this process is not
running, packets pass unimpaired. ``services/router/impair.sh`` installs and removes the rule.
"""

import argparse
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NF_DROP, NF_ACCEPT = 0, 1

# Netlink headers are in the host's order; netfilter payload fields are big-endian.
NLMSGHDR = struct.Struct("=IHHII")
NFGENMSG = struct.Struct("!BBH")
NLATTR = struct.Struct("=HH")


def _attr(kind: int, payload: bytes) -> bytes:
    pad = (-len(payload)) % 4
    return NLATTR.pack(NLATTR.size + len(payload), kind) + payload + b"\0" * pad


def _message(msg: int, queue: int, attrs: bytes, flags: int, seq: int) -> bytes:
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def _attributes(data: bytes):
    offset = 0
    while offset + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size:
            break
        yield kind & 0x3FFF, data[offset + NLATTR.size:offset + length]
        offset += (length + 3) & ~3


class Queue:
    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.seq = 0
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_UNSPEC)))
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))

    def _config(self, attrs: bytes) -> None:
        self.seq += 1
        self.sock.send(_message(NFQNL_MSG_CONFIG, self.number, attrs, NLM_F_REQUEST | NLM_F_ACK, self.seq))
        data = self.sock.recv(65536)
        length, kind, _, _, _ = NLMSGHDR.unpack_from(data)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, NLMSGHDR.size)
            if error:
                raise OSError(-error, f"NFQUEUE config for queue {self.number}: {os.strerror(-error)}")

    def packets(self):
        """Packet ids of every packet message in one datagram."""
        data = self.sock.recv(1 << 16)
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
            if length < NLMSGHDR.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                payload = data[offset + NLMSGHDR.size + NFGENMSG.size:offset + length]
                for attr, value in _attributes(payload):
                    if attr == NFQA_PACKET_HDR:
                        yield struct.unpack_from("!I", value)[0]
            offset += (length + 3) & ~3

    def verdict(self, packet_id: int, verdict: int) -> None:
        attrs = _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        self.sock.send(_message(NFQNL_MSG_VERDICT, self.number, attrs, NLM_F_REQUEST, 0))

    def close(self) -> None:
        try:
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, socket.AF_UNSPEC)))
        finally:
            self.sock.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="ms")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms, uniform +/-")
    parser.add_argument("--reorder", type=float, default=0.0, help="percent sent at once")
    parser.add_argument("--loss", type=float, default=0.0, help="percent dropped")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    queue = Queue(args.queue)
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"netem: queue {args.queue} delay {args.delay}ms jitter {args.jitter}ms "
          f"reorder {args.reorder}% loss {args.loss}%", flush=True)

    held = []  # heap of (release time, arrival number, packet id)
    arrivals = 0
    released_up_to = -1  # highest arrival number released so far
    counts = {"received": 0, "dropped": 0, "reordered": 0, "accepted": 0}

    def release(entry):
        nonlocal released_up_to
        _, number, packet_id = entry
        if number < released_up_to:
            counts["reordered"] += 1
        released_up_to = max(released_up_to, number)
        queue.verdict(packet_id, NF_ACCEPT)
        counts["accepted"] += 1

    while not stop:
        now = time.monotonic()
        while held and held[0][0] <= now:
            release(heapq.heappop(held))
        timeout = max(0.0, held[0][0] - now) if held else 0.5
        try:
            ready, _, _ = select.select([queue.sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        for packet_id in queue.packets():
            counts["received"] += 1
            arrivals += 1
            roll = rng.uniform(0, 100)
            if roll < args.loss:
                queue.verdict(packet_id, NF_DROP)
                counts["dropped"] += 1
            elif roll < args.loss + args.reorder:
                release((0, arrivals, packet_id))
            else:
                delay = max(0.0, args.delay + rng.uniform(-args.jitter, args.jitter)) / 1000
                heapq.heappush(held, (time.monotonic() + delay, arrivals, packet_id))

    while held:
        release(heapq.heappop(held))
    queue.close()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
