#!/usr/bin/env python3
"""A small userspace netem for the router: delay, jitter, reordering, loss, duplication, rate.

Where the kernel has no ``sch_netem`` (the lab's machine kind), ``tc qdisc ... netem`` is not
available. This does the same job one layer up: an iptables NFQUEUE rule hands forwarded TCP
packets to this process (netlink, standard library only), which gives each one its verdict
later: after ``--delay`` +/- ``--jitter`` ms (accept), at once (``--reorder`` percent: it
overtakes packets still waiting) or never (``--loss`` percent: drop). ``--duplicate`` percent
of the packets it accepts are sent a second time, as copies through a raw socket. ``--rate``
kbit/s is a link per outgoing interface: a packet waits until the ones before it on that
interface have been sent at that rate, then its delay starts (tc netem's ``rate``).

    netem.py --delay 20 --jitter 10 --reorder 10 --loss 3 --duplicate 1 --rate 1000 [--queue 0] [--seed 1]

On SIGTERM/SIGINT it releases every held packet, prints one JSON line of counters
(``queue``, ``received``, ``dropped``, ``reordered`` = packets released before one that
arrived earlier, ``duplicated``, ``accepted``; ``overruns``: times the kernel's queue to this
process overflowed, ``copy_errors``: copies not sent) and exits. The queue rule uses
``--queue-bypass``, so when this process is not running, packets pass unimpaired.
``services/router/impair.sh`` starts it (as socketlab, with CAP_NET_ADMIN for the verdicts and
CAP_NET_RAW for the copies) and installs and removes the rule.
"""

import argparse
import errno
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
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_IFINDEX_OUTDEV, NFQA_PAYLOAD = 1, 2, 6, 10
COPY_RANGE = 0xFFFF  # whole packets: the copies are sent as they are, the rate counts bytes
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
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET)))

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
        """(packet id, outgoing interface index, the packet) of every packet message in one
        datagram."""
        data = self.sock.recv(1 << 18)
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
            if length < NLMSGHDR.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                attrs = dict(_attributes(data[offset + NLMSGHDR.size + NFGENMSG.size:offset + length]))
                if NFQA_PACKET_HDR in attrs:
                    outdev = attrs.get(NFQA_IFINDEX_OUTDEV, b"\0\0\0\0")
                    yield (struct.unpack_from("!I", attrs[NFQA_PACKET_HDR])[0], struct.unpack("!I", outdev)[0],
                           attrs.get(NFQA_PAYLOAD, b""))
            offset += (length + 3) & ~3

    def verdict(self, packet_id: int, verdict: int) -> None:
        attrs = _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        self.sock.send(_message(NFQNL_MSG_VERDICT, self.number, attrs, NLM_F_REQUEST, 0))

    def close(self) -> None:
        try:
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, socket.AF_UNSPEC)))
        finally:
            self.sock.close()


class Copier:
    """Sends a packet a second time, as it is (addresses included), through raw sockets: the
    copy leaves by the router's own output path, after the original has passed the firewall."""

    def __init__(self) -> None:
        self.v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # header included
        self.v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, packet: bytes) -> None:
        if packet[0] >> 4 == 4:
            self.v4.sendto(packet, (socket.inet_ntop(socket.AF_INET, packet[16:20]), 0))
        else:
            self.v6.sendto(packet, (socket.inet_ntop(socket.AF_INET6, packet[24:40]), 0, 0, 0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="ms")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms, uniform +/-")
    parser.add_argument("--reorder", type=float, default=0.0, help="percent sent at once")
    parser.add_argument("--loss", type=float, default=0.0, help="percent dropped")
    parser.add_argument("--duplicate", type=float, default=0.0, help="percent sent twice")
    parser.add_argument("--rate", type=float, default=0.0, help="kbit/s per outgoing interface (0: no limit)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    queue = Queue(args.queue)
    copier = Copier() if args.duplicate else None
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"netem: queue {args.queue} delay {args.delay}ms jitter {args.jitter}ms "
          f"reorder {args.reorder}% loss {args.loss}% duplicate {args.duplicate}% "
          f"rate {args.rate or 'unlimited'}{'kbit/s' if args.rate else ''}", flush=True)

    held = []  # heap of (release time, arrival number, packet id, the packet if it is to be copied)
    arrivals = 0
    released_up_to = -1  # highest arrival number released so far
    link_free = {}  # outgoing interface index -> when its link has sent everything before (--rate)
    counts = {"queue": args.queue, "received": 0, "dropped": 0, "reordered": 0, "duplicated": 0,
              "accepted": 0, "overruns": 0, "copy_errors": 0}

    def release(entry):
        nonlocal released_up_to
        _, number, packet_id, copy = entry
        if number < released_up_to:
            counts["reordered"] += 1
        released_up_to = max(released_up_to, number)
        queue.verdict(packet_id, NF_ACCEPT)
        counts["accepted"] += 1
        if copy is not None:
            try:
                copier.send(copy)
                counts["duplicated"] += 1
            except OSError as exc:  # the copy is lost, the original went: say so, go on
                counts["copy_errors"] += 1
                print(f"netem: copy not sent: {exc}", file=sys.stderr, flush=True)

    def on_the_wire(outdev: int, size: int, now: float) -> float:
        """When the packet has been sent on its interface's link of --rate kbit/s."""
        if not args.rate:
            return now
        done = max(now, link_free.get(outdev, now)) + size * 8 / (args.rate * 1000)
        link_free[outdev] = done
        return done

    while not stop:
        now = time.monotonic()
        while held and held[0][0] <= now:
            release(heapq.heappop(held))
        timeout = max(0.0, held[0][0] - now) if held else 0.5
        try:
            ready, _, _ = select.select([queue.sock], [], [], timeout)
            if not ready:
                continue
            batch = list(queue.packets())
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            counts["overruns"] += 1  # the kernel's queue overflowed: those packets were dropped
            continue
        for packet_id, outdev, packet in batch:
            counts["received"] += 1
            arrivals += 1
            roll = rng.uniform(0, 100)
            if roll < args.loss:
                queue.verdict(packet_id, NF_DROP)
                counts["dropped"] += 1
                continue
            copy = packet if args.duplicate and rng.uniform(0, 100) < args.duplicate else None
            sent = on_the_wire(outdev, len(packet), time.monotonic())
            if roll < args.loss + args.reorder:
                entry = (sent, arrivals, packet_id, copy)
                if sent <= time.monotonic():
                    release(entry)
                    continue
            else:
                delay = max(0.0, args.delay + rng.uniform(-args.jitter, args.jitter)) / 1000
                entry = (sent + delay, arrivals, packet_id, copy)
            heapq.heappush(held, entry)

    while held:
        release(heapq.heappop(held))
    queue.close()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
