#!/usr/bin/env python3
"""Guide-style multi-connection client (selectors, non-blocking connect_ex).

Usage: multiconn-client.py [--bug NAME] HOST PORT NUM_CONNS

Opens NUM_CONNS connections, sends the two guide messages on each, counts
the echoed bytes and closes a connection once it has them all (or the
server closes).  Exits when no connection is left.  No timeout, like the
guide: a server that never echoes keeps it waiting.

Seeded bugs: none (any --bug NAME is rejected).
"""

import selectors
import socket
import sys
import types

import seeds

BUGS = ()
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port> <num_connections>"

seeds.take_bug(BUGS, USAGE)  # none: any --bug NAME is refused

sel = selectors.DefaultSelector()
messages = [b"Message 1 from client.", b"Message 2 from client."]


def start_connections(host, port, num_conns):
    server_addr = (host, port)
    for connid in range(1, num_conns + 1):
        print(f"Starting connection {connid} to {server_addr}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(server_addr)  # in progress; the selector tells us
        data = types.SimpleNamespace(
            connid=connid,
            msg_total=sum(len(m) for m in messages),
            recv_total=0,
            messages=list(messages),
            outb=b"",
        )
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, data=data)


def service_connection(key, mask):
    sock = key.fileobj
    data = key.data
    if mask & selectors.EVENT_READ:
        recv_data = sock.recv(1024)
        if recv_data:
            print(f"Received {recv_data!r} from connection {data.connid}")
            data.recv_total += len(recv_data)
        if not recv_data or data.recv_total == data.msg_total:
            print(f"Closing connection {data.connid}")
            sel.unregister(sock)
            sock.close()
    if mask & selectors.EVENT_WRITE:
        if not data.outb and data.messages:
            data.outb = data.messages.pop(0)
        if data.outb:
            print(f"Sending {data.outb!r} to connection {data.connid}")
            sent = sock.send(data.outb)
            data.outb = data.outb[sent:]


if len(sys.argv) != 4:
    print(f"Usage: {sys.argv[0]} <host> <port> <num_connections>")
    sys.exit(1)

host, port, num_conns = sys.argv[1:4]
start_connections(host, int(port), int(num_conns))

try:
    while True:
        for key, mask in sel.select(timeout=1):
            service_connection(key, mask)
        if not sel.get_map():  # every connection closed
            break
except KeyboardInterrupt:
    print("Caught keyboard interrupt, exiting")
finally:
    sel.close()
