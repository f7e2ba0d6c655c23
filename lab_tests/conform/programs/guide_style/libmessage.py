"""What the guide-style client's and server's Message classes share: the wire form (a 2-byte
big-endian length, a UTF-8 JSON header with the four required fields, the content), the
buffering, and the selector bookkeeping. The guide writes these twice, once in libclient.py and
once in libserver.py; here they are written once and both classes build on them.

Seeded bugs shared by both sides (a program passes ``bug=``):
  native-length  the 2-byte length prefix is packed with struct "=H" (the CPU's order)
  one-recv       what one recv() gave is taken as complete (``_have`` always says yes)
"""

import io
import json
import selectors
import struct
import sys

REQUIRED_HEADERS = ("byteorder", "content-length", "content-type", "content-encoding")


class MessageBase:
    def __init__(self, selector, sock, addr, bug=None):
        self.selector = selector
        self.sock = sock
        self.addr = addr
        self.bug = bug
        self._recv_buffer = b""
        self._send_buffer = b""
        self._jsonheader_len = None
        self.jsonheader = None

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

    def _send(self):
        """Send what the buffer holds; True once it is empty."""
        if not self._send_buffer:
            return True
        print(f"Sending {self._send_buffer!r} to {self.addr}")
        try:
            sent = self.sock.send(self._send_buffer)
        except BlockingIOError:
            return False
        self._send_buffer = self._send_buffer[sent:]
        return sent > 0 and not self._send_buffer

    def _json_encode(self, obj, encoding):
        return json.dumps(obj, ensure_ascii=False).encode(encoding)

    def _json_decode(self, json_bytes, encoding):
        with io.TextIOWrapper(io.BytesIO(json_bytes), encoding=encoding, newline="") as tiow:
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

    def _take(self, n):
        data, self._recv_buffer = self._recv_buffer[:n], self._recv_buffer[n:]
        return data

    # -- state machine -------------------------------------------------

    def process_events(self, mask):
        if mask & selectors.EVENT_READ:
            self.read()
        if mask & selectors.EVENT_WRITE:
            self.write()

    def read(self):
        """The protoheader, then the JSON header, then the content (``process_content``)."""
        self._read()
        if self._jsonheader_len is None:
            self.process_protoheader()
        if self._jsonheader_len is not None and self.jsonheader is None:
            self.process_jsonheader()
        if self.jsonheader and not self.done_reading():
            content_len = self.jsonheader["content-length"]
            if self._have(content_len):
                self.process_content(self._take(content_len))

    def process_protoheader(self):
        if self._have(2):
            self._jsonheader_len = struct.unpack(">H", self._take(2))[0]

    def process_jsonheader(self):
        hdrlen = self._jsonheader_len
        if self._have(hdrlen):
            self.jsonheader = self._json_decode(self._take(hdrlen), "utf-8")
            for reqhdr in REQUIRED_HEADERS:
                if reqhdr not in self.jsonheader:
                    raise ValueError(f"Missing required header '{reqhdr}'.")

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
