#!/usr/bin/env python3
"""Guide-style blocking echo server (Real Python socket guide, first program).

Usage: echo-server.py [--bug NAME] HOST PORT

Serves ONE connection: prints "Connected by {addr}", echoes every
recv(1024) back with sendall() until the peer closes, then exits.

Seeded bugs (--bug NAME, first argument):
  loopback  binds 127.0.0.1 whatever HOST it is given.
"""

import socket
import sys

import seeds

BUGS = ("loopback",)
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port>"

bug = seeds.take_bug(BUGS, USAGE)

if len(sys.argv) != 3:
    print(f"Usage: {sys.argv[0]} <host> <port>")
    sys.exit(1)

HOST, PORT = sys.argv[1], int(sys.argv[2])
if bug == "loopback":
    HOST = "127.0.0.1"  # BUG: ignores the address it was told to use

with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind((HOST, PORT))
    s.listen()
    conn, addr = s.accept()
    with conn:
        print(f"Connected by {addr}")
        while True:
            data = conn.recv(1024)
            if not data:
                break
            conn.sendall(data)
