"""The guide's reference topics as programs: getaddrinfo's five-tuples, socket options set and
read back, the listen backlog, and the half-open connection (docs/lessons.md).

Each function does one demonstration on this host's kernel and returns what it saw as plain
data (the CLI prints it; a test asserts it), so the same code shows the little-endian hosts'
kernel and the PowerPC guest's. Standard library only, like the rest of the package.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from collections.abc import Callable

from socketlab.errors import getaddrinfo

__all__ = ["addrinfo", "sockopts", "backlog", "listen_queue", "tcp_state", "half_open_server",
           "OPTIONS"]

#: Linux's TCP states (include/net/tcp_states.h), as ``ss`` names them.
TCP_STATES = {1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
              6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
              11: "CLOSING"}


def addrinfo(host: str, port: int) -> list[tuple]:
    """``socket.getaddrinfo(host, port, proto=IPPROTO_TCP)``, as the guide calls it: the
    five-tuples ``(family, type, proto, canonname, sockaddr)`` that ``socket()`` and
    ``connect()`` take; a 2-tuple address for IPv4, a 4-tuple ``(host, port, flowinfo,
    scope_id)`` for IPv6; ``""`` gives the wildcard addresses a server binding ``""`` or ``"::"``
    gets (``None`` with AI_PASSIVE). Raises ``socket.gaierror`` for a name that does not
    resolve, a scope (``%eth9``) that does not exist included."""
    if host == "":  # the guide's "every interface": what a server binding "" gets
        return [info for info in getaddrinfo(None, port, socket.AI_PASSIVE)
                if info[2] == socket.IPPROTO_TCP]
    return [info for info in getaddrinfo(host, port) if info[2] == socket.IPPROTO_TCP]


#: (level, option, name, value to set): the guide's opening excerpt sets SO_REUSEADDR, SO_RCVBUF
#: and SO_SNDBUF before bind/connect; TCP_NODELAY and SO_KEEPALIVE are the two more a reader meets.
OPTIONS = [
    (socket.SOL_SOCKET, socket.SO_REUSEADDR, "SO_REUSEADDR", 1),
    (socket.SOL_SOCKET, socket.SO_RCVBUF, "SO_RCVBUF", 65536),
    (socket.SOL_SOCKET, socket.SO_SNDBUF, "SO_SNDBUF", 65536),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, "SO_KEEPALIVE", 1),
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, "TCP_NODELAY", 1),
]


def _read(sock: socket.socket) -> dict[str, int]:
    return {name: sock.getsockopt(level, option) for level, option, name, _ in OPTIONS}


def sockopts(host: str = "127.0.0.1", *, buffer: int = 65536) -> dict:
    """The guide's test, on this kernel: set every option of :data:`OPTIONS` on a listener and
    on a client before ``bind``/``connect``, connect them, and read the options back from the
    listener, the client and the socket ``accept()`` returned (which inherits from the
    listener, or not). Also the defaults of a fresh socket. ``buffer`` is what SO_RCVBUF and
    SO_SNDBUF are set to."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    wanted = {name: (buffer if name in ("SO_RCVBUF", "SO_SNDBUF") else value)
              for _, _, name, value in OPTIONS}
    with socket.socket(family) as fresh, socket.socket(family) as listener, \
            socket.socket(family) as client:
        defaults = _read(fresh)
        for sock in (listener, client):
            for level, option, name, _ in OPTIONS:
                sock.setsockopt(level, option, wanted[name])
        listener.bind((host, 0))
        listener.listen(1)
        client.bind((host, 0))  # the guide binds first, so SO_REUSEADDR applies
        client.settimeout(5)
        client.connect(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        with accepted:
            return {"kernel": _kernel(), "set": wanted, "default": defaults,
                    "listener": _read(listener), "client": _read(client),
                    "accepted": _read(accepted)}


def _kernel() -> str:
    import platform

    return f"{platform.system()} {platform.release()} {platform.machine()}"


def tcp_state(sock: socket.socket) -> str | None:
    """The kernel's state of ``sock``'s connection, as ``ss -tn`` names it (``FIN-WAIT-2``,
    ``CLOSE-WAIT``, ...): TCP_INFO's first byte. None where TCP_INFO is missing."""
    info = getattr(socket, "TCP_INFO", None)
    if info is None:
        return None
    return TCP_STATES.get(sock.getsockopt(socket.IPPROTO_TCP, info, 1)[0], "UNKNOWN")


def listen_queue(listener: socket.socket) -> tuple[int, int] | None:
    """(connections waiting in the accept queue, the backlog) of a listening TCP socket: what
    ``ss -ltn`` shows as Recv-Q and Send-Q. Linux's TCP_INFO reports them in ``tcpi_unacked``
    and ``tcpi_sacked`` for a listener; read as the C struct the kernel writes, in native byte
    order on purpose. None where TCP_INFO is missing."""
    info = getattr(socket, "TCP_INFO", None)
    if info is None:
        return None
    raw = listener.getsockopt(socket.IPPROTO_TCP, info, 32)
    unacked, sacked = struct.unpack_from("=2I", raw, 24)  # after 8 one-byte fields and 4 u32s
    return unacked, sacked


def backlog(host: str = "127.0.0.1", *, backlog: int = 10, connections: int = 20,
            timeout: float = 3.0) -> dict:
    """The guide's ``listen(10)``, tried: a listener with ``backlog`` that never accepts, and
    ``connections`` non-blocking connects to it. Returns how many completed their handshake
    within ``timeout`` (on the client's side), how many were refused, how many were still
    waiting (their SYNs dropped by the kernel), and the listener's queue as ``ss -ltn`` shows it.

    Linux queues backlog + 1 connections. A connect() can complete beyond that: a SYN answered
    before the queue was full gets its SYN-ACK, the client is connected, and the server drops
    its ACK (SYN-RECV there, the SYN-ACK sent again later). On a fast kernel the loopback
    handshake finishes inside connect(), so there are none; on the emulated PowerPC guest there
    are. Completed is not accepted: ``accept_queue`` is what the server holds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener, selectors.DefaultSelector() as sel:
        listener.bind((host, 0))
        listener.listen(backlog)
        address = listener.getsockname()[:2]
        socks = []
        try:
            for _ in range(connections):
                sock = socket.socket(family)
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(address)
                sel.register(sock, selectors.EVENT_WRITE)
            completed = refused = 0
            deadline = time.monotonic() + timeout
            while sel.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    error = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    completed += error == 0
                    refused += error != 0
                    sel.unregister(key.fileobj)
            queue = listen_queue(listener)
        finally:
            for sock in socks:
                sock.close()
    waiting = connections - completed - refused
    return {"kernel": _kernel(), "backlog": backlog, "connections": connections,
            "completed": completed, "refused": refused, "waiting": waiting,
            "timeout": timeout, "accept_queue": queue and queue[0], "ss_send_q": queue and queue[1]}


def half_open_server(listener: socket.socket, say: Callable[[str], None], *, hold: float,
                     stop: Callable[[], bool] = lambda: False) -> None:
    """The other side of the guide's half-open connection, one peer at a time: read until the
    peer shuts down its side (EOF), keep ours open ``hold`` seconds (the kernel says
    CLOSE-WAIT here, FIN-WAIT-2 there: look with ``ss -tn``), then answer with everything
    received and close. The answer after EOF is the point: a half-closed peer still reads."""
    listener.settimeout(0.5)
    while not stop():
        try:
            conn, peer = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(max(hold, 1) + 30)
            say(f"Accepted connection from {peer}")
            received = bytearray()
            try:
                while data := conn.recv(65536):
                    received += data
                say(f"EOF from {peer} after {len(received)} bytes: its side is closed, ours is "
                    f"open ({tcp_state(conn)}); holding it {hold:g} s")
                time.sleep(hold)  # the demonstration's pause, for a person (or a test) to look
                conn.sendall(bytes(received))
            except OSError as exc:
                say(f"{peer}: {exc}")
                continue
            say(f"Answered {len(received)} bytes after EOF; closing connection to {peer}")
