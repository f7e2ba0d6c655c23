#!/usr/bin/env python3
"""Guide-style application server (selectors + libserver.Message).

Usage: app-server.py [--bug NAME] HOST PORT

Answers "search" requests from a tiny dictionary and binary requests with
their first 10 bytes (see libserver.py; also socketlab's int32 array
type).  An exception while serving one connection is printed with its
traceback and only that connection is closed, as in the guide.

Seeded bugs (--bug NAME, first argument):
  one-recv  the data of one recv() is taken as the whole request.
  loopback  binds 127.0.0.1 whatever HOST it is given, but still prints
            "Listening on ('<HOST given>', PORT)".
"""

import selectors
import socket
import sys
import traceback

import libserver
import seeds

BUGS = ("one-recv", "loopback")
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port>"

bug = seeds.take_bug(BUGS, USAGE)

sel = selectors.DefaultSelector()


def accept_wrapper(sock):
    conn, addr = sock.accept()
    print(f"Accepted connection from {addr}")
    conn.setblocking(False)
    message = libserver.Message(sel, conn, addr, bug=bug)
    sel.register(conn, selectors.EVENT_READ, data=message)


if len(sys.argv) != 3:
    print(f"Usage: {sys.argv[0]} <host> <port>")
    sys.exit(1)

host, port = sys.argv[1], int(sys.argv[2])
bind_host = "127.0.0.1" if bug == "loopback" else host  # BUG when loopback
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Lets a restarted server bind at once despite old connections in TIME_WAIT.
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind((bind_host, port))
lsock.listen()
print(f"Listening on {(host, port)}")
lsock.setblocking(False)
sel.register(lsock, selectors.EVENT_READ, data=None)

try:
    while True:
        for key, mask in sel.select(timeout=None):
            if key.data is None:
                accept_wrapper(key.fileobj)
                continue
            message = key.data
            try:
                message.process_events(mask)
            except Exception:
                print(
                    f"Main: Error: Exception for {message.addr}:\n"
                    f"{traceback.format_exc()}"
                )
                message.close()
except KeyboardInterrupt:
    print("Caught keyboard interrupt, exiting")
finally:
    sel.close()
