"""Selector-based servers: one event loop, many connections, one handler per connection.

The loop (:class:`Server`) owns the sockets; a handler owns the protocol. A handler is any object
with ``data_received(data) -> bytes``, ``eof_received() -> bytes`` and a ``finished`` attribute
(close once the output is flushed). :class:`EchoHandler` is the guide's echo / multi-connection
server, :class:`AppHandler` its application server on top of :mod:`socketlab.protocol`.

A failure stays in its connection: it is logged with the peer address, that socket is closed
and unregistered, and the loop goes on serving everyone else.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable

from socketlab import app, arrays
from socketlab.protocol import NEED_DATA, MessageDecoder, ProtocolError

__all__ = ["Server", "EchoHandler", "AppHandler", "create_listener", "format_address"]

log = logging.getLogger("socketlab.server")

#: Stop reading from a peer while this much output is waiting for it (back-pressure).
HIGH_WATER = 1024 * 1024
_RECV_SIZE = 65536
_ACCEPT_BATCH = 128


def format_address(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def create_listener(host: str, port: int, *, backlog: int = 4096) -> socket.socket:
    """A listening TCP socket, following the guide's address rules.

    ``""`` is every IPv4 interface (INADDR_ANY); ``"::"`` is every interface, IPv6 and IPv4
    (dual stack, IPV6_V6ONLY off); a literal binds that one address; a name is resolved
    with getaddrinfo and its first address is used. SO_REUSEADDR is set so a restarted server
    can bind while old connections are still in TIME_WAIT (it does not allow two listeners on
    one port: that is still EADDRINUSE).
    """
    if host == "":
        family, address = socket.AF_INET, ("", port)
    else:
        info = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        family, _, _, _, address = info[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class EchoHandler:
    """Send back every byte; close after the peer has closed its side and all is flushed."""

    __slots__ = ("finished",)

    def __init__(self, peer=None) -> None:
        self.finished = False

    def data_received(self, data: bytes) -> bytes:
        return data

    def eof_received(self) -> bytes:
        self.finished = True
        return b""


class AppHandler:
    """The guide's application server: one request per connection, then close."""

    __slots__ = ("peer", "finished", "_decoder", "_array_decoder")

    def __init__(self, peer, *, array_decoder: app.ArrayDecoder = arrays.decode_array) -> None:
        self.peer = peer
        self.finished = False
        self._decoder = MessageDecoder()
        self._array_decoder = array_decoder

    def data_received(self, data: bytes) -> bytes:
        self._decoder.receive_data(data)
        request = self._decoder.next_message()
        if request is NEED_DATA:
            return b""
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s request byteorder=%s content-type=%r content-length=%d",
                format_address(self.peer), request.byteorder, request.content_type,
                len(request.content),
            )
        self.finished = True
        return app.respond(request, array_decoder=self._array_decoder)

    def eof_received(self) -> bytes:
        self._decoder.receive_data(b"")
        self._decoder.next_message()  # raises if the peer stopped mid-message
        self.finished = True
        return b""


class _Connection:
    __slots__ = ("sock", "peer", "handler", "out", "last_active", "events")

    def __init__(self, sock, peer, handler, now) -> None:
        self.sock = sock
        self.peer = peer
        self.handler = handler
        self.out = bytearray()
        self.last_active = now
        self.events = 0


class Server:
    """Accept connections on ``listener`` and run one handler per connection.

    ``handler_factory(peer)`` makes a handler. ``idle_timeout`` (seconds, None for never)
    closes connections that have not sent or received anything for that long.
    ``max_connections`` pauses accepting (the kernel's backlog holds new clients) while that
    many are open. ``socket_buffer`` sets SO_SNDBUF/SO_RCVBUF on accepted sockets.
    """

    def __init__(
        self,
        listener: socket.socket,
        handler_factory: Callable,
        *,
        idle_timeout: float | None = 30.0,
        max_connections: int = 16384,
        socket_buffer: int | None = None,
    ) -> None:
        self.listener = listener
        self.handler_factory = handler_factory
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.socket_buffer = socket_buffer
        self.connections: collections.OrderedDict[int, _Connection] = collections.OrderedDict()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._accepting = False

    @property
    def address(self):
        return self.listener.getsockname()

    # -- public -------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run until :meth:`shutdown`; then close every socket."""
        sel = self._selector
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._set_accepting(True)
        try:
            while not self._stopping:
                for key, mask in sel.select(self._select_timeout()):
                    conn = key.data
                    if conn is None:
                        self._wake_r.recv(4096)
                    elif conn is self.listener:
                        self._accept()
                    else:
                        if mask & selectors.EVENT_READ:
                            self._read(conn)
                        if mask & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                            self._write(conn)
                if self.idle_timeout is not None:
                    self._expire_idle()
        finally:
            self._close_all()

    def shutdown(self) -> None:
        """Ask :meth:`serve_forever` to stop. Safe from a signal handler or another thread."""
        self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # -- the loop -----------------------------------------------------------------------

    def _select_timeout(self) -> float | None:
        if self.idle_timeout is None or not self.connections:
            return None
        oldest = next(iter(self.connections.values()))
        return max(0.0, oldest.last_active + self.idle_timeout - time.monotonic())

    def _set_accepting(self, on: bool) -> None:
        if on and not self._accepting:
            self._selector.register(self.listener, selectors.EVENT_READ, self.listener)
        elif not on and self._accepting:
            self._selector.unregister(self.listener)
        self._accepting = on

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            if len(self.connections) >= self.max_connections:
                log.warning("connection limit %d reached: not accepting until one closes",
                            self.max_connections)
                self._set_accepting(False)
                return
            try:
                sock, peer = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept failed: %s; not accepting until a connection closes", exc)
                    self._set_accepting(False)
                    return
                log.warning("accept failed: %s", exc)  # e.g. ECONNABORTED: that peer gave up
                continue
            sock.setblocking(False)
            if self.socket_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer)
            conn = _Connection(sock, peer, self.handler_factory(peer), time.monotonic())
            self.connections[sock.fileno()] = conn
            # Most clients send at once: read before paying for a select round trip.
            self._read(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except BlockingIOError:
            self._update(conn)
            return
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}")
            return
        try:
            out = conn.handler.data_received(data) if data else conn.handler.eof_received()
        except ProtocolError as exc:
            self._close(conn, f"bad request: {exc}")
            return
        if self.idle_timeout is not None:
            conn.last_active = time.monotonic()
            self.connections.move_to_end(conn.sock.fileno())
        if not data and not out and not conn.out:
            # The peer closed and there is nothing left to say.
            self._close(conn)
            return
        if out:
            conn.out += out
            self._write(conn)
        else:
            self._update(conn)

    def _write(self, conn: _Connection) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._close(conn, f"send failed: {exc}")
                return
            del conn.out[:sent]
            if sent and self.idle_timeout is not None:
                conn.last_active = time.monotonic()
                self.connections.move_to_end(conn.sock.fileno())
        if not conn.out and conn.handler.finished:
            self._close(conn)
        else:
            self._update(conn)

    def _update(self, conn: _Connection) -> None:
        events = 0
        if not conn.handler.finished and len(conn.out) < HIGH_WATER:
            events |= selectors.EVENT_READ
        if conn.out:
            events |= selectors.EVENT_WRITE
        if events != conn.events:
            if conn.events == 0:
                self._selector.register(conn.sock, events, conn)
            elif events == 0:
                self._selector.unregister(conn.sock)
            else:
                self._selector.modify(conn.sock, events, conn)
            conn.events = events

    def _expire_idle(self) -> None:
        deadline = time.monotonic() - self.idle_timeout
        while self.connections:
            conn = next(iter(self.connections.values()))
            if conn.last_active > deadline:
                return
            self._close(conn, f"idle for {self.idle_timeout:g} s")

    def _close(self, conn: _Connection, reason: str | None = None) -> None:
        if reason is not None:
            log.warning("%s %s; closing that connection", format_address(conn.peer), reason)
        if conn.events:
            self._selector.unregister(conn.sock)
        del self.connections[conn.sock.fileno()]
        conn.sock.close()
        if not self._accepting and not self._stopping:
            self._set_accepting(True)

    def _close_all(self) -> None:
        if self.connections:
            log.info("shutting down: closing %d open connection(s)", len(self.connections))
        for conn in list(self.connections.values()):
            self._close(conn)
        if self._accepting:
            self._set_accepting(False)
        self._selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()
