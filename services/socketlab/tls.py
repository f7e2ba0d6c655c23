"""TLS for the guide's programs: the guide recommends Python's ``ssl`` and leaves it there.

The application protocol is the same inside TLS; only the socket changes. A server wraps each
accepted socket and the selectors loop drives its handshake without blocking
(:mod:`socketlab.server`); a client wraps its connected socket and finishes the handshake
within its exchange's deadline (:mod:`socketlab.client`).

Only this module imports ``ssl`` for the programs, and only when TLS is asked for: a Python
built without it (the PowerPC guest before it had OpenSSL) still runs every plain program.

A server's connection is :class:`ServerConnection`: TLS with no I/O (an ``ssl.SSLObject`` over
memory BIOs), bytes in and bytes out like the protocol core, so the loop alone owns the socket,
its events and its memory. It also reads the record framing itself, which OpenSSL does not
show: a record cut short is a request under way (the request deadline runs), a ClientHello
declaring more than :data:`MAX_CLIENT_HELLO` bytes is refused before OpenSSL allocates for it,
and what OpenSSL holds is charged to the server's memory budget (:attr:`ServerConnection.cost`).

The command-line options, the same for every command (docs/tls.md)::

    servers:  --tls-cert FILE --tls-key FILE            (TLS on when given)
    clients:  --tls [--tls-ca FILE] [--tls-server-name NAME]
              --tls-ca FILE alone turns TLS on too; the default CA is the system's,
              the default server name is HOST.
"""

from __future__ import annotations

from collections import namedtuple

__all__ = ["ClientTLS", "ServerConnection", "TLSFailure", "server_context", "session",
           "check_server_name",
           "MINIMUM_VERSION", "MAX_CLIENT_HELLO", "MAX_RECORD"]

#: TLS 1.2 and 1.3 only (what Python's default client context also allows).
MINIMUM_VERSION = "TLSv1_2"
#: Largest ClientHello a server accepts, in bytes. OpenSSL allocates what the handshake header
#: declares (up to 131 396 bytes) as soon as it reads it; real ones are 0.2-2 KiB (a post-quantum
#: key share included), so one record's worth is generous.
MAX_CLIENT_HELLO = 16384
#: Largest TLS record on the wire: 2**14 bytes of plaintext plus 256 of expansion (RFC 8446 5.2).
MAX_RECORD = 2**14 + 256
#: What TLS adds to one connection's memory, in bytes, charged to the server's budget. Measured
#: as RSS over 1000 connections, beyond a plain connection's (OpenSSL 3.0; 46.2, 34.3 and 17.1 KiB,
#: rounded up; lab_tests/loopback/test_hostile_tls.py checks them): a handshake under way (the
#: SSL object, its buffers, the handshake's state); a record cut short after it (OpenSSL's read
#: buffer); an established connection at rest.
HANDSHAKE_COST = 48 * 1024
PARTIAL_RECORD_COST = 36 * 1024
ESTABLISHED_COST = 18 * 1024
_HEAD = 9  # a record header (5 bytes) and a handshake header (4): the ClientHello's size


def _ssl():
    import ssl  # here, not at import time: see the module's docstring

    return ssl


def server_context(cert: str, key: str):
    """An ``ssl.SSLContext`` for a server presenting ``cert`` (the chain, PEM) with ``key``."""
    ssl = _ssl()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = getattr(ssl.TLSVersion, MINIMUM_VERSION)
    context.load_cert_chain(cert, key)
    return context


class ClientTLS(namedtuple("ClientTLS", "ca server_name", defaults=(None, None))):
    """How a client speaks TLS: whom it trusts (``ca``: a PEM file; None: the system's CAs)
    and the name it checks the server's certificate against (``server_name``; None: the host
    it connects to). A named tuple, as :class:`socketlab.errors.Failure` is."""

    __slots__ = ()

    def context(self):
        ssl = _ssl()
        context = ssl.create_default_context(cafile=self.ca)
        context.minimum_version = getattr(ssl.TLSVersion, MINIMUM_VERSION)
        return context

    def wrap(self, sock, host: str):
        """``sock`` (connected, with its timeout set) after the TLS handshake, checked: the
        chain up to a trusted CA, the name, the dates. Raises ``ssl.SSLError`` (e.g.
        ``ssl.SSLCertVerificationError``) or the socket's own errors (TimeoutError, ...)."""
        return self.context().wrap_socket(sock, server_hostname=self.server_name or host)


def check_server_name(name: str) -> None:
    """Raise ValueError (UnicodeError too) or TypeError (a NUL) if ssl would refuse ``name`` as the name to check the
    server's certificate against: ssl's own check, on memory BIOs, with no I/O."""
    ssl = _ssl()
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(),
                                                      server_hostname=name)


def session(sock) -> dict:
    """What was negotiated on a TLS socket: version, cipher, its secret bits, and the peer
    certificate's subject common name."""
    name, _, bits = sock.cipher()
    cert = sock.getpeercert() or {}
    subject = dict(item for rdn in cert.get("subject", ()) for item in rdn)
    return {"version": sock.version(), "cipher": name, "bits": bits,
            "peer_cn": subject.get("commonName")}


class TLSFailure(Exception):
    """A TLS connection that cannot go on: OpenSSL's reason, or one of this module's limits."""


class ServerConnection:
    """One accepted connection's TLS, with no I/O: :meth:`receive` takes the bytes the socket
    gave and returns the plaintext they complete; :meth:`send` takes plaintext and
    :meth:`outgoing` gives what must go on the wire (handshake flights, alerts, key updates,
    session tickets, application records). Raises only :class:`TLSFailure`.
    """

    __slots__ = ("_in", "_out", "_obj", "_ssl", "handshaking", "eof", "_head", "_header",
                 "_body_left", "partial", "_close_sent")

    def __init__(self, context) -> None:
        ssl = self._ssl = _ssl()
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=True)
        #: True until the handshake is complete.
        self.handshaking = True
        #: True once the peer has closed (close_notify, or the TCP stream's end).
        self.eof = False
        self._head: bytearray | None = bytearray()  # held back until the ClientHello's size is known
        self._header = bytearray()  # the current record's header, while it is incomplete
        self._body_left = 0
        #: Bytes of a record not yet complete (0 at a record boundary).
        self.partial = 0
        self._close_sent = False

    @property
    def cost(self) -> int:
        """Bytes this connection's TLS is charged to the memory budget (see the constants)."""
        if self.handshaking:
            return HANDSHAKE_COST
        return PARTIAL_RECORD_COST if self.partial else ESTABLISHED_COST

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the socket (``b""``: the stream ended); return the plaintext."""
        if not data:
            if self.handshaking:
                raise TLSFailure("the peer closed the connection during the handshake")
            self.eof = True  # without close_notify: the application's framing sees a cut
            return b""
        if self._head is not None:
            self._head += data
            if len(self._head) < _HEAD:
                self.partial = len(self._head)
                return b""
            data, self._head = bytes(self._head), None
            self._check_client_hello(data)
            self.partial = 0  # the held-back head is framed below, from the stream's start
        self._frame(data)
        self._in.write(data)
        ssl, chunks = self._ssl, []
        try:
            if self.handshaking:
                self._obj.do_handshake()
                self.handshaking = False
            while chunk := self._obj.read(65536):
                chunks.append(chunk)
            self.eof = True  # read() gives b"" once close_notify has come
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            if self.handshaking:
                raise TLSFailure("the peer closed TLS during the handshake") from None
            self.eof = True
        except ssl.SSLError as exc:
            raise TLSFailure(str(exc)) from None
        return b"".join(chunks)

    def send(self, plaintext: bytes) -> bytes:
        """``plaintext`` as records, ready for the wire (with anything else pending)."""
        if plaintext:
            try:
                self._obj.write(plaintext)
            except self._ssl.SSLError as exc:
                raise TLSFailure(str(exc)) from None
        return self.outgoing()

    def outgoing(self) -> bytes:
        """What OpenSSL has written and the loop must send."""
        return self._out.read()

    def close(self) -> bytes:
        """close_notify, once (the peer's is not awaited); the bytes to send."""
        if self._close_sent or self.handshaking:
            return b""
        self._close_sent = True
        try:
            self._obj.unwrap()
        except (self._ssl.SSLError, ValueError):  # want-read: the peer's close_notify is not awaited
            pass
        return self.outgoing()

    def _check_client_hello(self, head: bytes) -> None:
        # A handshake record (22) whose first message is a ClientHello (1), if that record holds
        # the message's header at all; anything else is for OpenSSL to refuse.
        if head[0] == 22 and int.from_bytes(head[3:5], "big") >= 4 and head[5] == 1:
            length = int.from_bytes(head[6:9], "big")
            if length > MAX_CLIENT_HELLO:
                raise TLSFailure(f"ClientHello of {length} bytes declared, over the limit of "
                                 f"{MAX_CLIENT_HELLO}")

    def _frame(self, data: bytes) -> None:
        """Follow the record framing through ``data``: what :attr:`partial` says."""
        i, end, got = 0, len(data), self.partial
        while i < end:
            if self._body_left:
                step = min(self._body_left, end - i)
                self._body_left -= step
            else:
                step = min(5 - len(self._header), end - i)
                self._header += data[i:i + step]
                if len(self._header) == 5:
                    self._body_left = int.from_bytes(self._header[3:5], "big")
                    self._header.clear()
                    if self._body_left > MAX_RECORD:
                        raise TLSFailure(f"a TLS record of {self._body_left} bytes declared, "
                                         f"over the limit of {MAX_RECORD}")
            i += step
            got = 0 if not (self._header or self._body_left) else got + step
        self.partial = got
