#!/usr/bin/env python3
"""Guide-style blocking echo client (Real Python socket guide, first program).

Usage: echo-client.py [--bug NAME] HOST PORT [MESSAGE]

Connects, sendall()s MESSAGE (utf-8, default "Hello, world"), does ONE
recv(1024) -- the guide's approach, so a long echo may come back cut
short -- and prints "Received {data!r}".

Seeded bugs: none (any --bug NAME is rejected).
"""

import socket
import sys

import seeds

BUGS = ()
USAGE = f"Usage: {sys.argv[0]} [--bug NAME] <host> <port> [message]"

seeds.take_bug(BUGS, USAGE)  # none: any --bug NAME is refused

if len(sys.argv) not in (3, 4):
    print(f"Usage: {sys.argv[0]} <host> <port> [message]")
    sys.exit(1)

HOST, PORT = sys.argv[1], int(sys.argv[2])
MESSAGE = sys.argv[3] if len(sys.argv) == 4 else "Hello, world"

with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.connect((HOST, PORT))
    s.sendall(MESSAGE.encode("utf-8"))
    data = s.recv(1024)

print(f"Received {data!r}")
