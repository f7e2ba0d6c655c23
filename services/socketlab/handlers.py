"""The guide's servers as protocol handlers: what the selectors loop (:mod:`socketlab.server`)
runs for each connection. No sockets here: bytes in, bytes out.

Each is a :class:`socketlab.server.Handler` (the loop's contract, with the loop);
:class:`EchoHandler` is the guide's echo and multi-connection server, :class:`AppHandler` its
application server on top of :mod:`socketlab.protocol` and :mod:`socketlab.app`. The same
handlers run under the asyncio baseline of the benchmark, so it compares I/O layers only.
"""

from __future__ import annotations

import logging

from socketlab import app, arrays
from socketlab.app import Narrate, shown
from socketlab.protocol import NEED_DATA, MessageDecoder, RemoteProtocolError
from socketlab.addresses import format_address

__all__ = ["EchoHandler", "AppHandler"]

# One log for everything about the server's connections, the loop's and the handlers'.
log = logging.getLogger("socketlab.server")


class EchoHandler:
    """Send back every byte; close after the peer has closed its side and all is flushed.

    With ``narrate``, the guide's lines: the multi-connection server's ``Accepted connection
    from ...``, ``Echoing ... to ...`` and ``Closing connection to ...``, or with
    ``program="echo"`` the echo server's one line, ``Connected by ...``.
    """

    __slots__ = ("peer", "finished", "_narrate")
    buffered = 0  # every byte is answered at once: there is never a partial request

    def __init__(self, peer=None, *, narrate: Narrate = None, program: str = "multiconn") -> None:
        self.peer = peer
        self.finished = False
        self._narrate = narrate if program == "multiconn" else None
        if narrate is not None:
            narrate(f"Connected by {peer}" if program == "echo"
                    else f"Accepted connection from {peer}")

    def data_received(self, data: bytes) -> bytes:
        if self._narrate is not None:
            self._narrate(f"Echoing {shown(data)} to {self.peer}")
        return data

    def eof_received(self) -> bytes:
        self.finished = True
        return b""

    def connection_lost(self) -> None:
        if self._narrate is not None:
            self._narrate(f"Closing connection to {self.peer}")


class AppHandler:
    """The guide's application server: one request per connection, then close.

    A request the protocol refuses (bad framing, bad JSON, a limit) is answered in the guide's
    error form, ``{"result": "Error: bad request: ..."}``, logged with the peer, and the
    connection is closed after the answer.
    """

    __slots__ = ("peer", "finished", "_decoder", "_array_decoder", "_narrate")

    def __init__(
        self,
        peer,
        *,
        array_decoder: app.ArrayDecoder = arrays.decode_array,
        narrate: Narrate = None,
    ) -> None:
        self.peer = peer
        self.finished = False
        self._decoder = MessageDecoder()
        self._array_decoder = array_decoder
        self._narrate = narrate
        if narrate is not None:
            narrate(f"Accepted connection from {peer}")

    @property
    def buffered(self) -> int:
        return self._decoder.buffered

    def data_received(self, data: bytes) -> bytes:
        self._decoder.receive_data(data)
        return self._next()

    def eof_received(self) -> bytes:
        self._decoder.receive_data(b"")
        return self._next(eof=True)

    def _next(self, eof: bool = False) -> bytes:
        try:
            request = self._decoder.next_message()
            if request is NEED_DATA:
                self.finished = eof  # a clean close between requests: nothing to say
                return b""
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s request byteorder=%s content-type=%r content-length=%d",
                    format_address(self.peer), request.byteorder, request.content_type,
                    len(request.content),
                )
            if self._narrate is not None:
                self._narrate(app.received_line(request, "request", self.peer))
            answer = app.respond(request, array_decoder=self._array_decoder)
        except RemoteProtocolError as exc:
            log.warning("%s bad request: %s; answering with an error and closing",
                        format_address(self.peer), exc)
            answer = app.error_response(f"bad request: {exc}")
        self.finished = True
        if self._narrate is not None:
            self._narrate(f"Sending {shown(answer)} to {self.peer}")
        return answer

    def connection_lost(self) -> None:
        if self._narrate is not None:
            self._narrate(f"Closing connection to {self.peer}")
