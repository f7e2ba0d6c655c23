"""The half-open connection across the router (issue 21, docs/lessons.md): the client sends and
shuts down its side; the server (``socketlab half-open-server``) reads to EOF, holds its side
open, then answers. While it holds, ``ss -tn`` says FIN-WAIT-2 on the client and CLOSE-WAIT on
the server; the router's capture shows the ladder: the request, the client's FIN, its ACK, the
answer after it, the server's FIN."""

from __future__ import annotations

import re

from lab_tests.topology import CLIENT_V4, SERVER_V4

from .test_hostnames import PORT, serving


def test_half_open_states_and_the_ladder(lab, capture):
    with serving(lab, "server", "0.0.0.0", program="half-open-server --hold 4") as server_log:
        client_log = "/tmp/half-close.log"
        pid = lab.background("client", f"socketlab echo-client {SERVER_V4} {PORT} 'half open' "
                                       f"--half-close -q --timeout 20", client_log)
        try:
            lab.wait_for_line("server", server_log, "^EOF from")  # the server holds its side now
            client_ss = lab.run("client", "ss", "-tn", f"dport = :{PORT}").stdout
            server_ss = lab.run("server", "ss", "-tn", f"sport = :{PORT}").stdout
            said = lab.wait_for_line("client", client_log, "^Received")
        finally:
            lab.run("client", "sh", "-c", f"kill {pid} 2>/dev/null; true")
    assert re.search(rf"^FIN-WAIT-2\s+\d+\s+\d+\s+{CLIENT_V4}:\d+\s+{SERVER_V4}:{PORT}\s", client_ss, re.M), client_ss
    assert re.search(rf"^CLOSE-WAIT\s+\d+\s+\d+\s+{SERVER_V4}:{PORT}\s+{CLIENT_V4}:\d+\s", server_ss, re.M), server_ss
    assert "Received b'half open'" in said
    # The ladder, from the router's capture: one interface's view, in order.
    pcap = capture.pcap()
    shown = lab.root("router", "tshark", "-r", pcap, "-n", "-Y", f"tcp.port == {PORT}",
                     "-T", "fields", "-e", "sll.ifindex", "-e", "ip.src", "-e", "tcp.flags.str",
                     "-e", "tcp.len")
    rows = [line.split("\t") for line in shown.stdout.splitlines() if line]
    side = rows[0][0]
    ladder = [(("client" if r[1] == CLIENT_V4 else "server"),
               r[2].replace("\u00b7", ".").strip("."), int(r[3] or 0)) for r in rows if r[0] == side]
    events = [(who, "FIN" if "F" in flags else "data" if length else None) for who, flags, length in ladder]
    events = [e for e in events if e[1]]
    assert events == [("client", "data"), ("client", "FIN"), ("server", "data"), ("server", "FIN")], ladder
