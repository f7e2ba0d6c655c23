"""The conformance suite's side of every exchange: a server for clients under test, a client
for servers under test. It records the bytes; the runner (lab_tests/conform/cases.py) judges.

Sent to a lab host as ``python3 -c`` (as lab_tests/conform/jail.py is), run as the unprivileged
user; standard library and the image's socketlab package (the answers: ``app.respond``)::

    peer serve PLANS         servers: PLANS (JSON, {port: plan}) says how each answers its
                             connections; prints "ready", serves until its stdin ends, then
                             one JSON line, {port: {"connections": [...]}}
    peer client HOST PORT [--refused-ends]
                             a client: the steps (JSON list) on stdin; one JSON line
                             (--refused-ends: a refused first connect is the only step run:
                             the runner starts the server again and repeats the exchange)

The bytes travel as base64 in the JSON; what could be large (an echo of megabytes) travels as
its length, SHA-256 and the first bytes that differ.

A plan: ``{"read": "message"|"stream", "reply": "answer"|"echo"|"none",
"delivery": "whole"|"bytes"|[offsets], "end": "close"|"reset"|"hold"}``. "message" reads one
message of the guide's protocol (its length prefix read big-endian, as the guide's receiver
does; a prefix that promises more than arrives is given up on after IDLE seconds of silence).
"bytes" sends one byte per segment; offsets split the answer there.
"""

import base64
import errno
import hashlib
import json
import socket
import struct
import sys
import threading
import time

IDLE = 1.0            # seconds of silence after which a short message is taken as all there is
PACE = 0.002          # seconds between one-byte segments
SPLIT_PAUSE = 0.05    # seconds between the parts of a split message
MAX_KEPT = 1 << 20    # bytes of a connection kept for the report
LIFETIME = 300        # seconds a server of the suite waits for the runner at most
#: The first words of this file, so of every peer's command line (``python3 -c SOURCE``): how
#: the runner finds the peers a killed run left behind.
SIGNATURE = "The conformance suite's side of every exchange"


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def nodelay(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def deliver(sock, data, delivery):
    """Send DATA whole, one byte per segment, or split at the given offsets."""
    if delivery == "whole":
        sock.sendall(data)
        return
    nodelay(sock)
    cuts = range(1, len(data)) if delivery == "bytes" else [k for k in delivery if 0 < k < len(data)]
    start = 0
    for cut in list(cuts) + [len(data)]:
        sock.sendall(data[start:cut])
        start = cut
        if cut < len(data):
            time.sleep(PACE if delivery == "bytes" else SPLIT_PAUSE)


def needed(kept):
    """How many bytes the message in KEPT has in all, as far as KEPT tells; None when its
    header is not the protocol's (the judge says why)."""
    if len(kept) < 2:
        return 2
    hdrlen = struct.unpack(">H", kept[:2])[0]
    if len(kept) < 2 + hdrlen:
        return 2 + hdrlen
    try:
        header = json.loads(bytes(kept[2:2 + hdrlen]).decode("utf-8"))
        return 2 + hdrlen + int(header["content-length"])
    except (ValueError, KeyError, TypeError):
        return None


def read_message(sock, kept):
    """Read one message of the guide's protocol into KEPT (a bytearray); 'complete', 'eof',
    'reset', or 'short' (the prefix or header promised more than came within IDLE s)."""
    sock.settimeout(IDLE)
    while True:
        need = needed(kept)
        if need is None or len(kept) >= need:
            return "complete"
        if need > MAX_KEPT:
            return "short"
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return "short"
        except ConnectionResetError:
            return "reset"
        if not data:
            return "eof"
        kept += data


def drain(sock, timeout):
    """Read until the peer closes; 'eof', 'reset' or 'open' (still open after TIMEOUT)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return "eof"
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        return "reset"


class Server:
    def __init__(self, port, plan):
        self.plan = plan
        self.records = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True,
                                             reuse_port=False, backlog=64)
        self.stopping = threading.Event()

    def serve(self):
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, addr = self.listener.accept()
            except socket.timeout:
                continue
            record = {"peer": [addr[0].replace("::ffff:", ""), addr[1]], "t_accept": time.time()}
            with self.lock:
                self.records.append(record)
            threading.Thread(target=self.handle, args=(conn, record), daemon=True).start()

    def handle(self, conn, record):
        plan = self.plan
        kept = bytearray()
        sent = 0
        try:
            if plan["read"] == "message":
                record["read"] = read_message(conn, kept)
                answer = b""
                if plan["reply"] == "answer" and record["read"] == "complete":
                    answer = self.answer(bytes(kept), record)
                if answer:
                    deliver(conn, answer, plan["delivery"])
                    sent = len(answer)
            else:  # stream: echo what comes until the client closes
                conn.settimeout(30)
                while True:
                    data = conn.recv(65536)
                    if not data:
                        record["read"] = "eof"
                        break
                    kept += data[:MAX_KEPT - len(kept)]
                    if plan["reply"] == "echo":
                        deliver(conn, data, plan["delivery"])
                        sent += len(data)
            record["sent"] = sent
            end = plan["end"]
            if end == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif end == "close" and record.get("read") != "reset":
                conn.shutdown(socket.SHUT_WR)
            if end in ("close", "hold") and record.get("read") not in ("eof", "reset"):
                # after the answer (or none): what the client does next
                record["client_end"] = drain(conn, 60 if end == "hold" else 5)
            else:
                record["client_end"] = record.get("read")
        except OSError as exc:
            record["error"] = "%s: %s" % (type(exc).__name__, exc)
        finally:
            record["received"] = b64(kept)
            record["t_end"] = time.time()
            conn.close()

    @staticmethod
    def answer(request, record):
        """The guide's answer to REQUEST (socketlab's app-server logic), or b"" when socketlab's
        decoder refuses it (the judge reads the raw bytes and says why)."""
        from socketlab import app
        from socketlab.protocol import MessageDecoder, ProtocolError

        decoder = MessageDecoder()
        try:
            decoder.receive_data(request)
            message = decoder.next_message()
            return app.respond(message)
        except (ProtocolError, AttributeError, ValueError) as exc:
            record["refused"] = "%s: %s" % (type(exc).__name__, exc)
            return b""


def serve(plans):
    """One server per port of PLANS ({port: plan}), all at once: one per run of a position's
    client exchanges, so the program under test meets them one after the other."""
    servers = {port: Server(int(port), plan) for port, plan in plans.items()}
    threads = [threading.Thread(target=server.serve, daemon=True) for server in servers.values()]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    # The runner closes stdin when the program under test is done; a runner that went away
    # never does: LIFETIME bounds the wait, so no server of the suite outlives its run for long.
    ended = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), ended.set()), daemon=True).start()
    ended.wait(LIFETIME)
    for server in servers.values():
        server.stopping.set()
    for thread in threads:
        thread.join()
    deadline = time.time() + 2
    while time.time() < deadline and any("t_end" not in r for s in servers.values() for r in s.records):
        time.sleep(0.02)  # polling the handlers' own end marks, with a deadline
    print(json.dumps({port: {"connections": server.records} for port, server in servers.items()}), flush=True)


# --- the client side: steps ------------------------------------------------------------------

def pattern(size):
    """SIZE bytes that show where they come from: a counter, 4 bytes per position."""
    return b"".join(struct.pack(">I", i) for i in range((size + 3) // 4))[:size]


def summary(data, expected):
    """What an echo looked like: length, hash, and where it first differs from EXPECTED."""
    first = next((i for i, (a, b) in enumerate(zip(data, expected)) if a != b), None)
    if first is None and len(data) != len(expected):
        first = min(len(data), len(expected))
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "first_difference": first,
            "head": b64(data[:64])}


def exchange(sock, data, delivery, timeout, read_after=0.0):
    """Send DATA (whole, byte by byte, or split) while reading the echo, so a blocking echo
    server never deadlocks; the bytes read, and how it ended. READ_AFTER: seconds of sending
    before the first read (a reader that is late: the server's send buffer fills, and its
    send() takes only part)."""
    sock.setblocking(False)
    got = bytearray()
    view = memoryview(data)
    if delivery == "whole":
        chunks = [data]
    else:  # one byte per segment, or split at the offsets: paced like deliver()
        cuts = list(range(1, len(data))) if delivery == "bytes" else [k for k in delivery if 0 < k < len(data)]
        chunks = [bytes(view[a:b]) for a, b in zip([0] + cuts, cuts + [len(data)])]
        nodelay(sock)
    pause = PACE if delivery == "bytes" else SPLIT_PAUSE
    outgoing = b""
    sent_chunks = 0
    deadline = time.monotonic() + timeout
    read_from = time.monotonic() + read_after
    end = "complete"
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_WRITE)
    while len(got) < len(data):
        wanted = (selectors.EVENT_WRITE if outgoing or chunks else 0) | (
            selectors.EVENT_READ if time.monotonic() >= read_from else 0)
        if not wanted:  # all sent, not reading yet
            time.sleep(0.01)  # the late reader the step asks for: pacing, not readiness
            continue
        sel.modify(sock, wanted)
        if time.monotonic() > deadline:
            end = "timeout"
            break
        if not outgoing and chunks:
            if sent_chunks:
                time.sleep(pause)
            outgoing = chunks.pop(0)
            sent_chunks += 1
        for key, mask in sel.select(0.05):
            if mask & selectors.EVENT_WRITE and outgoing:
                try:
                    outgoing = outgoing[sock.send(outgoing):]
                except BlockingIOError:
                    pass
            if mask & selectors.EVENT_READ:
                try:
                    piece = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    end = "reset"
                    break
                if not piece:
                    end = "eof"
                    break
                got += piece
        if end != "complete":
            break
    sel.close()
    sock.setblocking(True)
    return bytes(got), end


def client(host, port, steps, refused_ends=False):
    conns = {}
    results = []
    started = time.time()
    for step in steps:
        op, name = step["op"], step.get("conn")
        result = {"op": op, "conn": name, "t": round(time.time() - started, 4)}
        try:
            if op == "connect":
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
                if step.get("rcvbuf"):  # a small window: the server's send() then takes only part
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, step["rcvbuf"])
                sock.settimeout(step.get("timeout", 5))
                try:
                    sock.connect((host, port))
                except OSError:
                    sock.close()
                    raise
                conns[name] = sock
                result["local"] = list(conns[name].getsockname()[:2])
            elif op == "send":
                deliver(conns[name], base64.b64decode(step["data"]), step.get("delivery", "whole"))
            elif op == "recv_message":
                kept = bytearray()
                conns[name].settimeout(step.get("timeout", 10))
                result["end"] = read_message_until(conns[name], kept, step.get("timeout", 10))
                result["data"] = b64(kept)
            elif op == "recv_until_close":
                kept = bytearray()
                result["end"] = recv_until_close(conns[name], kept, step.get("timeout", 10))
                result["data"] = b64(kept[:MAX_KEPT])
            elif op == "echo":
                data = pattern(step["size"]) if "size" in step else base64.b64decode(step["data"])
                got, end = exchange(conns[name], data, step.get("delivery", "whole"), step.get("timeout", 10),
                                    step.get("read_after", 0.0))
                result.update(summary(got, data), end=end, expected_length=len(data))
            elif op == "shutdown":
                conns[name].shutdown(socket.SHUT_WR)
            elif op == "reset":
                conns[name].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conns.pop(name).close()
            elif op == "close":
                conns.pop(name).close()
            elif op == "pause":
                time.sleep(step["seconds"])  # a step of the exchange (a gap between peers), not readiness
            result["ok"] = True
        except (OSError, KeyError) as exc:
            result["ok"] = False
            result["error"] = "%s: %s" % (type(exc).__name__, exc)
            result["errno"] = getattr(exc, "errno", None)
        results.append(result)
        if refused_ends and len(results) == 1 and result.get("errno") == errno.ECONNREFUSED:
            break
    for sock in conns.values():
        sock.close()
    print(json.dumps({"steps": results, "started": started}), flush=True)


def read_message_until(sock, kept, timeout):
    """One whole message within TIMEOUT (the server may be slow): 'complete', 'eof', 'reset',
    'timeout'."""
    deadline = time.monotonic() + timeout
    while True:
        end = read_message(sock, kept)
        if end != "short":
            return end
        if time.monotonic() > deadline:
            return "timeout"


def recv_until_close(sock, kept, timeout):
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return "eof"
            kept += data
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"


def main(args):
    if args[0] == "serve":
        serve(json.loads(args[1]))
    elif args[0] == "client":
        client(args[1], int(args[2]), json.loads(sys.stdin.read()), refused_ends="--refused-ends" in args[3:])
    else:
        sys.exit("peer: unknown command %r" % args[0])


if __name__ == "__main__":
    main(sys.argv[1:])
