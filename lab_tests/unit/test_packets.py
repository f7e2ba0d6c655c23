"""lab_tests/packets.py on captures made here, packet by packet: each verdict, and its negative
control (the same traffic without the fault gives nothing)."""

from __future__ import annotations

import io
import socket
import struct

import dpkt
import pytest

from lab_tests import packets, topology

CLIENT, SERVER = topology.CLIENT_V4, topology.SERVER_V4
CLIENT6, SERVER6 = topology.CLIENT_V6, topology.SERVER_V6
ROUTER, ROUTER6 = (topology.address("router", "clientnet", v) for v in (4, 6))
CLIENT_SIDE, SERVER_SIDE = 2, 3  # router interface indexes
ISN = 4_294_967_000  # wraps past 2**32 within the test's data: sequence arithmetic included


def ip(src: str, dst: str, payload, proto: int = dpkt.ip.IP_PROTO_TCP):
    if ":" in src:
        return dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                            nxt=proto, hlim=64, data=payload, plen=len(bytes(payload)))
    return dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=payload)


def segment(seq: int, data: bytes = b"", *, flags: int = dpkt.tcp.TH_ACK, ts: int = 1, src=CLIENT, dst=SERVER,
            sport: int = 40000, dport: int = 65432):
    options = (bytes([dpkt.tcp.TCP_OPT_NOP, dpkt.tcp.TCP_OPT_NOP, dpkt.tcp.TCP_OPT_TIMESTAMP, 10])
               + struct.pack("!II", ts, 0))
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq % 2**32, ack=7, flags=flags, opts=options,
                       off=(20 + len(options)) // 4, data=data)
    return ip(src, dst, tcp)


def pcap(*frames) -> bytes:
    """(interface index, outgoing, IP packet) frames as an SLL2 pcap, as the router's tcpdump."""
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=packets.LINKTYPE_LINUX_SLL2)
    for n, (ifindex, outgoing, packet) in enumerate(frames):
        kind = packets.ETH_P_IPV6 if isinstance(packet, dpkt.ip6.IP6) else packets.ETH_P_IP
        header = packets.SLL2.pack(kind, 0, ifindex, 1, packets.PACKET_OUTGOING if outgoing else 0, 6, b"\0" * 8)
        writer.writepkt(header + bytes(packet), ts=1000 + n / 1000)
    return out.getvalue()


def forwarded(*segments, order=None):
    """Each segment arriving from the client side, then leaving on the server side in ``order``."""
    order = range(len(segments)) if order is None else order
    return packets.read(pcap(*[(CLIENT_SIDE, False, s) for s in segments],
                             *[(SERVER_SIDE, True, segments[i]) for i in order]))


DATA = [segment(ISN + 100 * i, bytes(100), ts=i + 1) for i in range(5)]


def test_read_gives_interface_direction_and_addresses():
    [arrived, left] = forwarded(segment(ISN, flags=dpkt.tcp.TH_SYN))
    assert (arrived.ifindex, arrived.outgoing, left.ifindex, left.outgoing) == (CLIENT_SIDE, False, SERVER_SIDE, True)
    assert (arrived.src, arrived.dst, arrived.flags, arrived.version) == (CLIENT, SERVER, "S", 4)
    assert packets.interface_of([arrived, left], CLIENT) == CLIENT_SIDE


def test_read_refuses_another_link_type():
    out = io.BytesIO()
    dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
    with pytest.raises(AssertionError, match="not a cooked v2 capture"):
        packets.read(out.getvalue())


def test_in_order_forwarding_is_neither_reordered_lost_nor_duplicated():
    seen = forwarded(*DATA)
    assert (packets.reordered(seen, SERVER_SIDE), packets.lost(seen, SERVER_SIDE),
            packets.duplicated(seen, SERVER_SIDE)) == (0, 0, 0)


def test_a_packet_overtaking_two_is_one_reordering():
    assert packets.reordered(forwarded(*DATA, order=[0, 3, 1, 2, 4]), SERVER_SIDE) == 2
    assert packets.reordered(forwarded(*DATA, order=[1, 0, 2, 3, 4]), SERVER_SIDE) == 1


def test_a_packet_that_never_left_is_lost():
    assert packets.lost(forwarded(*DATA, order=[0, 1, 3, 4]), SERVER_SIDE) == 1


def test_a_copy_is_a_duplicate_but_a_pure_ack_sent_twice_by_its_sender_is_not():
    assert packets.duplicated(forwarded(*DATA, order=[0, 1, 1, 2, 3, 4]), SERVER_SIDE) == 1
    ack = segment(ISN, ts=9)
    assert packets.duplicated(forwarded(ack, ack), SERVER_SIDE) == 0
    assert packets.duplicated(forwarded(ack, ack, order=[0, 1, 1]), SERVER_SIDE) == 1


def test_a_gso_packet_leaving_as_its_segments_is_matched_segment_by_segment():
    big = segment(ISN, bytes(300), ts=1)  # one "super packet" of three 100-byte segments
    parts = [segment(ISN + 100 * i, bytes(100), ts=1) for i in range(3)]
    later = segment(ISN + 300, bytes(100), ts=2)
    frames = [(CLIENT_SIDE, False, big), (CLIENT_SIDE, False, later)]
    whole = packets.read(pcap(*frames, *[(SERVER_SIDE, True, p) for p in [*parts, later]]))
    assert (packets.reordered(whole, SERVER_SIDE), packets.lost(whole, SERVER_SIDE),
            packets.duplicated(whole, SERVER_SIDE)) == (0, 0, 0)
    overtaken = packets.read(pcap(*frames, *[(SERVER_SIDE, True, p) for p in [parts[0], later, *parts[1:]]]))
    assert packets.reordered(overtaken, SERVER_SIDE) == 2  # two segments left after a later packet
    one_dropped = packets.read(pcap(*frames, *[(SERVER_SIDE, True, p) for p in [parts[0], parts[2], later]]))
    assert packets.lost(one_dropped, SERVER_SIDE) == 1


def test_retransmissions_are_data_sent_again_not_new_data():
    arriving = [p for p in forwarded(*DATA) if not p.outgoing]
    assert packets.retransmissions(arriving) == 0
    again = packets.read(pcap(*[(CLIENT_SIDE, False, s) for s in [*DATA, segment(ISN + 100, bytes(100), ts=9)]]))
    assert packets.retransmissions(again) == 1


@pytest.mark.parametrize("version", [4, 6])
def test_an_icmp_error_names_its_kind_and_the_segment_it_quotes(version):
    client, server, router = (CLIENT, SERVER, ROUTER) if version == 4 else (CLIENT6, SERVER6, ROUTER6)
    syn = segment(ISN, flags=dpkt.tcp.TH_SYN, src=client, dst=server, dport=65442)
    kind, code = ((packets.ICMP_UNREACH, packets.ICMP_HOST_UNREACH) if version == 4
                  else (packets.ICMP6_UNREACH, packets.ICMP6_ADDR_UNREACH))
    proto = dpkt.ip.IP_PROTO_ICMP if version == 4 else dpkt.ip.IP_PROTO_ICMP6
    error = ip(router, client, struct.pack("!BBHI", kind, code, 0, 0) + bytes(syn), proto)
    too_big = ip(router, client, (struct.pack("!BBHHH", 3, 4, 0, 0, 1280) if version == 4
                                  else struct.pack("!BBHI", 2, 0, 0, 1280)) + bytes(syn), proto)
    seen = packets.read(pcap((CLIENT_SIDE, False, syn), (CLIENT_SIDE, True, error), (CLIENT_SIDE, True, too_big)))
    assert packets.unreachable(seen) == [(kind, code)] + ([(3, 4)] if version == 4 else [])
    assert packets.quoted(seen[1]) == (6, 40000, 65442)
    assert packets.connection(seen, 65442) == seen  # the errors are about this connection
    assert packets.connection(seen, 65443) == []
    assert packets.too_big(seen) == [1280]
