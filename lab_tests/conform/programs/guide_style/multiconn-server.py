#!/usr/bin/env python3
"""Guide-style multi-connection echo server (selectors, non-blocking).

Usage: multiconn-server.py [--bug NAME] HOST PORT

Echoes whatever each client sends, through a per-connection output buffer
(data.outb) drained with sock.send().  Like the guide it does not handle
ConnectionResetError: a peer reset crashes the whole server.

Seeded bugs (--bug NAME, first argument):
  partial-send  after sock.send() it drops the unsent rest of data.outb
                instead of keeping it for the next write event.
  exit-on-close when a client closes, the whole server exits (every other
                client's connection with it).
"""

import selectors
import socket
import sys
import types

import seeds

BUGS = ("partial-send", "exit-on-close")
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port>"

bug = seeds.take_bug(BUGS, USAGE)

sel = selectors.DefaultSelector()


def accept_wrapper(sock):
    conn, addr = sock.accept()  # the listener is readable: a client waits
    print(f"Accepted connection from {addr}")
    conn.setblocking(False)
    data = types.SimpleNamespace(addr=addr, inb=b"", outb=b"")
    sel.register(conn, selectors.EVENT_READ | selectors.EVENT_WRITE, data=data)


def service_connection(key, mask):
    sock = key.fileobj
    data = key.data
    if mask & selectors.EVENT_READ:
        recv_data = sock.recv(1024)
        if recv_data:
            data.outb += recv_data
        else:
            print(f"Closing connection to {data.addr}")
            sel.unregister(sock)
            sock.close()
            if bug == "exit-on-close":
                sys.exit(0)  # BUG: one client's close ends everyone's
    if mask & selectors.EVENT_WRITE:
        if data.outb:
            print(f"Echoing {data.outb!r} to {data.addr}")
            sent = sock.send(data.outb)
            if bug == "partial-send":
                data.outb = b""  # BUG: whatever send() did not take is lost
            else:
                data.outb = data.outb[sent:]


if len(sys.argv) != 3:
    print(f"Usage: {sys.argv[0]} <host> <port>")
    sys.exit(1)

host, port = sys.argv[1], int(sys.argv[2])
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.bind((host, port))
lsock.listen()
print(f"Listening on {(host, port)}")
lsock.setblocking(False)
sel.register(lsock, selectors.EVENT_READ, data=None)

try:
    while True:
        for key, mask in sel.select(timeout=None):
            if key.data is None:
                accept_wrapper(key.fileobj)
            else:
                service_connection(key, mask)
except KeyboardInterrupt:
    print("Caught keyboard interrupt, exiting")
finally:
    sel.close()
