"""A synthetic conformance report, the one both report tests read (lab_tests/unit/test_conform_report.py
and lab_tests/guest/test_conform_page.py): two positions, every verdict, a program's hostile
output, a case without packets, one with 500, and a small exchange drawn by hand.

:data:`EXCHANGE` is that exchange with what its ladder must show, packet by packet: the label
and the lifelines the arrow goes from and to.
"""

from __future__ import annotations

import copy

from lab_tests import topology

CLIENT, SERVER = topology.CLIENT_V4, topology.SERVER_V4
ROUTER = topology.address("router", "clientnet", 4)  # as the client sees it
PORT, EPHEMERAL = topology.conformance_ports()[1], 40000
POSITIONS = ["little-endian", "big-endian"]
HOSTILE_STDOUT = "</pre><script>alert(1)</script>"
HOSTILE_STDERR = "\x00\x1b[31m red \udcff"
HOSTILE_PAYLOAD = b"<script>alert(2)</script>"


def _packet(t: float, src: str, sport: int | None, dst: str, dport: int | None, flags: str,
            payload: bytes = b"", icmp: str | None = None) -> dict:
    return {"t": t, "src": src, "sport": sport, "dst": dst, "dport": dport, "flags": flags,
            "len": len(payload), "hex": payload.hex(), "icmp": icmp}


def _up(t: float, flags: str, payload: bytes = b"") -> dict:  # client -> server
    return _packet(t, CLIENT, EPHEMERAL, SERVER, PORT, flags, payload)


def _down(t: float, flags: str, payload: bytes = b"") -> dict:  # server -> client
    return _packet(t, SERVER, PORT, CLIENT, EPHEMERAL, flags, payload)


REQUEST = b'\x00\x57{"byteorder": "big", "content-type": "text/json", "content-length": 36}'
#: The hand-made exchange: (packet, label, from lifeline, to lifeline).
EXCHANGE = [
    (_up(0.0, "S"), "SYN", "client", "server"),
    (_down(0.000210, "S."), "SYN-ACK", "server", "client"),
    (_up(0.000305, "."), "ACK", "client", "server"),
    (_up(0.000812, "P.", REQUEST), f"data {len(REQUEST)} B", "client", "server"),
    (_down(0.001020, "."), "ACK", "server", "client"),
    (_down(0.0021, "P.", HOSTILE_PAYLOAD), f"data {len(HOSTILE_PAYLOAD)} B", "server", "client"),
    (_up(0.0125, "F."), "FIN", "client", "server"),
    # The router's address with the server's port: the server's side, by its port pair.
    (_packet(0.0131, ROUTER, PORT, CLIENT, EPHEMERAL, "R."), "RST", "server", "client"),
    (_packet(0.0502, CLIENT, EPHEMERAL + 1, topology.NOWHERE_V4, PORT, "S"), "SYN", "client", "server"),
    (_packet(0.0503, ROUTER, None, CLIENT, None, "", icmp="host unreachable"), "ICMP host unreachable",
     "router", "client"),
]


def _case(case_id: str, topic: str, title: str, position: str, verdict: str, packets: list[dict],
          stdout: str = "", stderr: str = "", returncode: int | None = 0, stopped: bool = False,
          observed: str = "as expected") -> dict:
    return {
        "id": case_id, "topic": topic, "title": title,
        "guide": "The client sends its request, reads the whole response and closes the socket.",
        "role": "app-client", "position": position, "verdict": verdict,
        "expected": "one request, a response read to its content-length, then FIN", "observed": observed,
        "duration_s": 0.8,
        "program": {"argv": ["python3", "app-client.py", SERVER, str(PORT), "search", "ring"],
                    "returncode": returncode, "stopped": stopped, "stdout": stdout, "stderr": stderr,
                    "truncated": 0},
        "pcap": f"pcaps/{case_id}-{position}.pcap" if packets else None,
        "hosts": {"client": CLIENT, "server": SERVER},
        "packets": packets,
        "packets_omitted": 0,
    }


def _many(count: int) -> list[dict]:
    """A long exchange: ``count`` packets, requests and responses by turns."""
    return [(_up if number % 2 == 0 else _down)(number * 0.002, "P.", bytes([number % 256]) * 40)
            for number in range(count)]


def sample_report() -> dict:
    """The synthetic report (a new dict each call): 12 cases, 2 positions, every verdict."""
    connect = "1. Connecting and closing"
    app = "3. The application client and server"
    beyond = "10. Robustness beyond the guide"
    exchange = [packet for packet, *_ in EXCHANGE]
    cases = [
        # Listed out of id order on purpose: the page sorts them (10.x after 3.x).
        _case("10.1.1", beyond, "a 1000-request pipeline is answered in order", "little-endian", "INFORMATIONAL",
              _many(500), stdout="request 1\n" * 50, returncode=None, stopped=True,
              observed="stopped at the deadline after 250 responses"),
        _case("10.1.1", beyond, "a 1000-request pipeline is answered in order", "big-endian", "PASS", _many(20)),
        _case("1.1.1", connect, "the client connects, sends one request and closes", "little-endian", "PASS",
              exchange, stdout="result: ring\n"),
        _case("1.1.1", connect, "the client connects, sends one request and closes", "big-endian", "PASS",
              exchange, stdout="result: ring\n"),
        _case("1.2.1", connect, "a refused connection is reported in the guide's words", "little-endian",
              "NON-STRICT", exchange[:2] + exchange[7:8], returncode=1,
              stderr="ConnectionRefusedError: [Errno 111] Connection refused\n",
              observed="exit status 1 with a traceback, not one line"),
        _case("1.2.1", connect, "a refused connection is reported in the guide's words", "big-endian", "PASS",
              exchange[:2] + exchange[7:8], returncode=1, stderr="error: connection refused (ECONNREFUSED)\n"),
        _case("3.2.1", app, "the response header is decoded in network byte order", "little-endian", "FAIL",
              exchange, stdout=HOSTILE_STDOUT, stderr=HOSTILE_STDERR, returncode=2,
              observed=f"the client printed {HOSTILE_STDOUT}"),
        _case("3.2.1", app, "the response header is decoded in network byte order", "big-endian", "FAIL",
              exchange, stdout="result: \x1b[31mgnir\x1b[0m\n", returncode=0,
              observed="the response read as 22272 bytes long (0x5700 ≠ 0x0057)"),
        _case("3.4.1", app, "an array value is sent and its elements read back", "little-endian", "UNIMPLEMENTED",
              [], stderr="usage: app-client.py host port action value\n", returncode=2,
              observed="the program has no array type"),
        _case("3.4.1", app, "an array value is sent and its elements read back", "big-endian", "UNIMPLEMENTED",
              [], returncode=2, observed="the program has no array type"),
        _case("3.9.1", app, "an unknown action gets the guide's error response", "little-endian", "NON-STRICT",
              exchange[:7], observed="the error text differs from the guide's"),
        _case("3.9.1", app, "an unknown action gets the guide's error response", "big-endian", "INFORMATIONAL",
              exchange[:7], observed="no response within 5 s"),
    ]
    return copy.deepcopy({
        "role": "app-client", "program": "/work/student/app", "command": "python3 app-client.py {host} {port} "
        "{action} {value}", "started": "2026-12-05T12:00:00Z", "duration_s": 41.2, "positions": list(POSITIONS),
        "cases": cases,
    })
