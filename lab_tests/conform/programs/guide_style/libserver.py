"""Guide-style server Message class for app-server.py (the shared part: libmessage.py).

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

from libmessage import MessageBase

request_search = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}


class Message(MessageBase):
    def __init__(self, selector, sock, addr, bug=None):
        super().__init__(selector, sock, addr, bug)
        self.request = None
        self.response_created = False

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

    def done_reading(self):
        return self.request is not None

    def write(self):
        if self.request and not self.response_created:
            self.create_response()
        if self.response_created and self._send():
            self.close()  # whole response is out: we are done

    def process_content(self, data):
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
