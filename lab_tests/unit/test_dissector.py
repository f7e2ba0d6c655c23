"""The Wireshark dissector (services/wireshark/socketlab.lua) on a committed capture, no lab.

lab_tests/unit/data/dissector-sample.pcap was made by make-dissector-sample.sh beside it (what
is in it, in order, is written there); the host's tshark reads it with ``-X lua_script:``
(scripts/setup-host.sh installs tshark). The lab tier decodes live captures of the demo, the
PowerPC guest included (lab_tests/lab/test_wireshark.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab_tests import topology
from lab_tests.dissect import LUA, messages, tshark_argv

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
    assert response.json == {"result": "Follow the white rabbit. \U0001f430"}


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
        b"First 10 bytes of request: double10"


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
