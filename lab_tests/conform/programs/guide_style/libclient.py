"""Guide-style client Message class for app-client.py.

Queues one request (2-byte big-endian length, utf-8 JSON header,
content), sends it, then buffers the response until it is complete
(protoheader -> JSON header -> content-length bytes), prints it and
closes the connection.

Also decodes socketlab's array response ("binary/x-socketlab-array;
dtype=int32", int32 values in the header's byteorder plus an "x-stats"
header field); the guide has no such type.

Seeded bugs (set by app-client.py --bug NAME):
  native-length  the 2-byte length prefix of the request is packed with
                 struct "=H" (native order) instead of ">H".
  one-recv       the data of the first recv() is taken as the whole
                 response: a reply split across segments is decoded
                 truncated (wrong output or a traceback).
"""

import io
import json
import selectors
import struct
import sys

ARRAY_TYPE = "binary/x-socketlab-array"


class Message:
    def __init__(self, selector, sock, addr, request, bug=None):
        self.selector = selector
        self.sock = sock
        self.addr = addr
        self.request = request
        self.bug = bug
        self._recv_buffer = b""
        self._send_buffer = b""
        self._request_queued = False
        self._jsonheader_len = None
        self.jsonheader = None
        self.response = None

    # -- low level -----------------------------------------------------

    def _set_selector_events_mask(self, mode):
        """Watch the socket for 'r', 'w' or 'rw' events."""
        masks = {
            "r": selectors.EVENT_READ,
            "w": selectors.EVENT_WRITE,
            "rw": selectors.EVENT_READ | selectors.EVENT_WRITE,
        }
        if mode not in masks:
            raise ValueError(f"Invalid events mask mode {mode!r}.")
        self.selector.modify(self.sock, masks[mode], data=self)

    def _read(self):
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError("Peer closed.")
        self._recv_buffer += data

    def _write(self):
        if not self._send_buffer:
            return
        print(f"Sending {self._send_buffer!r} to {self.addr}")
        try:
            sent = self.sock.send(self._send_buffer)
        except BlockingIOError:
            return
        self._send_buffer = self._send_buffer[sent:]

    def _json_encode(self, obj, encoding):
        return json.dumps(obj, ensure_ascii=False).encode(encoding)

    def _json_decode(self, json_bytes, encoding):
        with io.TextIOWrapper(
            io.BytesIO(json_bytes), encoding=encoding, newline=""
        ) as tiow:
            return json.load(tiow)

    def _create_message(self, *, content_bytes, content_type, content_encoding):
        jsonheader = {
            "byteorder": sys.byteorder,
            "content-type": content_type,
            "content-encoding": content_encoding,
            "content-length": len(content_bytes),
        }
        jsonheader_bytes = self._json_encode(jsonheader, "utf-8")
        # BUG native-length: "=H" is the CPU's order, not network order.
        fmt = "=H" if self.bug == "native-length" else ">H"
        return struct.pack(fmt, len(jsonheader_bytes)) + jsonheader_bytes + content_bytes

    def _have(self, n):
        """True when n bytes are buffered (always, with the one-recv bug)."""
        if self.bug == "one-recv":
            return True  # BUG: what one recv() gave is taken as complete
        return len(self._recv_buffer) >= n

    # -- showing the response ------------------------------------------

    def _process_response_json_content(self):
        result = self.response.get("result")
        print(f"Got result: {result}")

    def _process_response_binary_content(self):
        print(f"Got response: {self.response!r}")

    def _process_response_array_content(self):
        fmt = {"little": "<", "big": ">"}[self.jsonheader["byteorder"]]
        count = len(self.response) // 4
        values = list(struct.unpack(f"{fmt}{count}i", self.response[: count * 4]))
        shown = {"values": values, "x-stats": self.jsonheader.get("x-stats")}
        print(f"Got response: {shown!r}")

    # -- state machine -------------------------------------------------

    def process_events(self, mask):
        if mask & selectors.EVENT_READ:
            self.read()
        if mask & selectors.EVENT_WRITE:
            self.write()

    def read(self):
        self._read()
        if self._jsonheader_len is None:
            self.process_protoheader()
        if self._jsonheader_len is not None and self.jsonheader is None:
            self.process_jsonheader()
        if self.jsonheader and self.response is None:
            self.process_response()

    def write(self):
        if not self._request_queued:
            self.queue_request()
        self._write()
        if self._request_queued and not self._send_buffer:
            self._set_selector_events_mask("r")  # all sent: wait for reply

    def close(self):
        print(f"Closing connection to {self.addr}")
        try:
            self.selector.unregister(self.sock)
        except Exception as e:
            print(f"Error: selector.unregister() exception for {self.addr}: {e!r}")
        try:
            self.sock.close()
        except OSError as e:
            print(f"Error: socket.close() exception for {self.addr}: {e!r}")
        finally:
            self.sock = None

    def queue_request(self):
        content = self.request["content"]
        content_type = self.request["type"]
        content_encoding = self.request["encoding"]
        if content_type == "text/json":
            content = self._json_encode(content, content_encoding)
        self._send_buffer += self._create_message(
            content_bytes=content,
            content_type=content_type,
            content_encoding=content_encoding,
        )
        self._request_queued = True

    def process_protoheader(self):
        if self._have(2):
            self._jsonheader_len = struct.unpack(">H", self._recv_buffer[:2])[0]
            self._recv_buffer = self._recv_buffer[2:]

    def process_jsonheader(self):
        hdrlen = self._jsonheader_len
        if self._have(hdrlen):
            self.jsonheader = self._json_decode(self._recv_buffer[:hdrlen], "utf-8")
            self._recv_buffer = self._recv_buffer[hdrlen:]
            for reqhdr in ("byteorder", "content-length", "content-type",
                           "content-encoding"):
                if reqhdr not in self.jsonheader:
                    raise ValueError(f"Missing required header '{reqhdr}'.")

    def process_response(self):
        content_len = self.jsonheader["content-length"]
        if not self._have(content_len):
            return
        data = self._recv_buffer[:content_len]
        self._recv_buffer = self._recv_buffer[content_len:]
        ctype = self.jsonheader["content-type"]
        if ctype == "text/json":
            encoding = self.jsonheader["content-encoding"]
            self.response = self._json_decode(data, encoding)
            print(f"Received response {self.response!r} from {self.addr}")
            self._process_response_json_content()
        else:
            self.response = data  # binary or unknown type: raw bytes
            print(f"Received {ctype} response from {self.addr}")
            if ctype.split(";")[0].strip() == ARRAY_TYPE:
                self._process_response_array_content()
            else:
                self._process_response_binary_content()
        self.close()  # one request, one response
