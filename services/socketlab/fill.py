"""The guide's troubleshooting demonstration: a server that never reads, a client that keeps
sending, until the kernel's buffers are full and ``send()`` raises BlockingIOError (EWOULDBLOCK).

The bytes in between sit in two queues, the ones ``netstat -tn`` and ``ss -tn`` show as
Recv-Q (the server's socket: arrived, not yet read) and Send-Q (the client's socket: sent by the
program, not yet acknowledged). Both programs read their own queue back from the kernel with
the ioctls those tools use (SIOCINQ and SIOCOUTQ), so what they print can be held up against
``ss``.
"""

from __future__ import annotations

import errno
import select
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
    """Accept connections and never read from them; say each one's Recv-Q when it changes.

    Not reading is the point, yet a peer that closes (its FIN: POLLRDHUP) or resets (POLLERR,
    POLLHUP) is let go at once: its socket is closed and its unread bytes are said. Out of
    descriptors (EMFILE), accepting pauses until a peer goes.
    """
    gone = select.POLLRDHUP | select.POLLHUP | select.POLLERR
    poller = select.poll()
    listener.setblocking(False)
    poller.register(listener, select.POLLIN)
    accepting = True
    held: dict[int, tuple[socket.socket, tuple]] = {}
    last: dict[int, int | None] = {}
    try:
        while not stop():
            for fd, event in poller.poll(interval * 1000):
                if fd == listener.fileno():
                    accepting = _accept_all(listener, poller, held, say)
                elif fd in held and event & gone:
                    conn, peer = held.pop(fd)
                    last.pop(fd, None)
                    unread = queued(conn, "recv")
                    poller.unregister(fd)
                    conn.close()
                    how = "reset the connection" if event & select.POLLERR else "closed its side"
                    say(f"Closing connection to {peer}: it {how} ({unread} bytes never read)")
                    if not accepting:
                        poller.register(listener, select.POLLIN)
                        accepting = True
            for fd, (conn, peer) in held.items():
                now = queued(conn, "recv")
                if now != last.get(fd):
                    last[fd] = now
                    say(f"Recv-Q: {now} bytes from {peer} waiting, unread (SIOCINQ)")
    finally:
        for conn, _ in held.values():
            conn.close()


def _accept_all(listener, poller, held, say) -> bool:
    """Accept what is queued; False once out of descriptors (the listener is then unwatched)."""
    while True:
        try:
            conn, peer = listener.accept()
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                say(f"accept failed: {exc}; not accepting until a peer goes")
                poller.unregister(listener)
                return False
            continue  # e.g. ECONNABORTED: that peer gave up already
        held[conn.fileno()] = (conn, peer)
        poller.register(conn, select.POLLRDHUP)
        say(f"Accepted connection from {peer} (this server never reads)")
