"""The guide's troubleshooting demonstration: a server that never reads, a client that keeps
sending, until the kernel's buffers are full and ``send()`` raises BlockingIOError (EWOULDBLOCK).

The bytes in between sit in two queues, the ones ``netstat -tn`` and ``ss -tn`` show as
Recv-Q (the server's socket: arrived, not yet read) and Send-Q (the client's socket: sent by the
program, not yet acknowledged). Both programs read their own queue back from the kernel with
the ioctls those tools use (SIOCINQ and SIOCOUTQ), so what they print can be held up against
``ss``.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from collections.abc import Callable

__all__ = ["queued", "fill", "hold_unread"]

CHUNK = 1024 * 1024


def queued(sock: socket.socket, which: str) -> int | None:
    """Bytes in ``sock``'s receive (``"recv"``) or send (``"send"``) queue; None if unknown.

    Linux's SIOCINQ (= FIONREAD) and SIOCOUTQ (= TIOCOUTQ) ioctls, read as the C int the
    kernel writes: native byte order, on purpose.
    """
    try:
        import fcntl
        import termios
    except ImportError:  # a build without them: the queues are then only visible in ss
        return None
    request = termios.FIONREAD if which == "recv" else termios.TIOCOUTQ
    try:
        raw = fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0")
    except OSError:
        return None
    return struct.unpack("=i", raw)[0]


def fill(sock: socket.socket, say: Callable[[str], None], *, timeout: float) -> int:
    """Send on non-blocking ``sock`` until the kernel refuses more; the bytes it took.

    Raises TimeoutError if the buffers never fill within ``timeout`` (the peer reads after all).
    """
    sock.setblocking(False)
    chunk = b"x" * CHUNK
    total = 0
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the buffers did not fill within {timeout:g} s "
                                   f"({total} bytes sent): is the peer reading?")
            try:
                total += sock.send(chunk)
            except BlockingIOError as exc:
                # Writable again within a moment means the peer is reading: keep going.
                if not sel.select(0.5):
                    say(f"BlockingIOError: {exc} (EWOULDBLOCK) after {total} bytes: "
                        f"the kernel's buffers are full")
                    return total


def hold_unread(listener: socket.socket, say: Callable[[str], None], *,
                interval: float = 0.5, stop: Callable[[], bool] = lambda: False) -> None:
    """Accept connections and never read from them; say each one's Recv-Q when it changes."""
    listener.settimeout(interval)
    held: dict[socket.socket, tuple] = {}
    last: dict[socket.socket, int | None] = {}
    try:
        while not stop():
            try:
                conn, peer = listener.accept()
                held[conn] = peer
                say(f"Accepted connection from {peer} (this server never reads)")
            except TimeoutError:
                pass
            for conn, peer in held.items():
                now = queued(conn, "recv")
                if now != last.get(conn):
                    last[conn] = now
                    say(f"Recv-Q: {now} bytes from {peer} waiting, unread (SIOCINQ)")
    finally:
        for conn in held:
            conn.close()
