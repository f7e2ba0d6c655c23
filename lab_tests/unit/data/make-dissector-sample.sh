#!/usr/bin/env bash
# Makes dissector-sample.pcap, the capture lab_tests/unit/test_dissector.py reads, in the lab
# image (it has tcpdump and socketlab), on the loopback of a throw-away container:
#
#   docker run --rm --user root --cap-add NET_RAW --cap-add NET_ADMIN -v "$PWD/lab_tests/unit/data:/out" \
#       --entrypoint bash socketlab-lab /out/make-dissector-sample.sh
#
# What is in it, in order: a search and its answer; an int16 array packed big-endian and a
# float64 array packed little-endian, with their answers; a binary request; a 1000-value int64
# array in both directions over a 1500-byte MTU (several segments each way); two requests in
# one segment to a port no dissector knows (the heuristic); a header that is not JSON; a
# header length of 65535.
set -euo pipefail
ip link set lo mtu 1500
cd /tmp
tcpdump -i lo -n -U --immediate-mode -w /out/dissector-sample.pcap 'tcp port 65432 or tcp port 65499' 2>/tmp/tcpdump.log &
capture=$!
until grep -q "listening on" /tmp/tcpdump.log; do sleep 0.05; done
socketlab app-server 127.0.0.1 65432 --quiet >/tmp/server.log 2>&1 &
server=$!
until socketlab probe 127.0.0.1 65432 >/dev/null; do sleep 0.05; done
socketlab app-client 127.0.0.1 65432 search morpheus -q >/dev/null
socketlab app-client 127.0.0.1 65432 stats 1,-2,3 --dtype int16 --byteorder big -q >/dev/null
socketlab app-client 127.0.0.1 65432 stats 1.5,-2.25 --dtype float64 --byteorder little -q >/dev/null
socketlab app-client 127.0.0.1 65432 double 10 -q >/dev/null
socketlab app-client -q --dtype int64 --byteorder big -- 127.0.0.1 65432 stats "$(seq -s, -500 499)" >/dev/null
python3 - <<'PY'
import socket
from socketlab import app
with socket.create_server(("127.0.0.1", 65499)) as listener, \
        socket.create_connection(("127.0.0.1", 65499)) as sock:
    peer, _ = listener.accept()
    sock.sendall(app.make_request("search", "ring") + app.make_request("search", "neo"))
    peer.recv(65536)
    peer.close()
for bad in (b"\x00\x05{nope", b"\xff\xff{xx"):
    with socket.create_connection(("127.0.0.1", 65432)) as sock:
        sock.sendall(bad)
        while sock.recv(65536):  # the server's error answer, then its close
            pass
PY
kill "$server"
kill -INT "$capture"
wait "$capture" || true
