"""The guide's error table: an OSError -> the words the guide uses, its errno name, an outcome.

| exception               | errno         | guide's words                    | outcome                 |
|-------------------------|---------------|----------------------------------|-------------------------|
| BlockingIOError         | EWOULDBLOCK   | resource temporarily unavailable | would-block             |
| OSError                 | EADDRINUSE    | address already in use           | address-in-use          |
| ConnectionResetError    | ECONNRESET    | connection reset by peer         | reset                   |
| TimeoutError            | ETIMEDOUT     | timed out                        | timeout                 |
| ConnectionRefusedError  | ECONNREFUSED  | connection refused               | refused                 |
| OSError                 | EHOSTUNREACH  | no route to host                 | unreachable             |
| OSError                 | ENETUNREACH   | network is unreachable           | network-unreachable     |
| OSError                 | EADDRNOTAVAIL | cannot assign requested address  | address-not-available   |
| PermissionError         | EACCES        | permission denied                | permission-denied       |
| socket.gaierror         | EAI_*         | name not resolved                | name-not-resolved       |
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

__all__ = ["Failure", "classify", "getaddrinfo", "bad_host_name"]

#: errno -> (the name the guide uses, its words, the outcome). EWOULDBLOCK is EAGAIN on Linux.
_TABLE = {
    errno.EWOULDBLOCK: ("EWOULDBLOCK", "resource temporarily unavailable", "would-block"),
    errno.EADDRINUSE: ("EADDRINUSE", "address already in use", "address-in-use"),
    errno.ECONNRESET: ("ECONNRESET", "connection reset by peer", "reset"),
    errno.ETIMEDOUT: ("ETIMEDOUT", "timed out", "timeout"),
    errno.ECONNREFUSED: ("ECONNREFUSED", "connection refused", "refused"),
    errno.EHOSTUNREACH: ("EHOSTUNREACH", "no route to host", "unreachable"),
    errno.ENETUNREACH: ("ENETUNREACH", "network is unreachable", "network-unreachable"),
    errno.EADDRNOTAVAIL: ("EADDRNOTAVAIL", "cannot assign requested address", "address-not-available"),
    errno.EACCES: ("EACCES", "permission denied", "permission-denied"),
    errno.EPIPE: ("EPIPE", "broken pipe", "broken-pipe"),
}


@dataclass(frozen=True)
class Failure:
    """What went wrong, in the guide's words."""

    outcome: str  # "refused", "timeout", ...
    words: str  # "connection refused"
    errno_name: str | None  # "ECONNREFUSED"; None where the OS gave no errno
    exception: str  # "ConnectionRefusedError"
    message: str  # the OS's own message

    def line(self, context: str) -> str:
        """One line for a CLI: ``connection refused (ECONNREFUSED) connecting to ...``."""
        name = f" ({self.errno_name})" if self.errno_name else ""
        return f"{self.words}{name} {context}"


def classify(exc: BaseException) -> Failure:
    kind = type(exc).__name__
    if isinstance(exc, socket.gaierror):
        name = next((n for n in dir(socket) if n.startswith("EAI_") and getattr(socket, n) == exc.errno), None)
        return Failure("name-not-resolved", "name not resolved", name, kind, str(exc.strerror or exc))
    if isinstance(exc, OSError):
        code = exc.errno
        if code is None and isinstance(exc, TimeoutError):
            # Python's own socket timeout carries no errno; the guide's table calls it ETIMEDOUT.
            return Failure("timeout", "timed out", "ETIMEDOUT", kind, str(exc) or "timed out")
        if code in _TABLE:
            name, words, outcome = _TABLE[code]
            return Failure(outcome, words, name, kind, exc.strerror or str(exc))
        name = errno.errorcode.get(code) if code is not None else None
        return Failure("error", (exc.strerror or str(exc)).lower(), name, kind, exc.strerror or str(exc))
    return Failure("error", str(exc) or kind, None, kind, str(exc))


def bad_host_name(host: str) -> socket.gaierror:
    """The error for a host name Python cannot even encode (an empty or 64+ character label).

    Python raises UnicodeError for those before asking any resolver; to a user it is one more
    name that does not resolve, so it becomes ``socket.gaierror`` EAI_NONAME.
    """
    return socket.gaierror(socket.EAI_NONAME, f"invalid host name {host!r}")


def getaddrinfo(host: str, port: int, flags: int = 0) -> list:
    """``socket.getaddrinfo`` for TCP, raising only OSError (see :func:`bad_host_name`)."""
    try:
        return socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    except UnicodeError:
        raise bad_host_name(host) from None
