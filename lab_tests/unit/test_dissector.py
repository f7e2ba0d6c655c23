"""The Wireshark dissector (services/wireshark/socketlab.lua) on a committed capture, no lab.

lab_tests/unit/data/dissector-sample.pcap was made by make-dissector-sample.sh beside it (what
is in it, in order, is written there); the host's tshark reads it with ``-X lua_script:``
(scripts/setup-host.sh installs tshark). The lab tier decodes live captures of the demo, the
PowerPC guest included (lab_tests/lab/test_wireshark.py).
"""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lab_tests import guide, topology
from lab_tests.dissect import LUA, messages, tshark_argv
from socketlab import app

SAMPLE = Path(__file__).resolve().parent / "data" / "dissector-sample.pcap"


def decode(*options: str, lua: Path = LUA):
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed: run scripts/setup-host.sh (make setup)")
    out = subprocess.run(tshark_argv(str(SAMPLE), *options, lua=lua), capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "Lua Error" not in out.stdout + out.stderr, out.stdout[-2000:] + out.stderr
    return messages(out.stdout)


@pytest.fixture(scope="module")
def decoded():
    return decode()


def test_every_message_of_the_sample_is_decoded(decoded):
    kinds = [(m.direction, m.header and m.header["content-type"]) for m in decoded]
    assert kinds == [
        ("request", "text/json"), ("response", "text/json"),
        ("request", "binary/x-socketlab-array; dtype=int16"),
        ("response", "binary/x-socketlab-array; dtype=int16"),
        ("request", "binary/x-socketlab-array; dtype=float64"),
        ("response", "binary/x-socketlab-array; dtype=float64"),
        ("request", "binary/custom-client-binary-type"), ("response", "binary/custom-server-binary-type"),
        ("request", "binary/x-socketlab-array; dtype=int64"),
        ("response", "binary/x-socketlab-array; dtype=int64"),
        ("message", "text/json"), ("message", "text/json"),  # two in one segment, heuristic port
        ("request", None), ("response", "text/json"),  # a header that is not JSON, its answer
        ("request", None), ("response", "text/json"),  # header length 65535, its answer
    ]


def test_header_fields_and_json_content(decoded):
    request, response = decoded[0], decoded[1]
    assert request.header_length == len(request.fields["socketlab.header"].encode())
    assert request.fields["socketlab.byteorder"] == "little"
    assert request.fields["socketlab.content_type"] == "text/json"
    assert request.fields["socketlab.content_encoding"] == "utf-8"
    assert int(request.fields["socketlab.content_length"]) == request.header["content-length"]
    assert request.json == {"action": "search", "value": "morpheus"}
    assert response.json == {"result": guide.MORPHEUS}


def test_arrays_are_read_in_the_declared_byte_order(decoded):
    assert decoded[2].header["byteorder"] == "big" and decoded[2].values == [1, -2, 3]
    assert decoded[3].values == [1, -2, 3]
    assert decoded[4].header["byteorder"] == "little" and decoded[4].values == [1.5, -2.25]
    assert decoded[5].values == [1.5, -2.25]
    # The extras: the answer's statistics, as sent.
    assert decoded[5].fields["socketlab.extra.name"] == "x-stats"
    assert decoded[5].fields["socketlab.extra.value"] == '{"count": 2, "sum": -0.75, "min": -2.25, "max": 1.5}'


def test_a_message_across_segments_is_reassembled(decoded):
    request, response = decoded[8], decoded[9]
    assert request.values == list(range(-500, 500)) == response.values
    assert request.segments > 1 and response.segments > 1, (request.segments, response.segments)


def test_binary_content_is_bytes(decoded):
    assert bytes.fromhex(decoded[6].fields["socketlab.content"].replace(":", "")) == b"double10"
    assert bytes.fromhex(decoded[7].fields["socketlab.content"].replace(":", "")) == \
        guide.binary_answer(b"double10")


def test_two_messages_in_one_segment_on_an_unknown_port(decoded):
    first, second = decoded[10], decoded[11]
    assert first.frame == second.frame and first.dst_port == 65499
    assert [first.json, second.json] == [{"action": "search", "value": "ring"},
                                         {"action": "search", "value": "neo"}]


def test_malformed_frames_are_expert_warnings(decoded):
    assert decoded[12].experts == ["socketlab.header.not_json"]
    assert decoded[14].header_length == 65535
    assert decoded[14].experts == ["socketlab.header_length.bad"]
    assert all(not m.experts for i, m in enumerate(decoded) if i not in (12, 14))


def test_without_tcp_reassembly_a_cut_message_is_a_warning():
    cut = [m for m in decode("-o", "tcp.desegment_tcp_streams:FALSE") if m.experts]
    assert {"socketlab.content.short"} <= {name for m in cut for name in m.experts}, cut


def test_negative_control_a_native_order_dissector_misreads_big_endian(tmp_path):
    """The byte-order assertion above can fail: the same dissector reading every array as
    little-endian (this machine's order) gets the big-endian values wrong."""
    naive = tmp_path / "naive.lua"
    source = LUA.read_text()
    assert 'local little = byteorder == "little"' in source
    naive.write_text(source.replace('local little = byteorder == "little"', "local little = true"))
    wrong = decode(lua=naive)
    assert wrong[2].values == [256, -257, 768] != [1, -2, 3]  # 0x0001 read as 0x0100, ...
    assert wrong[4].values == [1.5, -2.25]  # little-endian data: right either way


def test_the_dissector_knows_the_lab_s_app_server_ports():
    declared = re.search(r"^local PORTS = \{([^}]*)\}", LUA.read_text(), re.M)
    ports = [int(p) for p in declared[1].replace(",", " ").split()]
    plain = [lst.port for lst in topology.server_ports()
             if lst.program == "app-server" and "--tls-cert" not in lst.options]  # TLS: Wireshark's own
    assert ports == sorted(plain)


def hostile_frames(count: int = 400, seed: int = 7) -> list[bytes]:
    """What the dissector must survive: written-out worst cases, then seeded mutations (cut,
    flipped, spliced) of every request kind and answer."""
    def frame(header: bytes, content: bytes = b"") -> bytes:
        return struct.pack(">H", len(header)) + header + content

    worst = [
        b"", b"\x00", b"\x00\x00", b"\xff\xff{", frame(b"{"), frame(b"[1, 2]"), frame(b'"x"'),
        frame(b"{" * 40 + b"}" * 40), frame(b'{"a": "' + b"\\" * 999 + b'"}'),
        frame(b'{"content-length": 1e999}'), frame(b'{"content-length": -1}'),
        frame(b'{"content-length": 99999999999, "content-type": "text/json"}'),
        frame(b'{"byteorder": 1, "content-type": [], "content-encoding": {}, "content-length": 0}'),
        frame(b'{"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype=int64", '
              b'"content-encoding": "binary", "content-length": 5}', b"12345"),
        frame(b'{"byteorder": "sideways", "content-type": "binary/x-socketlab-array; dtype=int16", '
              b'"content-encoding": "binary", "content-length": 2}', b"\x01\x02"),
        frame(b'{"byteorder": "little", "content-type": "text/plain", "content-encoding": "utf-16-le", '
              b'"content-length": 3}', b"\xff\xd8\x00"),
        frame(b'{"byteorder": "little", "content-type": "text/plain", "content-encoding": "ebcdic", '
              b'"content-length": 2}', b"hi"),
        frame(b'{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", '
              b'"content-length": 4, "\\ud800": "\\udc00\\u0000"}', b"\xc3\x28{]"),
    ]
    seeds = [app.make_request("search", "morpheus"), app.make_request("double", "10"),
             app.make_request("stats", "1,-2,3", dtype="int16", byteorder="big"),
             app.make_request("stats", "1.5,-2.25", dtype="float64", byteorder="little"),
             app.respond(_message(app.make_request("stats", "7,8", dtype="uint64")))]
    rng = random.Random(seed)
    frames = list(worst)
    while len(frames) < count:
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if not data:
                break
            kind, at = rng.randrange(4), rng.randrange(len(data))
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del data[at:]
            elif kind == 2:
                data[at:at] = rng.choice(seeds)[: rng.randrange(40)]
            else:
                data[at] = rng.choice(b'{}[]",:\\0 \xff')
        frames.append(bytes(data) or b"\x00")
    return frames


def _message(wire: bytes):
    from socketlab.protocol import MessageDecoder

    decoder = MessageDecoder()
    decoder.receive_data(wire)
    return decoder.next_message()


def test_no_frame_makes_the_dissector_fail(tmp_path):
    """docs/wireshark.md's promise: expert info, never a Lua error. Each hostile frame is the
    first segment of its own connection to the app port (some cut in two segments); tshark
    must read them all, with no Lua error anywhere in the full packet details."""
    import dpkt

    pcap = tmp_path / "hostile.pcap"
    with pcap.open("wb") as f:
        writer = dpkt.pcap.Writer(f)
        for number, payload in enumerate(hostile_frames()):
            parts = [payload] if number % 3 else [payload[: len(payload) // 2], payload[len(payload) // 2:]]
            seq = 1000
            for part in parts:
                tcp = dpkt.tcp.TCP(sport=20000 + number, dport=65432, seq=seq, ack=1, off=5,
                                   flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, win=65535, data=part)
                ip = dpkt.ip.IP(src=b"\xc6\x12\x02\x0a", dst=b"\xc6\x12\x01\x0a", p=dpkt.ip.IP_PROTO_TCP,
                                ttl=64, data=tcp)
                writer.writepkt(bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip)),
                                ts=number + seq / 1e6)
                seq += len(part)
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed: run scripts/setup-host.sh (make setup)")
    out = subprocess.run(["tshark", "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-V"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "Lua Error" not in out.stdout + out.stderr, [
        line for line in out.stdout.splitlines() if "Lua Error" in line][:5]
    # Most were dissected; the others still wait for bytes their header length promised.
    assert out.stdout.count("socketlab (the Python socket guide") > 200
    assert "Expert Info (Warning/Malformed)" in out.stdout  # and the bad ones said so
