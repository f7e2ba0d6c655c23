"""Guide-style server Message class for app-server.py.

One Message per connection.  Wire format (the guide's): a 2-byte
big-endian length (struct ">H"), a utf-8 JSON header of that length with
byteorder / content-type / content-encoding / content-length, then the
content.  The request is buffered until complete, answered, and the
connection closed once the response is sent.

No extension: an array request is answered like any binary request, as
the guide's server would (the suite says UNIMPLEMENTED).

Seeded bugs (set by app-server.py --bug NAME):
  one-recv  the data of the first recv() is taken as the whole request:
            a request split across segments is parsed truncated (wrong
            answer, or an exception and the connection closed).
"""

import io
import json
import selectors
import struct
import sys

request_search = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}


class Message:
    def __init__(self, selector, sock, addr, bug=None):
        self.selector = selector
        self.sock = sock
        self.addr = addr
        self.bug = bug
        self._recv_buffer = b""
        self._send_buffer = b""
        self._jsonheader_len = None
        self.jsonheader = None
        self.request = None
        self.response_created = False

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
            return  # nothing there after all
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
        if sent and not self._send_buffer:
            self.close()  # whole response is out: we are done

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
        return struct.pack(">H", len(jsonheader_bytes)) + jsonheader_bytes + content_bytes

    def _have(self, n):
        """True when n bytes are buffered (always, with the one-recv bug)."""
        if self.bug == "one-recv":
            return True  # BUG: what one recv() gave is taken as complete
        return len(self._recv_buffer) >= n

    # -- responses -----------------------------------------------------

    def _create_response_json_content(self):
        action = self.request.get("action")
        if action == "search":
            query = self.request.get("value")
            answer = request_search.get(query) or f"No match for '{query}'."
            content = {"result": answer}
        else:
            content = {"result": f"Error: invalid action '{action}'."}
        return {
            "content_bytes": self._json_encode(content, "utf-8"),
            "content_type": "text/json",
            "content_encoding": "utf-8",
        }

    def _create_response_binary_content(self):
        return {
            "content_bytes": b"First 10 bytes of request: " + self.request[:10],
            "content_type": "binary/custom-server-binary-type",
            "content_encoding": "binary",
        }

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
        if self.jsonheader and self.request is None:
            self.process_request()

    def write(self):
        if self.request and not self.response_created:
            self.create_response()
        self._write()

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

    def process_request(self):
        content_len = self.jsonheader["content-length"]
        if not self._have(content_len):
            return
        data = self._recv_buffer[:content_len]
        self._recv_buffer = self._recv_buffer[content_len:]
        if self.jsonheader["content-type"] == "text/json":
            encoding = self.jsonheader["content-encoding"]
            self.request = self._json_decode(data, encoding)
            print(f"Received request {self.request!r} from {self.addr}")
        else:
            self.request = data  # binary or unknown type: raw bytes
            print(f"Received {self.jsonheader['content-type']} request from {self.addr}")
        self._set_selector_events_mask("w")  # done reading, now answer

    def create_response(self):
        ctype = self.jsonheader["content-type"]
        if ctype == "text/json":
            response = self._create_response_json_content()
        else:
            response = self._create_response_binary_content()
        self._send_buffer += self._create_message(**response)
        self.response_created = True
