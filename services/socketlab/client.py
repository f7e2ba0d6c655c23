"""The guide's clients, failing loudly: every failure is an exception the CLI turns into one line.

Every client's ``timeout`` bounds its whole exchange (name lookup aside: connect to each of the
name's addresses in turn, the TLS handshake, send, receive), not one call: a server that trickles
one byte a second, or a full accept queue followed by a silent handshake, cannot keep a client
waiting past it. What a client can
raise: the OS's errors (``OSError`` and its subclasses, ``TimeoutError`` included),
:class:`~socketlab.protocol.RemoteProtocolError` for a reply that breaks the protocol, and
:class:`ExchangeError` for a well-formed but wrong reply.

* :func:`echo` sends one message and reads back exactly as many bytes, which must be the same.
* :func:`multiconn` opens many non-blocking connections with ``selectors``; each knows the exact
  bytes it expects back, so a merged, lost or misrouted message is an error, not a guess.
* :func:`request` sends one application request and returns the decoded response.
* :func:`probe` tries one connection and reports the outcome in the guide's words.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import time
from collections import namedtuple
from collections.abc import Callable

from socketlab.app import Narrate, received_line, shown
from socketlab.errors import Outcome, classify, getaddrinfo
from socketlab.protocol import NEED_DATA, Message, MessageDecoder, RemoteProtocolError
from socketlab.tls import ClientTLS, session

__all__ = ["ExchangeError", "connect", "echo", "multiconn", "request", "probe", "Reply"]

#: ``-v``: every piece a client sends and receives, on stderr (docs/cli.md).
log = logging.getLogger("socketlab.client")


def _silent(line: str) -> None:
    pass


class ExchangeError(Exception):
    """The peer answered, but not with what the protocol promised (lost or merged bytes)."""


class Deadline:
    """The end of a whole exchange: each blocking call gets what is left of ``timeout``."""

    __slots__ = ("timeout", "end")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once there are none (like a socket timeout)."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out: exchange not finished within {self.timeout:g} s")
        return left

    def poll(self) -> float:
        """What is left, as one select's timeout (epoll takes at most about 24.8 days)."""
        return min(self.remaining(), 86400.0)

    def recv(self, sock: socket.socket, size: int = 65536) -> bytes:
        sock.settimeout(self.remaining())
        data = sock.recv(size)
        log.debug("received %d bytes: %s", len(data), shown(data))
        return data

    def sendall(self, sock: socket.socket, data: bytes) -> None:
        sock.settimeout(self.remaining())  # sendall's timeout bounds the whole send
        sock.sendall(data)
        log.debug("sent %d bytes: %s", len(data), shown(data))


def connect(host: str, port: int, *, timeout: float | Deadline,
            tls: ClientTLS | None = None, attempts: list | None = None,
            narrate: Narrate = None) -> socket.socket:
    """A connected socket, or the OS's exception (ConnectionRefusedError, TimeoutError, ...).

    ``""`` is this host, as in the guide's client (``connect(("", port))``: INADDR_ANY). The
    name's addresses are tried in getaddrinfo's order, as ``socket.create_connection`` does,
    but within one ``timeout`` (seconds, or the :class:`Deadline` of a whole exchange): an
    address that swallows the SYN spends it, and the next is not tried. With ``tls``, the
    socket is a TLS one whose handshake, within what is left of the same timeout, has checked
    the server's certificate; or ``ssl.SSLError`` says why not. ``attempts`` (a list) gets one
    ``{"address", "outcome"}`` per address tried, in order; ``narrate`` a line for each that
    failed before the next is tried (the fallback a name with two addresses makes).
    """
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    error: OSError | None = None
    for family, kind, proto, _, address in getaddrinfo(host or "0.0.0.0", port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            failure = classify(exc)
            if attempts is not None:
                attempts.append({"address": address[0], "outcome": failure.outcome})
            if isinstance(exc, TimeoutError):
                break  # the timeout is spent: the next address would get none of it
            if narrate is not None:
                narrate(f"Tried {address[:2]}: {failure.line('').rstrip()}; trying the next address")
            continue
        if attempts is not None:
            attempts.append({"address": address[0], "outcome": Outcome.CONNECTED})
        error = None
        break
    if error is not None:
        raise error
    if tls is None:
        return sock
    try:
        sock.settimeout(deadline.remaining())  # the handshake gets what is left, no more
        return tls.wrap(sock, host)
    except BaseException:
        sock.close()
        raise


def echo(host: str, port: int, message: bytes, *, timeout: float = 10.0,
         tls: ClientTLS | None = None, half_close: bool = False) -> bytes:
    """Send ``message`` to an echo server; return the echo, which must be the same bytes.

    ``half_close``: the guide's half-open connection, on purpose: once the message is sent,
    shut down the sending side (a FIN: "I have no more to say") and read until the server
    closes. A server that answers what it got before it closes gives the whole echo; one that
    closes on EOF first loses it (``ExchangeError``).
    """
    deadline = Deadline(timeout)
    with connect(host, port, timeout=deadline, tls=tls) as sock:
        deadline.sendall(sock, message)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while half_close or len(received) < len(message):
            chunk = deadline.recv(sock)
            if not chunk:
                if len(received) < len(message):
                    raise ExchangeError(
                        f"server closed after {len(received)} of {len(message)} echoed bytes")
                break
            received += chunk
            if not message.startswith(received[: len(message)]):
                raise ExchangeError(f"sent {message!r} but got back {bytes(received)!r}")
        if len(received) > len(message):
            raise ExchangeError(f"sent {len(message)} bytes but got back {len(received)}: "
                                f"{bytes(received)!r}")
        return bytes(received)


def multiconn_messages(connid: int, count: int = 2) -> list[bytes]:
    """The guide's messages, made unique per connection so a mix-up cannot go unseen."""
    return [f"Message {n} from client {connid}.".encode() for n in range(1, count + 1)]


class _Conn:
    """One of the multi-connection client's connections; each event is one step of it."""

    __slots__ = ("connid", "sock", "pending", "outgoing", "expected", "received")

    def __init__(self, connid: int, sock: socket.socket, messages: list[bytes]) -> None:
        self.connid, self.sock = connid, sock
        self.pending = list(messages)  # not yet started, sent one at a time as the guide does
        self.outgoing = b""
        self.expected = b"".join(messages)
        self.received = bytearray()

    def send_step(self, say: Callable[[str], None]) -> bool:
        """The socket is writable: send (the next message); True once all is sent."""
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:  # the non-blocking connect failed
            raise OSError(error, os.strerror(error))
        if not self.outgoing and self.pending:
            self.outgoing = self.pending.pop(0)
        say(f"Sending {self.outgoing!r} to connection {self.connid}")
        self.outgoing = self.outgoing[self.sock.send(self.outgoing):]
        return not self.outgoing and not self.pending

    def receive_step(self, say: Callable[[str], None]) -> bool:
        """The socket is readable: take what came; True once the whole echo is here. Any byte
        that is not the next expected one is an :class:`ExchangeError`."""
        chunk = self.sock.recv(65536)
        if chunk:
            say(f"Received {chunk!r} from connection {self.connid}")
        self.received += chunk
        if not self.expected.startswith(self.received):
            raise ExchangeError(f"connection {self.connid} got {bytes(self.received)!r}, "
                                f"expected {self.expected!r}")
        if not chunk and len(self.received) != len(self.expected):
            raise ExchangeError(f"connection {self.connid} closed after {len(self.received)} "
                                f"of {len(self.expected)} bytes")
        return len(self.received) == len(self.expected)


def _start(connid: int, family: int, sockaddr, messages_per_conn: int) -> _Conn:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex(sockaddr)
    messages = multiconn_messages(connid, messages_per_conn)
    return _Conn(connid, sock, messages)


def multiconn(
    host: str,
    port: int,
    num_conns: int,
    *,
    messages_per_conn: int = 2,
    timeout: float = 10.0,
    narrate: Narrate = None,
) -> dict[int, bytes]:
    """Run ``num_conns`` connections at once; return ``{connid: bytes echoed}``.

    Raises :class:`ExchangeError` if any connection gets back anything but its own bytes, and
    the connect error or TimeoutError if the exchange does not finish within ``timeout``.
    ``narrate`` gets the guide's lines (``Starting connection 1 to ...``, ``Sending ...``,
    ``Received ...``, ``Closing connection 1``).
    """
    say = narrate or _silent
    family, _, _, _, sockaddr = getaddrinfo(host or "0.0.0.0", port)[0]
    sel = selectors.DefaultSelector()
    results: dict[int, bytes] = {}
    try:
        for connid in range(1, num_conns + 1):
            say(f"Starting connection {connid} to {(host, port)}")
            conn = _start(connid, family, sockaddr, messages_per_conn)
            sel.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        deadline = Deadline(timeout)
        while len(results) < num_conns:
            try:
                remaining = deadline.poll()
            except TimeoutError:
                raise TimeoutError(f"timed out with {num_conns - len(results)} of {num_conns} "
                                   f"connections unfinished") from None
            for key, mask in sel.select(remaining):
                conn = key.data
                if mask & selectors.EVENT_WRITE and conn.send_step(say):
                    sel.modify(conn.sock, selectors.EVENT_READ, conn)
                if mask & selectors.EVENT_READ and conn.receive_step(say):
                    results[conn.connid] = bytes(conn.received)
                    say(f"Closing connection {conn.connid}")
                    sel.unregister(conn.sock)
                    conn.sock.close()
        return results
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


class Reply(namedtuple("Reply", "response local peer tls", defaults=(None,))):
    """One exchange's answer: the response :class:`Message`, the local and peer addresses,
    and ``tls``, :func:`socketlab.tls.session` (version, cipher, ...; None: plain TCP)."""

    __slots__ = ()


def request(
    host: str, port: int, wire: bytes, *, timeout: float = 10.0, narrate: Narrate = None,
    tls: ClientTLS | None = None,
) -> Reply:
    """Send one encoded request, read one response (the guide: one request per connection).

    ``narrate`` gets the guide's lines up to ``Received response ... from ...``; the caller
    prints the result and ``Closing connection to ...``, in the guide's order.
    """
    say = narrate or _silent
    address = (host, port)
    say(f"Starting connection to {address}")
    deadline = Deadline(timeout)
    with connect(host, port, timeout=deadline, tls=tls, narrate=narrate) as sock:
        local, peer = sock.getsockname()[:2], sock.getpeername()[:2]
        negotiated = session(sock) if tls is not None else None
        say(f"Sending {shown(wire)} to {address}")
        deadline.sendall(sock, wire)
        decoder = MessageDecoder()
        while True:
            data = deadline.recv(sock)
            decoder.receive_data(data)
            response = decoder.next_message()
            if response is not NEED_DATA:
                if narrate is not None:
                    narrate(received_line(response, "response", address))
                return Reply(response, local, peer, negotiated)
            if not data:
                raise RemoteProtocolError("server closed the connection without a response")


def probe(host: str, port: int, *, timeout: float = 2.0, tls: ClientTLS | None = None) -> dict:
    """Try one TCP connection (and with ``tls``, its handshake); describe exactly what happened
    (see docs/cli.md): with TLS, ``tls`` holds what was negotiated."""
    result = {"outcome": Outcome.CONNECTED, "exception": None, "errno": None, "message": None,
              "host": host, "port": port, "family": None, "local": None, "peer": None,
              "attempts": []}
    if tls is not None:
        result["tls"] = None
    start = time.monotonic()
    try:
        result["family"] = getaddrinfo(host, port)[0][0].name
        start = time.monotonic()
        with connect(host, port, timeout=timeout, tls=tls, attempts=result["attempts"]) as sock:
            elapsed = time.monotonic() - start
            result["local"], result["peer"] = list(sock.getsockname()[:2]), list(sock.getpeername()[:2])
            if tls is not None:
                result["tls"] = session(sock)
    except OSError as exc:
        elapsed = time.monotonic() - start
        failure = classify(exc)
        result.update(outcome=failure.outcome, exception=failure.exception,
                      errno=failure.errno_name, message=failure.message)
    result["elapsed_s"] = round(elapsed, 4)
    return result
