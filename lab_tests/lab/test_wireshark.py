"""The guide's protocol as Wireshark shows it: the lab's own captures, read by the dissector.

The router captures every test (lab_tests/harness.py); the lab image has the dissector
(services/wireshark/socketlab.lua) in Wireshark's plugin folder, so the router's tshark reads
the protocol with no option. Every message the demo sends, from the little-endian client and
from the big-endian PowerPC guest, is compared with socketlab's own decoding of the same
request (socketlab.protocol, an independent implementation) and with the oracle's values
(socketlab.demo); then a 200 KB array across the impaired 1280-byte-MTU path, and a
malformed frame.
"""

from __future__ import annotations

import pytest

from lab_tests import topology
from lab_tests.dissect import Message, as_shown, messages, tshark_argv
from lab_tests.topology import APP_PORT, SERVER_V4
from socketlab import arrays, demo
from socketlab.protocol import MessageDecoder

SERVERNET_V4 = next(net for net in topology.networks() if net.name == "servernet").subnet(4)


def decoded(lab, capture) -> list[Message]:
    """This test's messages so far, as the router's tshark decodes them. The router captures
    each forwarded packet twice (``-i any``: in on one network, out on the other): only the
    copies on the server's network are kept."""
    pcap = capture.pcap()
    one_side = pcap.removesuffix(".pcap") + "-servernet.pcap"
    script = (f"index=$(cat /sys/class/net/$(ip -o -4 addr show to {SERVERNET_V4} | awk '{{print $2}}')/ifindex) && "
              f"tshark -n -r {pcap} -Y \"sll.ifindex == $index\" -w {one_side}")
    kept = lab.run("router", "sh", "-c", script, timeout=120)
    assert kept.returncode == 0, str(kept)
    result = lab.run("router", *tshark_argv(one_side, lua=None), timeout=120)
    assert result.returncode == 0, str(result)
    assert "Lua Error" not in result.stdout + result.stderr, str(result)
    return messages(result.stdout)


def sent(case: demo.Case, byteorder: str):
    """The request as socketlab itself decodes the bytes its client sends for ``case``."""
    decoder = MessageDecoder()
    decoder.receive_data(case.request(byteorder))
    return decoder.next_message()


def check_demo(found: list[Message], byteorder: str) -> None:
    """Every request of the demo and its answer, in order, read right by the dissector."""
    cases = list(demo.cases())
    requests = [m for m in found if m.direction == "request"]
    responses = [m for m in found if m.direction == "response"]
    assert len(requests) == len(responses) == len(cases), [m.header for m in found]
    for case, request, response in zip(cases, requests, responses):
        expected = sent(case, byteorder)
        # The sender's own order in every header (the guide's sys.byteorder), arrays packed in it.
        assert request.header == {**expected.header, "byteorder": byteorder}, case.label
        assert request.header_length == len(request.fields["socketlab.header"].encode())
        assert request.experts == [] and response.experts == [], case.label
        if case.dtype:  # the arrays: the dissector reads the declared order, as socketlab does
            assert request.values == as_shown(arrays.decode_array(expected)), case.label
            assert request.values == as_shown(demo.expected_values(case.dtype)), case.label
            assert response.header["byteorder"] == byteorder
            assert response.values == as_shown(demo.expected_values(case.dtype)), case.label
            assert response.header["x-stats"] == demo.expected_result(case.dtype)["stats"]
        elif expected.content_type == "text/json":
            assert request.json == expected.json(), case.label
            assert response.json == {"result": case.acceptable[0]}, case.label
        else:
            assert bytes.fromhex(request.fields["socketlab.content"].replace(":", "")) == expected.content
            assert repr(bytes.fromhex(response.fields["socketlab.content"].replace(":", ""))) == case.acceptable[0]


def test_the_demo_from_the_little_endian_client(lab, capture):
    result = lab.run("client", "socketlab", "demo", SERVER_V4)
    assert result.returncode == 0, str(result)
    check_demo(decoded(lab, capture), "little")


@pytest.mark.guest
def test_the_demo_from_the_big_endian_guest(lab, capture):
    result = lab.run("client-ppc", "guest-exec", "--timeout", "120", "python3", "-m", "socketlab",
                     "demo", SERVER_V4, timeout=150)
    assert result.returncode == 0, str(result)
    found = decoded(lab, capture)
    assert {m.src_port for m in found if m.direction == "response"} == {APP_PORT}
    check_demo(found, "big")


def test_a_200_kb_array_across_the_impaired_small_mtu_path(lab, capture, small_mtu, netem):
    values = list(range(25_600))  # int64: 204 800 bytes each way
    code = ("import sys; from socketlab.cli import main; sys.exit(main(['app-client', '-q', '--json', "
            f"'--dtype', 'int64', '{SERVER_V4}', '{APP_PORT}', 'stats', ','.join(map(str, range({len(values)})))]))")
    result = lab.run("client", "python3", "-c", code, timeout=120)
    assert result.returncode == 0, str(result)
    netem()  # stop the impairment before reading the capture: its counters say it happened
    found = [m for m in decoded(lab, capture) if m.values is not None]
    request, response = found
    assert request.values == values == response.values
    assert request.fields["socketlab.content_length"] == str(8 * len(values))
    # 200 KB through a 1280-byte MTU: the request, as the router sends it on to the server, is
    # well over a hundred segments, reassembled. The answer is seen here as the server sent it:
    # its kernel's GSO batches of up to 64 KB (the router cuts them), still several segments.
    assert request.segments > 150, request.segments
    assert response.segments > 1, response.segments


def test_a_malformed_frame_is_an_expert_warning(lab, capture):
    code = (f"import socket; s = socket.create_connection(('{SERVER_V4}', {APP_PORT}), timeout=10); "
            "s.sendall(b'\\x00\\x05{nope'); print(s.recv(65536))")
    result = lab.run("client", "python3", "-c", code)
    assert result.returncode == 0, str(result)
    request, response = decoded(lab, capture)
    assert request.direction == "request" and request.experts == ["socketlab.header.not_json"]
    assert response.json["result"].startswith("Error: bad request: header is not valid JSON")
