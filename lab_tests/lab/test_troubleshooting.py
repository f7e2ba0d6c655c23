"""The guide's troubleshooting tools, each run where a reader would run it, on the real lab:
ping across the router, the listener in ``netstat``, ``ss`` and ``lsof``, the handshake and the
message in a capture, and the full buffers of the guide's demonstration seen in Recv-Q/Send-Q
(docs/troubleshooting.md shows the output)."""

import json
import re

import pytest


from lab_tests import topology
from lab_tests.topology import APP_PORT, CLIENT_V4, SERVER_V4, SERVER_V6

FILL_PORT = topology.spare_ports()[0]  # accepted by the router, no server of the lab on it
#: The server host's listeners the tools must show, by the address each is given.
ANY, LOOPBACK, ONE_V4, ONE_V6, ANY_V4 = (topology.port_of(program, host=host) for program, host in (
    ("app-server", "::"), ("echo-server", "127.0.0.1"), ("app-server", SERVER_V4),
    ("app-server", SERVER_V6), ("echo-server", "")))


@pytest.mark.parametrize("server", [SERVER_V4, SERVER_V6])
def test_ping_across_the_router(lab, server):
    result = lab.run("client", "ping", "-c", "3", "-i", "0.2", "-W", "2", server, timeout=30)
    assert result.returncode == 0, str(result)
    assert re.search(r"3 packets transmitted, 3 received, 0% packet loss", result.stdout), result.stdout


def test_netstat_shows_the_listeners(lab):
    result = lab.run("server", "netstat", "-an")
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    # "::" (dual stack) as tcp6 on every address; 127.0.0.1 only on loopback; "" as 0.0.0.0.
    for pattern in (rf"^tcp6\s+0\s+0 :::{ANY}\s+:::\*\s+LISTEN",
                    rf"^tcp\s+0\s+0 127\.0\.0\.1:{LOOPBACK}\s+0\.0\.0\.0:\*\s+LISTEN",
                    rf"^tcp\s+0\s+0 {re.escape(SERVER_V4)}:{ONE_V4}\s+0\.0\.0\.0:\*\s+LISTEN",
                    rf"^tcp\s+0\s+0 0\.0\.0\.0:{ANY_V4}\s+0\.0\.0\.0:\*\s+LISTEN"):
        assert any(re.match(pattern, line) for line in lines), f"{pattern}:\n{result.stdout}"


def test_ss_shows_the_listeners(lab):
    result = lab.run("server", "ss", "-tln")
    assert result.returncode == 0, str(result)
    for local in (f"*:{ANY}", f"127.0.0.1:{LOOPBACK}", f"{SERVER_V4}:{ONE_V4}", f"[{SERVER_V6}]:{ONE_V6}",
                  f"0.0.0.0:{ANY_V4}"):
        assert re.search(rf"^LISTEN\s+0\s+\d+\s+{re.escape(local)}\s", result.stdout, re.M), \
            f"{local}:\n{result.stdout}"


def test_lsof_names_the_process_behind_each_listener(lab):
    result = lab.run("server", "lsof", "-i", "-n", "-P")
    assert result.returncode == 0, str(result)
    listeners = [line.split() for line in result.stdout.splitlines() if line.endswith("(LISTEN)")]
    names = {fields[-2] for fields in listeners}
    assert {f"*:{ANY}", f"127.0.0.1:{LOOPBACK}", f"{SERVER_V4}:{ONE_V4}", f"[{SERVER_V6}]:{ONE_V6}"} <= names
    # COMMAND, PID and USER: the socketlab programs, run by the unprivileged user.
    assert all(fields[0] == "socketlab" and fields[2] == "socketlab" for fields in listeners), \
        result.stdout


def test_capture_shows_the_handshake_and_the_message(lab, capture):
    result = lab.run("client", "socketlab", "app-client", SERVER_V4, str(APP_PORT), "search", "morpheus",
                     "--json")
    assert result.returncode == 0, str(result)
    local_port = json.loads(result.stdout)["local"][1]
    pcap = capture.pcap()
    # The router captures each packet twice (in on one network, out on the other): keep the
    # interface the first SYN came in on, in order.
    shown = lab.root("router", "tshark", "-r", pcap, "-n", "-Y", f"tcp.port == {local_port}",
                     "-T", "fields", "-e", "sll.ifindex", "-e", "tcp.flags.str", "-e", "tcp.payload")
    assert shown.returncode == 0, str(shown)
    rows = [line.split("\t") for line in shown.stdout.splitlines() if line]
    side = rows[0][0] if rows else None
    flags = [r[1].replace("\u00b7", ".") for r in rows if r[0] == side]
    # The three-way handshake opens it...
    assert [f.strip(".") for f in flags[:3]] == ["S", "A..S", "A"], flags
    # ...and the request is on the wire: the 2-byte length, then the JSON header.
    payloads = [bytes.fromhex(r[2].replace(":", "")) for r in rows if r[0] == side and r[2]]
    request = b"".join(payloads)
    assert b'"content-type": "text/json"' in request and b'"value": "morpheus"' in request


def test_full_buffers_seen_with_ss_on_both_hosts(lab):
    """The guide's demonstration across the router: the server's Recv-Q and the client's
    Send-Q fill up, and the client meets EWOULDBLOCK; ss shows both queues."""
    server_pid = lab.background("server", f"socketlab fill-server 0.0.0.0 {FILL_PORT}",
                            "/tmp/fill-server.log")
    client_pid = None
    try:
        lab.wait_for_line("server", "/tmp/fill-server.log", "^Listening on")
        client_pid = lab.background("client",
                                f"socketlab fill-client {SERVER_V4} {FILL_PORT} --hold 60",
                                "/tmp/fill-client.log")
        said = lab.wait_for_line("client", "/tmp/fill-client.log", "^Holding the connection")
        total = int(re.search(r"\(EWOULDBLOCK\) after (\d+) bytes", said)[1])
        server_ss = lab.run("server", "ss", "-tn", f"sport = :{FILL_PORT}")
        client_ss = lab.run("client", "ss", "-tn", f"dport = :{FILL_PORT}")
    finally:
        for service, pid in (("client", client_pid), ("server", server_pid)):
            if pid:
                lab.kill(service, pid)
    recv_q = re.search(rf"^ESTAB\s+(\d+)\s+(\d+)\s+{SERVER_V4}:{FILL_PORT}\s", server_ss.stdout, re.M)
    send_q = re.search(rf"^ESTAB\s+(\d+)\s+(\d+)\s+{CLIENT_V4}:\d+\s+{SERVER_V4}:{FILL_PORT}",
                       client_ss.stdout, re.M)
    assert recv_q and send_q, f"{server_ss}\n{client_ss}"
    assert int(recv_q[1]) > 0 and int(send_q[2]) > 0  # Recv-Q on the server, Send-Q on the client
    assert int(recv_q[1]) + int(send_q[2]) == total  # nothing in flight: every byte is queued
