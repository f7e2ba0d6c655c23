"""TLS for the guide's programs: the guide recommends Python's ``ssl`` and leaves it there.

The application protocol is the same inside TLS; only the socket changes. A server wraps each
accepted socket and the selectors loop drives its handshake without blocking
(:mod:`socketlab.server`); a client wraps its connected socket and finishes the handshake
within its exchange's deadline (:mod:`socketlab.client`).

Only this module imports ``ssl`` for the programs, and only when TLS is asked for: a Python
built without it (the PowerPC guest before it had OpenSSL) still runs every plain program.

The command-line options, the same for every command (docs/tls.md)::

    servers:  --tls-cert FILE --tls-key FILE            (TLS on when given)
    clients:  --tls [--tls-ca FILE] [--tls-server-name NAME]
              --tls-ca FILE alone turns TLS on too; the default CA is the system's,
              the default server name is HOST.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientTLS", "server_context", "session", "MINIMUM_VERSION"]

#: TLS 1.2 and 1.3 only (what Python's default client context also allows).
MINIMUM_VERSION = "TLSv1_2"


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


@dataclass(frozen=True)
class ClientTLS:
    """How a client speaks TLS: whom it trusts (``ca``: a PEM file; None: the system's CAs)
    and the name it checks the server's certificate against (None: the host it connects to)."""

    ca: str | None = None
    server_name: str | None = None

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


def session(sock) -> dict:
    """What was negotiated on a TLS socket: version, cipher, its secret bits, and the peer
    certificate's subject common name."""
    name, _, bits = sock.cipher()
    cert = sock.getpeercert() or {}
    subject = dict(item for rdn in cert.get("subject", ()) for item in rdn)
    return {"version": sock.version(), "cipher": name, "bits": bits,
            "peer_cn": subject.get("commonName")}
