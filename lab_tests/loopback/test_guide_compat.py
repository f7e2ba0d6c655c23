"""Wire compatibility with the guide's reference programs (app-client.py / app-server.py).

``guide_client`` and ``guide_server`` re-create, step by step, what the guide's ``libclient`` and
``libserver`` put on and read off the wire, independently of socketlab's protocol module.
"""

import json
import socket
import struct
import sys
import threading

import pytest

from socketlab import app, client

pytestmark = pytest.mark.loopback

REQUIRED = ("byteorder", "content-length", "content-type", "content-encoding")


def guide_message(content_bytes, content_type, content_encoding):
    jsonheader = {"byteorder": sys.byteorder, "content-type": content_type,
                  "content-encoding": content_encoding, "content-length": len(content_bytes)}
    jsonheader_bytes = json.dumps(jsonheader, ensure_ascii=False).encode("utf-8")
    return struct.pack(">H", len(jsonheader_bytes)) + jsonheader_bytes + content_bytes


def guide_read(sock):
    """protoheader -> jsonheader (required fields checked) -> content, as the guide does."""
    buf = b""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            data = sock.recv(4096)
            if not data:
                raise RuntimeError("Peer closed.")
            buf += data
    need(2)
    hdrlen = struct.unpack(">H", buf[:2])[0]
    need(2 + hdrlen)
    jsonheader = json.loads(buf[2 : 2 + hdrlen].decode("utf-8"))
    for reqhdr in REQUIRED:
        if reqhdr not in jsonheader:
            raise ValueError(f"Missing required header '{reqhdr}'.")
    need(2 + hdrlen + jsonheader["content-length"])
    data = buf[2 + hdrlen : 2 + hdrlen + jsonheader["content-length"]]
    if jsonheader["content-type"] == "text/json":
        return jsonheader, json.loads(data.decode(jsonheader["content-encoding"]))
    return jsonheader, data


def guide_client(host, port, action, value):
    if action == "search":
        request = guide_message(json.dumps({"action": action, "value": value}, ensure_ascii=False)
                                .encode("utf-8"), "text/json", "utf-8")
    else:
        request = guide_message(bytes(action + value, encoding="utf-8"),
                                "binary/custom-client-binary-type", "binary")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        return guide_read(sock)


def guide_server_once(listener):
    conn, _ = listener.accept()
    with conn:
        header, request = guide_read(conn)
        if header["content-type"] == "text/json":
            action = request.get("action")
            if action == "search":
                query = request.get("value")
                answer = app.SEARCH.get(query) or f'No match for "{query}".'
                content = {"result": answer}
            else:
                content = {"result": f'Error: invalid action "{action}".'}
            response = guide_message(json.dumps(content, ensure_ascii=False).encode("utf-8"),
                                     "text/json", "utf-8")
        else:
            response = guide_message(b"First 10 bytes of request: " + request[:10],
                                     "binary/custom-server-binary-type", "binary")
        conn.sendall(response)


@pytest.mark.parametrize(("action", "value", "expected"), [
    ("search", "morpheus", {"result": "Follow the white rabbit. \U0001f430"}),
    ("search", "\U0001f436", {"result": "\U0001f43e Playing ball! \U0001f3d0"}),
    ("search", "x", {"result": 'No match for "x".'}),
    ("double", "42", b"First 10 bytes of request: double42"),
])
def test_guides_client_against_socketlab_server(serve, host, action, value, expected):
    host, port = serve("app", host)
    header, result = guide_client(host, port, action, value)
    assert result == expected
    assert header["byteorder"] == sys.byteorder


@pytest.mark.parametrize(("action", "value", "expected"), [
    ("search", "ring", "In the caves beneath the Misty Mountains. \U0001f48d"),
    ("search", "nope", 'No match for "nope".'),
    ("double", "1", 'Error: invalid action "double".'),
    ("binary", "0123456789ABC", repr(b"First 10 bytes of request: 0123456789")),
])
def test_socketlab_client_against_guides_server(host, action, value, expected):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as listener:
        listener.bind((host, 0))
        listener.listen()
        thread = threading.Thread(target=guide_server_once, args=(listener,))
        thread.start()
        reply = client.request(host, listener.getsockname()[1], app.make_request(action, value))
        thread.join(10)
    assert app.describe_response(reply.response) == expected
