"""The half-open connection across the router (issue 21, docs/lessons.md): the client sends and
shuts down its side; the server (``socketlab half-open-server``) reads to EOF, holds its side
open, then answers. While it holds, ``ss -tn`` says FIN-WAIT-2 on the client and CLOSE-WAIT on
the server; the router's capture shows the ladder: the request, the client's FIN, its ACK, the
answer after it, the server's FIN."""

from __future__ import annotations

import json
import re

from lab_tests.topology import CLIENT_V4, SERVER_V4

from .test_hostnames import PORT, serving


def test_half_open_states_and_the_ladder(lab, capture):
    with serving(lab, "server", "0.0.0.0", program="half-open-server", options="--hold 4") as server_log:
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


BACKLOG_SCRIPT = r"""
import json, socket, subprocess, time
from socketlab import lessons
listener = socket.create_server(("127.0.0.1", 0), backlog=10)
port = listener.getsockname()[1]
clients = []
for _ in range(20):
    sock = socket.socket()
    sock.setblocking(False)
    sock.connect_ex(("127.0.0.1", port))
    clients.append(sock)
for _ in range(100):  # until the kernel's queue is full: its own count, polled
    if lessons.listen_queue(listener)[0] == 11:
        break
    time.sleep(0.02)  # polling the kernel's own count, with a bound
ss = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
print(json.dumps({"ss": ss, "tcp_info": lessons.listen_queue(listener)}))
"""


def test_ss_shows_the_accept_queue_and_the_backlog_as_socketlab_reads_them(lab):
    """``ss -ltn`` on a listener: Recv-Q is the accept queue (11 for listen(10) on Linux), Send-Q
    the backlog (10); ``socketlab backlog`` reads the same two numbers with TCP_INFO."""
    result = lab.run("client", "python3", "-c", BACKLOG_SCRIPT)
    assert result.returncode == 0, str(result)
    seen = json.loads(result.stdout)
    fields = seen["ss"].split()
    assert fields[0] == "LISTEN" and (int(fields[1]), int(fields[2])) == (11, 10), seen
    assert seen["tcp_info"] == [11, 10], seen
