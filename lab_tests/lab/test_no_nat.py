"""The server sees the client's own address: the router routes, it does not NAT."""

import json
import re

import pytest

from lab_tests.topology import APP_PORT, CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6



@pytest.mark.parametrize(("server", "client_addr", "logged"), [
    (SERVER_V4, CLIENT_V4, f"::ffff:{CLIENT_V4}"),  # IPv4-mapped on the "::" socket
    (SERVER_V6, CLIENT_V6, CLIENT_V6),
])
def test_server_log_names_the_clients_own_address(lab, server, client_addr, logged):
    result = lab.run("client", "socketlab", "app-client", server, str(APP_PORT), "search", "ring", "--json")
    assert result.returncode == 0, str(result)
    local_addr, local_port = json.loads(result.stdout)["local"]
    assert local_addr == client_addr
    # The app server prints the guide's lines, naming the peer as Python shows it.
    peer = (logged, local_port, 0, 0)
    pattern = re.compile(rf"^{APP_PORT} app-server \| Accepted connection from {re.escape(str(peer))}$", re.M)
    log = lab.logs("server")
    assert pattern.search(log), f"no connection from {peer} in the server log:\n{log[-3000:]}"


def test_capture_on_router_shows_the_same_addresses_on_both_networks(lab, capture):
    """The router's capture (readable by tshark) shows the client's address on both sides."""
    result = lab.run("client", "socketlab", "app-client", SERVER_V4, str(APP_PORT), "search", "morpheus", "--json")
    assert result.returncode == 0, str(result)
    local_port = json.loads(result.stdout)["local"][1]
    pcap = capture.pcap()
    fields = lab.root("router", "tshark", "-r", pcap, "-n",
                      "-Y", f"tcp.srcport == {local_port} && tcp.flags.syn == 1",
                      "-T", "fields", "-e", "sll.ifindex", "-e", "ip.src", "-e", "ip.dst")
    assert fields.returncode == 0, str(fields)
    rows = [line.split("\t") for line in fields.stdout.splitlines() if line]
    # The SYN, captured twice: arriving from clientnet and leaving to servernet, same addresses.
    assert len(rows) == 2, fields.stdout
    assert {r[0] for r in rows} == {rows[0][0], rows[1][0]} and rows[0][0] != rows[1][0]
    assert all(r[1:] == [CLIENT_V4, SERVER_V4] for r in rows), rows
