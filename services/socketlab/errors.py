"""The guide's error table: an OSError -> the guide's words, its errno name, an :class:`Outcome`.

The table is :data:`_TABLE` below (errno -> name, words, outcome); :func:`classify` reads it and
adds what has no errno of its own: Python's socket timeout (the guide's ETIMEDOUT) and
``socket.gaierror`` (a name not resolved). docs/cli.md renders :class:`Outcome` (``make docs``).
"""

from __future__ import annotations

import enum
import errno
import socket
import sys
from collections import namedtuple

__all__ = ["Outcome", "Failure", "classify", "getaddrinfo", "bad_host_name"]


class Outcome(enum.StrEnum):
    """What happened to a socket operation: the lab's one vocabulary (``probe``'s ``outcome``,
    the firewall and binding matrices, the fault tests). A ``str``, so it prints and
    serialises as its value. docs/cli.md's table is generated from it (``make docs``).
    """

    def __new__(cls, value: str, meaning: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    CONNECTED = "connected", "the TCP handshake completed"
    REFUSED = "refused", "ConnectionRefusedError (ECONNREFUSED): a TCP reset; nothing listens there, or a firewall's `reject with tcp reset`"
    TIMEOUT = "timeout", "TimeoutError (ETIMEDOUT): no answer within the timeout; a firewall's `drop`, or a host that is gone"
    UNREACHABLE = "unreachable", "OSError EHOSTUNREACH: an ICMP host-unreachable, from a router or the client's own kernel"
    NETWORK_UNREACHABLE = "network-unreachable", "OSError ENETUNREACH: no route to that network"
    RESET = "reset", "ConnectionResetError (ECONNRESET): the peer aborted an established connection"
    BROKEN_PIPE = "broken-pipe", "BrokenPipeError (EPIPE): sending after the peer closed"
    WOULD_BLOCK = "would-block", "BlockingIOError (EWOULDBLOCK): a non-blocking call that would have to wait"
    ADDRESS_IN_USE = "address-in-use", "OSError EADDRINUSE: another socket listens on that address and port"
    ADDRESS_NOT_AVAILABLE = "address-not-available", "OSError EADDRNOTAVAIL: the address is not one of this host's"
    PERMISSION_DENIED = "permission-denied", "PermissionError (EACCES): e.g. a port below 1024 without privilege"
    NAME_NOT_RESOLVED = "name-not-resolved", "socket.gaierror (EAI_*): the host name did not resolve"
    TLS_ERROR = "tls-error", "ssl.SSLError (the OpenSSL reason): the TLS handshake failed: an untrusted or expired certificate, a name mismatch, a peer that does not speak TLS"
    ERROR = "error", "anything else (the errno name is given)"


#: errno -> (the name the guide uses, its words, the outcome). EWOULDBLOCK is EAGAIN on Linux.
_TABLE = {
    errno.EWOULDBLOCK: ("EWOULDBLOCK", "resource temporarily unavailable", Outcome.WOULD_BLOCK),
    errno.EADDRINUSE: ("EADDRINUSE", "address already in use", Outcome.ADDRESS_IN_USE),
    errno.ECONNRESET: ("ECONNRESET", "connection reset by peer", Outcome.RESET),
    errno.ETIMEDOUT: ("ETIMEDOUT", "timed out", Outcome.TIMEOUT),
    errno.ECONNREFUSED: ("ECONNREFUSED", "connection refused", Outcome.REFUSED),
    errno.EHOSTUNREACH: ("EHOSTUNREACH", "no route to host", Outcome.UNREACHABLE),
    errno.ENETUNREACH: ("ENETUNREACH", "network is unreachable", Outcome.NETWORK_UNREACHABLE),
    errno.EADDRNOTAVAIL: ("EADDRNOTAVAIL", "cannot assign requested address",
                          Outcome.ADDRESS_NOT_AVAILABLE),
    errno.EACCES: ("EACCES", "permission denied", Outcome.PERMISSION_DENIED),
    errno.EPIPE: ("EPIPE", "broken pipe", Outcome.BROKEN_PIPE),
}


class Failure(namedtuple("Failure", "outcome words errno_name exception message")):
    """What went wrong, in the guide's words: its :class:`Outcome`, ``words`` ("connection
    refused"), ``errno_name`` ("ECONNREFUSED"; None where the OS gave no errno), ``exception``
    ("ConnectionRefusedError") and ``message`` (the OS's own). A named tuple, not a dataclass:
    ``dataclasses`` imports ``inspect``, a quarter of a second of every start in the guest."""

    __slots__ = ()

    def line(self, context: str) -> str:
        """One line for a CLI: ``connection refused (ECONNREFUSED) connecting to ...``."""
        name = f" ({self.errno_name})" if self.errno_name else ""
        return f"{self.words}{name} {context}"


def classify(exc: BaseException) -> Failure:
    kind = type(exc).__name__
    # ssl is not imported here (a Python without it runs the rest), and another thread may be
    # importing it right now (a half-made module): an SSLError means it is complete.
    ssl = sys.modules.get("ssl")
    if isinstance(exc, getattr(ssl, "SSLError", ())):
        reason = getattr(exc, "reason", None)
        if isinstance(exc, ssl.SSLCertVerificationError):
            words = f"certificate verify failed: {exc.verify_message}"
        elif reason:
            words = reason.replace("_", " ").lower()
        else:
            # No OpenSSL reason: CPython's own words and its SSL_ERROR_* name. E.g. an EOF in
            # the handshake is SSLZeroReturnError "TLS/SSL connection has been closed (EOF)"
            # where OP_IGNORE_UNEXPECTED_EOF is on (Debian's python3.11); without it, it is
            # SSLEOFError with the reason UNEXPECTED_EOF_WHILE_READING (the branch above).
            words = (exc.strerror or str(exc)).rsplit(" (_ssl.c:", 1)[0].lower()
            reason = next((n.name for n in ssl.SSLErrorNumber if n.value == exc.errno), None)
        return Failure(Outcome.TLS_ERROR, words, reason, kind, str(exc))
    if isinstance(exc, socket.gaierror):
        name = next((n for n in dir(socket) if n.startswith("EAI_") and getattr(socket, n) == exc.errno), None)
        return Failure(Outcome.NAME_NOT_RESOLVED, "name not resolved", name, kind,
                       str(exc.strerror or exc))
    if isinstance(exc, OSError):
        code = exc.errno
        if code is None and isinstance(exc, TimeoutError):
            # Python's own socket timeout carries no errno; the guide's table calls it ETIMEDOUT.
            return Failure(Outcome.TIMEOUT, "timed out", "ETIMEDOUT", kind, str(exc) or "timed out")
        if code in _TABLE:
            name, words, outcome = _TABLE[code]
            return Failure(outcome, words, name, kind, exc.strerror or str(exc))
        name = errno.errorcode.get(code) if code is not None else None
        return Failure(Outcome.ERROR, (exc.strerror or str(exc)).lower(), name, kind,
                       exc.strerror or str(exc))
    return Failure(Outcome.ERROR, str(exc) or kind, None, kind, str(exc))


def bad_host_name(host: str) -> socket.gaierror:
    """The error for a host name Python cannot even encode (an empty or 64+ character label).

    Python raises UnicodeError for those before asking any resolver; to a user it is one more
    name that does not resolve, so it becomes ``socket.gaierror`` EAI_NONAME.
    """
    return socket.gaierror(socket.EAI_NONAME, f"invalid host name {host!r}")


def getaddrinfo(host: str | None, port: int, flags: int = 0) -> list:
    """``socket.getaddrinfo`` for TCP, raising only OSError (see :func:`bad_host_name`)."""
    try:
        return socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    except UnicodeError:
        raise bad_host_name(host) from None
