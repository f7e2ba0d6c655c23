#!/usr/bin/env python3
"""Guide-style application client (selectors + libclient.Message).

Usage: app-client.py [--bug NAME] HOST PORT ACTION VALUE

ACTION "search" sends a text/json request {"action", "value"}; any other
ACTION sends "binary/custom-client-binary-type" content (ACTION + VALUE
in utf-8).  One non-blocking connection; the loop runs until the
connection is closed.  No timeout at all, as in the guide.

Seeded bugs (--bug NAME, first argument):
  native-length  request length prefix packed "=H" (native) not ">H".
  one-recv       the first recv() is taken as the whole response.
  array-little   ACTION "stats" sends VALUE ("1,-2,300") as socketlab's
                 "binary/x-socketlab-array; dtype=int32": values packed
                 "<%di" (always little-endian) while the header declares
                 sys.byteorder -- right on little-endian CPUs only.
"""

import selectors
import socket
import struct
import sys
import traceback

import libclient
import seeds

BUGS = ("native-length", "one-recv", "array-little")
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port> <action> <value>"

bug = seeds.take_bug(BUGS, USAGE)

sel = selectors.DefaultSelector()


def create_request(action, value):
    if action == "search":
        return dict(
            type="text/json",
            encoding="utf-8",
            content=dict(action=action, value=value),
        )
    if action == "stats" and bug == "array-little":
        values = [int(v) for v in value.split(",") if v.strip()]
        return dict(
            type="binary/x-socketlab-array; dtype=int32",
            encoding="binary",
            # BUG: always little-endian, but the header says sys.byteorder.
            content=struct.pack("<%di" % len(values), *values),
        )
    return dict(
        type="binary/custom-client-binary-type",
        encoding="binary",
        content=(action + value).encode("utf-8"),
    )


def start_connection(host, port, request):
    addr = (host, port)
    print(f"Starting connection to {addr}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex(addr)  # in progress; the selector reports when writable
    message = libclient.Message(sel, sock, addr, request, bug=bug)
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, data=message)


if len(sys.argv) != 5:
    print(f"Usage: {sys.argv[0]} <host> <port> <action> <value>")
    sys.exit(1)

host, port = sys.argv[1], int(sys.argv[2])
action, value = sys.argv[3], sys.argv[4]
start_connection(host, port, create_request(action, value))

try:
    while True:
        for key, mask in sel.select(timeout=1):
            message = key.data
            try:
                message.process_events(mask)
            except Exception:
                print(
                    f"Main: Error: Exception for {message.addr}:\n"
                    f"{traceback.format_exc()}"
                )
                message.close()
        if not sel.get_map():  # the connection is closed: done
            break
except KeyboardInterrupt:
    print("Caught keyboard interrupt, exiting")
finally:
    sel.close()
