"""Guide-style client Message class for app-client.py (the shared part: libmessage.py).

Queues one request, sends it, then buffers the response until it is complete, prints it and
closes the connection.

Also decodes socketlab's array response ("binary/x-socketlab-array; dtype=int32", int32 values
in the header's byteorder plus an "x-stats" header field); the guide has no such type.

Seeded bugs (set by app-client.py --bug NAME): native-length, one-recv (libmessage.py).
"""

import struct

from libmessage import MessageBase

ARRAY_TYPE = "binary/x-socketlab-array"


class Message(MessageBase):
    def __init__(self, selector, sock, addr, request, bug=None):
        super().__init__(selector, sock, addr, bug)
        self.request = request
        self._request_queued = False
        self.response = None

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

    def done_reading(self):
        return self.response is not None

    def write(self):
        if not self._request_queued:
            self.queue_request()
        if self._send() and self._request_queued:
            self._set_selector_events_mask("r")  # all sent: wait for reply

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

    def process_content(self, data):
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
