"""The router's packets, decided on as packets: dpkt reads a test's window of the capture.

The router's tcpdump captures with ``-i any`` (Linux cooked capture v2, SLL2): every packet
carries the router interface it was seen on and whether the router sent it (``outgoing``) or
received it. A forwarded packet is seen twice, arriving on one interface and leaving on the
other; a packet the firewall drops only arrives; an answer the router makes itself (a TCP
reset, an ICMP error) only leaves. So "what the client was told" is one interface, the one
the client's packets arrive on (:func:`interface_of`), and "what the router did to the
traffic" is the same packet arriving on one interface and leaving on the other
(:func:`reordered`, :func:`lost`, :func:`duplicated`)::

    packets = read(lab.read_file("router", capture.pcap()))
    client_side = interface_of(packets, CLIENT_V4)
    answer = [p for p in connection(packets, topology.REFUSED_PORT) if p.ifindex == client_side]

Used by lab_tests/lab/test_firewall.py (reset, ICMP error or silence, per rule) and
lab_tests/lab/test_impairments.py (reordering, loss, retransmission, segment sizes); the
guide's own tool, tshark, stays in test_troubleshooting.py and test_no_nat.py.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import dpkt

LINKTYPE_LINUX_SLL2 = 276
#: The SLL2 header (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html): protocol,
#: reserved, interface index, ARPHRD type, packet type, address length, address.
SLL2 = struct.Struct("!HHiHBB8s")
PACKET_OUTGOING = 4  # SLL2 packet type: sent by the capturing host
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
#: ICMP destination unreachable and ICMPv6's, with the codes a firewall's reject uses.
ICMP_UNREACH, ICMP6_UNREACH = 3, 1
ICMP_HOST_UNREACH, ICMP6_ADDR_UNREACH = 1, 3  # nft `icmpx type host-unreachable` gives these
ICMP_FRAG_NEEDED, ICMP6_PACKET_TOO_BIG = 4, 2  # path-MTU discovery: code of 3, and a type
#: The ICMP / ICMPv6 types that are errors, quoting the packet they are about.
ERRORS = {4: {3, 4, 5, 11, 12}, 6: {1, 2, 3, 4}}


@dataclass(frozen=True)
class Packet:
    time: float
    ifindex: int  # the router interface it was seen on
    outgoing: bool  # sent by the router on that interface (else it arrived there)
    ip: dpkt.ip.IP | dpkt.ip6.IP6
    frame: bytes = field(default=b"", repr=False, compare=False)  # as captured (SLL2), for slices

    @property
    def version(self) -> int:
        return 4 if isinstance(self.ip, dpkt.ip.IP) else 6

    @property
    def src(self) -> str:
        return socket.inet_ntop(socket.AF_INET if self.version == 4 else socket.AF_INET6, self.ip.src)

    @property
    def dst(self) -> str:
        return socket.inet_ntop(socket.AF_INET if self.version == 4 else socket.AF_INET6, self.ip.dst)

    @property
    def size(self) -> int:
        """The IP packet's length in bytes, header included."""
        return len(bytes(self.ip))

    @property
    def tcp(self) -> dpkt.tcp.TCP | None:
        return self.ip.data if isinstance(self.ip.data, dpkt.tcp.TCP) else None

    @property
    def flags(self) -> str:
        """The TCP flags as tcpdump letters (S, F, R, P, .: ACK), "" when not TCP."""
        if self.tcp is None:
            return ""
        names = [(dpkt.tcp.TH_SYN, "S"), (dpkt.tcp.TH_FIN, "F"), (dpkt.tcp.TH_RST, "R"),
                 (dpkt.tcp.TH_PUSH, "P"), (dpkt.tcp.TH_ACK, ".")]
        return "".join(letter for bit, letter in names if self.tcp.flags & bit)

    @property
    def icmp(self) -> tuple[int, int, bytes] | None:
        """(type, code, the rest of the message after the 8-byte ICMP header) of an ICMP or
        ICMPv6 packet, None for anything else."""
        proto = self.ip.p if self.version == 4 else self.ip.nxt
        if proto not in (dpkt.ip.IP_PROTO_ICMP, dpkt.ip.IP_PROTO_ICMP6):
            return None
        raw = bytes(self.ip.data)
        return raw[0], raw[1], raw[8:]

    def __str__(self) -> str:
        way = "out" if self.outgoing else "in "
        if self.tcp:
            what = f"{self.flags} seq {self.tcp.seq} ack {self.tcp.ack} len {len(self.tcp.data)}"
        else:
            what = f"icmp {self.icmp[:2]}" if self.icmp else f"protocol {self.ip.data.__class__.__name__}"
        ports = f".{self.tcp.sport} > .{self.tcp.dport}" if self.tcp else ""
        return f"{self.time:.6f} if{self.ifindex} {way} {self.src} > {self.dst} {ports} {what}"


def read(data: bytes) -> list[Packet]:
    """Every IPv4 and IPv6 packet of a pcap (SLL2, as the router's ``tcpdump -i any`` writes)."""
    import io

    reader = dpkt.pcap.Reader(io.BytesIO(data))
    assert reader.datalink() == LINKTYPE_LINUX_SLL2, f"not a cooked v2 capture: link type {reader.datalink()}"
    packets = []
    for ts, frame in reader:
        protocol, _, ifindex, _, packet_type, _, _ = SLL2.unpack_from(frame)
        body = frame[SLL2.size:]
        if protocol == ETH_P_IP:
            ip = dpkt.ip.IP(body)
        elif protocol == ETH_P_IPV6:
            ip = dpkt.ip6.IP6(body)
        else:
            continue
        packets.append(Packet(float(ts), ifindex, packet_type == PACKET_OUTGOING, ip, frame))
    return packets


def interface_of(packets: list[Packet], address: str) -> int:
    """The router interface on which packets from ``address`` arrive: that host's side."""
    sides = {p.ifindex for p in packets if not p.outgoing and p.src == address}
    assert len(sides) == 1, f"packets from {address} arrive on interfaces {sides}"
    return sides.pop()


def connection(packets: list[Packet], port: int) -> list[Packet]:
    """The TCP segments with ``port`` at either end, and the ICMP errors about them (an ICMP
    error quotes the segment it is about: its ports are read from the quote)."""
    return [p for p in packets if port in _ports(p)]


def _ports(packet: Packet) -> tuple[int, ...]:
    if packet.tcp is not None:
        return packet.tcp.sport, packet.tcp.dport
    quote = quoted(packet)
    return quote[1:] if quote else ()


def quoted(packet: Packet) -> tuple[int, int, int] | None:
    """(protocol, source port, destination port) of the packet an ICMP error quotes."""
    if packet.icmp is None or packet.icmp[0] not in ERRORS[packet.version]:
        return None
    _, _, rest = packet.icmp
    if len(rest) >= 20 and rest[0] >> 4 == 4:
        header = (rest[0] & 0x0F) * 4
        proto, ports = rest[9], rest[header:header + 4]
    elif len(rest) >= 40 and rest[0] >> 4 == 6:
        proto, ports = rest[6], rest[40:44]
    else:
        return None
    if len(ports) < 4:
        return None
    return (proto, *struct.unpack("!HH", ports))


def unreachable(packets: list[Packet]) -> list[tuple[int, int]]:
    """(type, code) of every ICMP / ICMPv6 destination-unreachable error among ``packets``."""
    return [p.icmp[:2] for p in packets if p.icmp and p.icmp[0] == (ICMP_UNREACH if p.version == 4 else ICMP6_UNREACH)]


def too_big(packets: list[Packet]) -> list[int]:
    """The MTU that each ICMP "fragmentation needed" / ICMPv6 "packet too big" error announces."""
    mtus = []
    for p in packets:
        if p.icmp is None:
            continue
        kind, code, _ = p.icmp
        raw = bytes(p.ip.data)
        if p.version == 4 and (kind, code) == (ICMP_UNREACH, ICMP_FRAG_NEEDED):
            mtus.append(struct.unpack_from("!H", raw, 6)[0])
        elif p.version == 6 and kind == ICMP6_PACKET_TOO_BIG:
            mtus.append(struct.unpack_from("!I", raw, 4)[0])
    return mtus


def _before(a: int, b: int) -> bool:
    """Sequence number ``a`` comes before ``b`` (arithmetic modulo 2**32, RFC 1982)."""
    return a != b and (b - a) % 2**32 < 2**31


def _tsval(tcp: dpkt.tcp.TCP) -> int | None:
    for kind, data in dpkt.tcp.parse_opts(tcp.opts):
        if kind == dpkt.tcp.TCP_OPT_TIMESTAMP and len(data) == 8:
            return struct.unpack("!I", data[:4])[0]
    return None


def _flow(p: Packet) -> tuple:
    return p.src, p.dst, p.tcp.sport, p.tcp.dport


def retransmissions(packets: list[Packet]) -> int:
    """Segments with data that start before the highest byte already seen in their direction:
    data sent again. Give it one interface, the packets arriving from the senders: nothing
    between a sender and the router reorders, so only the sender can have sent them again."""
    highest: dict[tuple, int] = {}
    count = 0
    for p in packets:
        if p.tcp is None or not p.tcp.data:
            continue
        flow, start = _flow(p), p.tcp.seq
        end = (start + len(p.tcp.data)) % 2**32
        if flow in highest and _before(start, highest[flow]):
            count += 1
        if flow not in highest or _before(highest[flow], end):
            highest[flow] = end
    return count


def _crossing(packets: list[Packet], into: int) -> tuple[list[Packet], list[Packet], list[int | None]]:
    """The TCP packets the router received for interface ``into`` (on another interface, in
    flows that leave by ``into``), those it sent on ``into``, and for each one sent, the number
    of the one received it came from (None: the router made it).

    A packet is recognised by its flow, acknowledgment number and TCP timestamp (which every
    transmission by the sender has its own of, retransmissions included) and its sequence range:
    a packet can arrive as one GSO "super packet" of several segments and leave as those
    segments, each inside the range of the one that arrived."""
    left = [p for p in packets if p.tcp is not None and p.outgoing and p.ifindex == into]
    flows = {_flow(p) for p in left}
    arrived = [p for p in packets
               if p.tcp is not None and not p.outgoing and p.ifindex != into and _flow(p) in flows]
    index = defaultdict(list)
    for number, p in enumerate(arrived):
        index[(*_flow(p), p.tcp.ack, _tsval(p.tcp))].append((p.tcp.seq, len(p.tcp.data), number))
    origin = []
    for p in left:
        seq, size = p.tcp.seq, len(p.tcp.data)
        candidates = [number for start, length, number in index.get((*_flow(p), p.tcp.ack, _tsval(p.tcp)), [])
                      if (seq - start) % 2**32 + size <= length and (size or seq == start)]
        origin.append(candidates[0] if candidates else None)
    return arrived, left, origin


def reordered(packets: list[Packet], into: int) -> int:
    """Packets the router sent on interface ``into`` before one that arrived earlier (netem.py
    counts the same): the order they arrived in against the order they left in."""
    _, _, origin = _crossing(packets, into)
    count, highest = 0, -1
    for number in origin:
        if number is None:
            continue
        count += number < highest
        highest = max(highest, number)
    return count


def lost(packets: list[Packet], into: int) -> int:
    """Packets that arrived for interface ``into`` and did not leave by it, whole."""
    arrived, left, origin = _crossing(packets, into)
    covered = Counter()
    for p, number in zip(left, origin):
        if number is not None:
            covered[number] += len(p.tcp.data) or 1
    return sum(1 for number, p in enumerate(arrived) if covered[number] < (len(p.tcp.data) or 1))


def duplicated(packets: list[Packet], into: int) -> int:
    """Packets the router sent on interface ``into`` more often than they arrived, byte for
    byte (a sender's own retransmission differs: its TCP timestamp is new; a segment of a GSO
    packet that arrived whole is one packet)."""
    def count(chosen):
        return Counter((p.src, p.dst, bytes(p.ip.data)) for p in chosen)

    arrived, left, _ = _crossing(packets, into)
    came = count(arrived)
    return sum(max(0, n - max(1, came[key])) for key, n in count(left).items())


def segment_sizes(packets: list[Packet]) -> list[int]:
    """The TCP payload length of every packet with data."""
    return [len(p.tcp.data) for p in packets if p.tcp is not None and p.tcp.data]
