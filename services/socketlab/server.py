"""Selector-based servers: one event loop, many connections, one handler per connection.

The loop (:class:`Server`) owns the sockets, the clocks and the memory, and nothing else; a
handler owns the protocol: :class:`Handler` is its contract, here with the loop that calls it.
The guide's servers are handlers in :mod:`socketlab.handlers`.

A failure stays in its connection: it is logged with the peer address, that socket is closed
and unregistered, and the loop goes on serving everyone else. A handler that raises anything
but a :class:`~socketlab.protocol.ProtocolError` has a bug; the loop logs the traceback, closes
that one connection and goes on, as ``socketserver`` does (the backstop).

What a peer can hold, and for how long (docs/reliability.md):

* a partial request: ``request_timeout`` seconds from its first byte, however slowly it trickles;
* silence: ``idle_timeout`` seconds without a byte either way;
* memory: the bytes buffered across all connections (partial requests and unsent replies) stay
  under ``max_buffered``; past it the connections holding the most are closed first;
* slots: ``max_connections`` open connections, then accepting pauses (the kernel's backlog
  holds newcomers) until one closes.

A reply is never destroyed by a reset: once it is flushed the server shuts down its sending
side and reads (and discards) what the peer still sends until it closes, for at most
``LINGER_BYTES`` and ``LINGER_TIMEOUT`` seconds, and only then closes the socket.

With ``tls`` (an ``ssl.SSLContext``), each connection gets a
:class:`socketlab.tls.ServerConnection`: TLS with no I/O, between the socket and the handler.
The socket stays a plain one, so the loop waits for the same events as without TLS (readable
while it wants input, writable while it has output), whatever OpenSSL is doing: a handshake, a
key update the peer asked for, a record cut short. A handshake, and a record cut short after
it, count as a request under way (``request_timeout``); what OpenSSL holds counts against
``max_buffered`` (``ServerConnection.cost``) and so do the records waiting to go out. A TLS
failure is that connection's, logged in one line. The handler sees the same bytes as without
TLS.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable
from typing import Protocol
from socketlab.addresses import format_address
from socketlab.errors import getaddrinfo
from socketlab.protocol import ProtocolError
from socketlab.tls import ServerConnection, TLSFailure

__all__ = [
    "Handler", "Server", "create_listener",
    "DEFAULT_IDLE_TIMEOUT", "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_BUFFERED",
]

log = logging.getLogger("socketlab.server")


class Handler(Protocol):
    """What the loop needs of a protocol handler (one per connection, made by a factory).

    ``data_received`` and ``eof_received`` return the bytes to send (``b""`` for none). They may
    raise :class:`~socketlab.protocol.ProtocolError` for a peer that broke the protocol: the loop
    logs it as a bad request and closes the connection. Any other exception is a bug: the
    loop logs its traceback and closes the connection all the same.
    """

    #: True once the handler wants no more input; the loop closes after flushing the output.
    finished: bool

    #: Bytes of an unfinished request the handler holds (0 between requests). The request
    #: deadline runs while this is non-zero; it also counts towards the memory budget.
    @property
    def buffered(self) -> int: ...

    def data_received(self, data: bytes) -> bytes: ...

    def eof_received(self) -> bytes: ...

    def connection_lost(self) -> None:
        """The loop has closed the connection (for whatever reason); called once."""

DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 16384
DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024

#: Stop reading from a peer while this much output is waiting for it (back-pressure).
HIGH_WATER = 1024 * 1024
#: After a reply is flushed: read and discard at most this much, for at most this long.
LINGER_BYTES = 1024 * 1024
LINGER_TIMEOUT = 2.0
_RECV_SIZE = 65536
_ACCEPT_BATCH = 128
#: The longest the loop ever waits in one select (epoll's timeout is a C int of milliseconds:
#: about 24.8 days). A longer timeout just takes more rounds.
MAX_POLL = 86400.0


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
        info = getaddrinfo(host, port, socket.AI_PASSIVE)
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


class _Connection:
    __slots__ = ("sock", "peer", "handler", "out", "last_active", "events", "held",
                 "lingering", "discarded", "eof", "tls")

    def __init__(self, sock, peer, handler, now) -> None:
        self.sock = sock
        self.peer = peer
        self.handler = handler
        self.out = bytearray()
        self.last_active = now
        self.events = 0
        self.held = 0  # bytes this connection counts against the server's budget
        self.lingering = False  # the reply is out, our side is shut: only discarding now
        self.discarded = 0
        self.eof = False
        #: TLS between the socket and the handler (None: plain TCP)
        self.tls: ServerConnection | None = None


class Server:
    """Accept connections on ``listener`` and run one handler per connection.

    ``handler_factory(peer)`` makes a :class:`Handler`. ``idle_timeout``
    (seconds, None for never) closes connections that have not sent or received anything for
    that long;
    ``request_timeout`` (None for never) closes a connection whose request is not complete
    that long after its first byte. ``max_connections`` pauses accepting (the kernel's backlog
    holds new clients) while that many are open. ``max_buffered`` bounds the bytes held across
    all connections (partial requests and unsent replies): when the total goes over it, the
    connections holding the most are closed until it is back under three quarters of it.
    ``socket_buffer`` sets SO_SNDBUF/SO_RCVBUF on accepted sockets. ``after_round`` is called
    after each round of the loop (and once at the end): the CLI flushes the guide's commentary
    there, one write for a round's lines instead of one per line.
    """

    def __init__(
        self,
        listener: socket.socket,
        handler_factory: Callable[..., Handler],
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        socket_buffer: int | None = None,
        tls=None,
        after_round: Callable[[], object] | None = None,
    ) -> None:
        self.after_round = after_round
        self.listener = listener
        self.handler_factory = handler_factory
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.max_buffered = max_buffered
        self.socket_buffer = socket_buffer
        self.tls = tls
        #: Open connections by file descriptor, least recently active first.
        self.connections: collections.OrderedDict[int, _Connection] = collections.OrderedDict()
        #: Bytes held by all connections now (see ``max_buffered``).
        self.buffered = 0
        # Deadlines, earliest first (each timeout is the same for every connection, so the
        # order of insertion is the order of expiry): requests under way, and lingering closes.
        self._requests: collections.OrderedDict[_Connection, float] = collections.OrderedDict()
        self._lingering: collections.OrderedDict[_Connection, float] = collections.OrderedDict()
        #: Lingering connections not yet registered: read once at the end of the round.
        self._unchecked: list[_Connection] = []
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
                        self._dispatch(conn, mask)
                if self._unchecked:
                    self._check_lingering()
                self._expire()
                self._after_round()
        finally:
            self._close_all()
            self._after_round()

    def _after_round(self) -> None:
        """Call ``after_round``; one that fails (stdout gone: a reader of the commentary that
        went away) is logged once and dropped, and the loop goes on serving."""
        if self.after_round is None:
            return
        try:
            self.after_round()
        except OSError as exc:
            log.warning("after each round: %s; no more of it", exc)
            self.after_round = None

    def shutdown(self) -> None:
        """Ask :meth:`serve_forever` to stop. Safe from a signal handler or another thread."""
        self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # -- the loop -----------------------------------------------------------------------

    def _dispatch(self, conn: _Connection, mask: int) -> None:
        if not self._is_open(conn):
            return  # closed earlier in this round (its descriptor may already be reused)
        try:
            if mask & selectors.EVENT_READ:
                self._read(conn)
            if mask & selectors.EVENT_WRITE and self._is_open(conn):
                self._write(conn)
        except Exception:
            # The backstop: a bug, not a peer. Log it in full, drop this connection, go on.
            log.exception("%s unexpected error; closing that connection",
                          format_address(conn.peer))
            if self._is_open(conn):
                self._close(conn)

    def _is_open(self, conn: _Connection) -> bool:
        return self.connections.get(conn.sock.fileno()) is conn

    def _select_timeout(self) -> float | None:
        now = time.monotonic()
        timeouts = []
        if self.idle_timeout is not None and self.connections:
            oldest = next(iter(self.connections.values()))
            timeouts.append(oldest.last_active + self.idle_timeout - now)
        for deadlines in (self._requests, self._lingering):
            if deadlines:
                timeouts.append(next(iter(deadlines.values())) - now)
        return min(max(0.0, min(timeouts)), MAX_POLL) if timeouts else MAX_POLL

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
            try:
                sock.setblocking(False)
                if self.socket_buffer:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer)
                tls = ServerConnection(self.tls) if self.tls is not None else None
                handler = self.handler_factory(peer)
            except OSError as exc:  # e.g. the peer reset it already: a port scan, a health check
                log.warning("%s cannot start a handler: %s; closing that connection",
                            format_address(peer), exc)
                sock.close()
                continue
            except Exception:
                log.exception("%s cannot start a handler; closing that connection",
                              format_address(peer))
                sock.close()
                continue
            conn = _Connection(sock, peer, handler, time.monotonic())
            conn.tls = tls
            self.connections[sock.fileno()] = conn
            if tls is not None:
                self._account(conn)  # the handshake is a request under way, and costs memory
            # Most clients send at once: read before paying for a select round trip.
            self._dispatch(conn, selectors.EVENT_READ)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except BlockingIOError:
            self._update(conn)
            return
        except OSError as exc:  # a lingering peer's errors are nobody's business
            self._close(conn, None if conn.lingering else f"receive failed: {exc}")
            return
        self._touch(conn)
        if conn.lingering:
            conn.discarded += len(data)
            if not data or conn.discarded > LINGER_BYTES:
                self._close(conn)
            else:
                self._update(conn)
            return
        eof = not data
        if conn.tls is not None:
            handshaking = conn.tls.handshaking
            try:
                data = conn.tls.receive(data)
            except TLSFailure as exc:
                self._tls_failed(conn, exc, handshaking)
                return
            conn.out += conn.tls.outgoing()  # handshake flights, key updates, tickets
            eof = conn.tls.eof
        conn.eof = eof
        out = b""
        try:
            if data:
                out = conn.handler.data_received(data)
            if eof and not conn.handler.finished:
                out += conn.handler.eof_received()
        except ProtocolError as exc:
            self._close(conn, f"bad request: {exc}")
            return
        if out:
            try:
                conn.out += conn.tls.send(out) if conn.tls is not None else out
            except TLSFailure as exc:
                self._tls_failed(conn, exc, False)
                return
        self._account(conn)
        if not self._is_open(conn):
            return  # shed to keep the memory budget
        if conn.out:
            self._write(conn)
        elif conn.handler.finished or conn.eof:
            self._finish(conn)
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
            if sent:
                self._touch(conn)
                self._account(conn)
                if not self._is_open(conn):
                    return
        if not conn.out and (conn.handler.finished or conn.eof):
            self._finish(conn)
        else:
            self._update(conn)

    def _finish(self, conn: _Connection) -> None:
        """The reply is flushed: close without letting unread input turn into a reset."""
        if conn.eof:
            self._close(conn)
            return
        if conn.tls is not None:
            close_notify = conn.tls.close()  # once; the peer's is not awaited
            if close_notify:
                conn.out += close_notify
                self._write(conn)  # back here once it is flushed
                return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the peer is already gone
            self._close(conn)
            return
        conn.lingering = True
        self._lingering[conn] = time.monotonic() + LINGER_TIMEOUT
        if conn.events:
            self._update(conn)
        else:
            self._unchecked.append(conn)

    def _check_lingering(self) -> None:
        """Most peers close as soon as they have read the reply, so by the end of the round
        their FIN is often here already: one read then closes the connection without it ever
        being registered with the selector (two system calls fewer per connection). The
        others are registered for reading by :meth:`_read`, as any lingering connection."""
        unchecked, self._unchecked = self._unchecked, []
        for conn in unchecked:
            self._dispatch(conn, selectors.EVENT_READ)

    def _touch(self, conn: _Connection) -> None:
        if self.idle_timeout is not None:
            conn.last_active = time.monotonic()
            self.connections.move_to_end(conn.sock.fileno())

    def _account(self, conn: _Connection) -> None:
        """Track the bytes ``conn`` holds: the request deadline and the memory budget."""
        pending = conn.handler.buffered
        held = pending + len(conn.out)
        if conn.tls is not None:
            held += conn.tls.cost
            if conn.tls.handshaking or conn.tls.partial:  # a record, or the handshake, under way
                pending += conn.tls.partial or 1
        self.buffered += held - conn.held
        conn.held = held
        if conn.handler.finished or not pending:
            self._requests.pop(conn, None)  # no request under way
        elif conn not in self._requests and self.request_timeout is not None:
            self._requests[conn] = time.monotonic() + self.request_timeout
        if self.buffered > self.max_buffered:
            self._shed()

    def _shed(self) -> None:
        target = self.max_buffered * 3 // 4
        log.warning("%d bytes buffered, over the budget of %d: closing the largest holders",
                    self.buffered, self.max_buffered)
        holders = sorted(self.connections.values(), key=lambda c: c.held, reverse=True)
        for conn in holders:
            if self.buffered <= target or not conn.held:
                break
            self._close(conn, f"holds {conn.held} bytes while the server is over its memory "
                              f"budget of {self.max_buffered}")

    def _tls_failed(self, conn: _Connection, exc: TLSFailure, handshaking: bool) -> None:
        try:  # the alert OpenSSL wrote, if the socket takes it now; the peer may be gone
            conn.sock.send(conn.tls.outgoing())
        except OSError:
            pass
        self._close(conn, f"TLS {'handshake ' if handshaking else ''}failed: {exc}")

    def _update(self, conn: _Connection) -> None:
        if not self._is_open(conn):
            return
        events = 0
        if conn.lingering or (not conn.handler.finished and not conn.eof
                              and len(conn.out) < HIGH_WATER):
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

    def _expire(self) -> None:
        now = time.monotonic()
        while self._requests:
            conn, deadline = next(iter(self._requests.items()))
            if deadline > now:
                break
            if conn.tls is not None and conn.tls.handshaking:
                self._close(conn, f"TLS handshake not complete within {self.request_timeout:g} s")
            else:
                received = conn.handler.buffered + (conn.tls.partial if conn.tls else 0)
                self._close(conn, f"request not complete within {self.request_timeout:g} s "
                                  f"of its first byte ({received} bytes received)")
        while self._lingering:
            conn, deadline = next(iter(self._lingering.items()))
            if deadline > now:
                break
            self._close(conn)  # the reply went out long ago; the peer just kept its side open
        if self.idle_timeout is not None:
            idle_since = now - self.idle_timeout
            while self.connections:
                conn = next(iter(self.connections.values()))
                if conn.last_active > idle_since:
                    break
                self._close(conn, f"idle for {self.idle_timeout:g} s")

    def _close(self, conn: _Connection, reason: str | None = None) -> None:
        if not self._is_open(conn):
            return
        if reason is not None:
            log.warning("%s %s; closing that connection", format_address(conn.peer), reason)
        if conn.events:
            self._selector.unregister(conn.sock)
            conn.events = 0
        del self.connections[conn.sock.fileno()]
        self.buffered -= conn.held
        conn.held = 0
        self._requests.pop(conn, None)
        self._lingering.pop(conn, None)
        conn.sock.close()
        try:
            conn.handler.connection_lost()
        except Exception:
            log.exception("%s handler failed while closing", format_address(conn.peer))
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
