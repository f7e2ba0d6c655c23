"""Hostile TLS peers for the loopback attack suite: TLS driven by hand over memory BIOs, so a
test chooses every byte that goes on the wire and when.

* :class:`HandDriven`: a client whose handshake and records the test sends itself (a real
  ClientHello then silence, a record cut short, one byte a second);
* :meth:`HandDriven.key_update`: a TLS 1.3 KeyUpdate with ``update_requested``, which Python's
  ssl module cannot send: OpenSSL's ``SSL_key_update`` through ctypes, on the SSL pointer of
  CPython's ``_ssl._SSLSocket`` (checked against ``SSL_version`` before any use).
"""

from __future__ import annotations

import ctypes
import socket
import ssl

TLS1_3_VERSION = 0x0304
SSL_KEY_UPDATE_REQUESTED = 1

_libssl = ctypes.CDLL(ssl._ssl.__file__)  # the OpenSSL that _ssl is linked with, already loaded
_libssl.SSL_version.argtypes = [ctypes.c_void_p]
_libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]


def _ssl_pointer(obj: ssl.SSLObject) -> int:
    """The ``SSL *`` inside an SSLObject: CPython's PySSLSocket is PyObject_HEAD, a weakref to
    the socket, then the pointer."""
    pointer = ctypes.c_void_p.from_address(id(obj._sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p))
    if _libssl.SSL_version(pointer.value) != TLS1_3_VERSION:
        raise RuntimeError("this CPython's _ssl layout is not the one this helper knows")
    return pointer.value


class HandDriven:
    """A TLS client over ``sock`` (connected, blocking) whose bytes the test sends."""

    def __init__(self, sock: socket.socket, ca: str, server_name: str = "localhost") -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        context = ssl.create_default_context(cafile=ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)

    def client_hello(self) -> bytes:
        """The first flight, not sent."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def handshake(self) -> None:
        """The whole handshake, over the socket."""
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed during the handshake")
                self.incoming.write(data)
                continue
            self.sock.sendall(self.outgoing.read())
            return

    def records(self, plaintext: bytes) -> bytes:
        """``plaintext`` as records, not sent."""
        self.obj.write(plaintext)
        return self.outgoing.read()

    def key_update(self) -> bytes:
        """One KeyUpdate asking the server to update its keys too (and so to send), not sent."""
        if _libssl.SSL_key_update(_ssl_pointer(self.obj), SSL_KEY_UPDATE_REQUESTED) != 1:
            raise RuntimeError("SSL_key_update refused")
        try:
            self.obj.do_handshake()  # sends the pending key update
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()
