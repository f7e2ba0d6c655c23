"""``socketlab`` command line: the guide's programs with the guide's argument forms.

See docs/cli.md. Exit status: 0 success, 1 a network or protocol failure (one line on stderr
naming the guide's error and its errno name), 2 a usage error (one line on stderr). Every
option has a range, checked before anything starts; text from a peer is printed escaped
(:func:`socketlab.app.printable`), so it cannot add a line or drive the terminal.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import socket
import sys
import time

from socketlab import __version__, app, arrays, client, fill, lessons, tls
from socketlab.errors import Outcome, classify
from socketlab.protocol import LocalProtocolError, ProtocolError
from socketlab import server as servers
from socketlab.handlers import AppHandler, EchoHandler
from socketlab.addresses import ready_line
from socketlab.server import Server, create_listener

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 65432

log = logging.getLogger("socketlab")


#: The longest any time option may be, in seconds (a year).
MAX_SECONDS = 365 * 86400
#: The largest socket buffer option, in bytes (the kernel takes an int and caps it anyway).
MAX_SOCKET_BUFFER = 1 << 30


class Fail(Exception):
    """A failure already worded for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (``PROG: error: ...``) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {app.printable(message)} (see {self.prog} --help)\n")


def _port_type(lowest: int):
    """An argparse type: a port number, ``lowest``..65535 (servers may ask for 0: any port)."""
    def port(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
        if not lowest <= value <= 65535:
            raise argparse.ArgumentTypeError(f"invalid port {value!r}: must be {lowest}..65535")
        return value
    return port


_port = _port_type(0)
_client_port = _port_type(1)


def _host(text: str) -> str:
    """A host as the guide takes it; ``[::1]``-style brackets around an IPv6 literal go."""
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    return text


def _shown_host(host: str) -> str:
    return host or "''"


def _positive(kind, *, zero: bool = False, what: str = "a number", most: float):
    """An argparse type: a finite number above 0 (or 0 too, with ``zero``), at most ``most``."""
    def parse(text: str):
        bound = f"{'0' if zero else 'above 0'} to {int(most)}"
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {what}, {bound}; got {text!r}") from None
        if not 0 <= value <= most or (value == 0 and not zero):  # NaN compares false too
            raise argparse.ArgumentTypeError(f"must be {what}, {bound}; got {text!r}")
        return value
    return parse


def _seconds(zero: bool = False):
    return _positive(float, zero=zero, what="seconds", most=MAX_SECONDS)


def _count(what: str, most: int):
    return _positive(int, what=f"a whole number of {what}", most=most)


_buffer_size = _positive(int, what="a whole number of bytes", most=MAX_SOCKET_BUFFER)


def _file(text: str) -> str:
    """An argparse type: a file name, never empty (an unset shell variable is a usage error)."""
    if not text:
        raise argparse.ArgumentTypeError("must name a file, got ''")
    return text


# -- servers ---------------------------------------------------------------------------------


def _raise_nofile_limit() -> None:
    try:
        import resource
    except ImportError:  # not every build has it; the limit then stays as it is
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _listen(args) -> socket.socket:
    """The listening socket for HOST PORT, or a Fail worded as the guide's error table."""
    try:
        return create_listener(args.host, args.port)
    except OSError as exc:
        failure = classify(exc)
        hint = {
            "address-in-use": "another program is listening there",
            "permission-denied": "ports below 1024 need root or CAP_NET_BIND_SERVICE",
            "address-not-available": f"{args.host!r} is not an address of this host",
        }.get(failure.outcome)
        raise Fail(failure.line(f"binding {args.host!r} port {args.port}")
                   + (f": {hint}" if hint else "")) from None


def _server_tls(args):
    """The server's ssl.SSLContext from --tls-cert/--tls-key, None without them."""
    if not args.tls_cert:
        return None
    try:
        return tls.server_context(args.tls_cert, args.tls_key)
    except ImportError:
        raise Fail("TLS: this Python has no ssl module") from None
    except OSError as exc:  # a missing file, or ssl.SSLError for a bad certificate or key
        raise Fail(f"TLS: cannot load {args.tls_cert} / {args.tls_key}: {exc}") from None


def _client_tls(args) -> tls.ClientTLS | None:
    """How a client speaks TLS (--tls, --tls-ca, --tls-server-name), None for plain TCP.

    Any of them, even empty, asks for TLS; the name the certificate is checked against
    (--tls-server-name, else HOST) must be one ssl takes: else a usage error, before any
    packet. Never cleartext when TLS was asked for.
    """
    if not (args.tls or args.tls_ca is not None or args.tls_server_name is not None):
        return None
    name = args.tls_server_name if args.tls_server_name is not None else args.host
    try:
        tls.check_server_name(name)
    except ImportError:
        raise Fail("TLS: this Python has no ssl module") from None
    except (ValueError, TypeError) as exc:  # a name IDNA refuses (UnicodeError), a NUL
        what, hint = (("--tls-server-name", "") if args.tls_server_name is not None
                      else ("HOST", "; give --tls-server-name"))
        args.parser.error(f"{what} {name!r} cannot be checked against a certificate: {exc}{hint}")
    return tls.ClientTLS(ca=args.tls_ca, server_name=args.tls_server_name)


def _serve(args, handler_factory) -> int:
    context = _server_tls(args)
    listener = _listen(args)
    _raise_nofile_limit()
    server = Server(
        listener,
        handler_factory,
        idle_timeout=args.idle_timeout or None,
        request_timeout=args.request_timeout or None,
        max_connections=args.max_connections,
        max_buffered=args.max_buffered,
        socket_buffer=args.socket_buffer,
        tls=context,
        after_round=None if args.quiet else _commentary().flush,  # the commentary, once a round
    )
    interrupted = []

    def stop(signum, frame):
        interrupted.append(signum)
        server.shutdown()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    # The guide's readiness line, with the real port when PORT was 0; then socketlab's limits,
    # which the guide's servers do not have (docs/reliability.md).
    # --quiet: the ready line only (docs/cli.md).
    print(ready_line(args.host, server.address[1]), flush=True)
    idle = f"{args.idle_timeout:g} s" if args.idle_timeout else "never"
    request = f"{args.request_timeout:g} s" if args.request_timeout else "never"
    if not args.quiet:
        print(f"socketlab: idle connections close after {idle} (--idle-timeout), unfinished "
              f"requests after {request} (--request-timeout)"
              + (f"; TLS with {args.tls_cert}" if context else ""), flush=True)
    server.serve_forever()
    if signal.SIGINT in interrupted and not args.quiet:
        print("Caught keyboard interrupt, exiting", flush=True)
    log.info("stopped")
    return 0


def _narrate(args, *, server: bool = False):
    """The guide's running commentary on stdout, or None with ``--quiet``. A client's lines go
    out one by one; a server's are written at the end of each round of the loop
    (:func:`_commentary`)."""
    if args.quiet:
        return None
    return _commentary().line if server else functools.partial(print, flush=True)


@functools.lru_cache(maxsize=1)
def _commentary() -> "_Commentary":
    """The server's commentary on this process's stdout (one per process)."""
    return _Commentary(sys.stdout)


class _Commentary:
    """A server's commentary: its lines, kept until the end of the loop's round
    (``Server.after_round`` calls :meth:`flush`), then written to stdout in one ``write``.

    One write a round whatever the environment says: PYTHONUNBUFFERED (the lab's images set it)
    makes every ``print`` to ``sys.stdout`` two system calls, and a line still waits at most a
    round. A stdout that cannot be written any more (its reader went away) ends the commentary,
    said once on stderr; the server goes on serving. The ready line and the rest go through
    ``sys.stdout``, flushed before the loop starts and after it ends.
    """

    def __init__(self, stream) -> None:
        self._lines: list[str] = []
        self._encoding = (getattr(stream, "encoding", None) or "utf-8",
                          getattr(stream, "errors", None) or "strict")
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, ValueError, OSError):  # not a file (a test's capture)
            self._fd, self._stream = None, stream
        else:
            self._stream = None

    def line(self, text: str) -> None:
        if self._stream is not None:
            print(text, file=self._stream)
        elif self._fd is not None:
            self._lines.append(text)

    def flush(self) -> None:
        if not self._lines:
            return
        data = memoryview(("\n".join(self._lines) + "\n").encode(*self._encoding))
        self._lines.clear()
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            log.warning("the commentary cannot be written to stdout (%s); no more of it", exc)
            self._fd = None


def cmd_echo_server(args) -> int:
    program = "echo" if args.command == "echo-server" else "multiconn"
    return _serve(args, functools.partial(EchoHandler, narrate=_narrate(args, server=True), program=program))


def cmd_app_server(args) -> int:
    decoder = arrays.decode_array_naive if args.array_decoder == "naive" else arrays.decode_array
    if args.array_decoder == "naive":
        log.warning("array decoder is NAIVE (native byte order, header ignored): negative control only")
    return _serve(args, functools.partial(AppHandler, array_decoder=decoder,
                                          narrate=_narrate(args, server=True)))


# -- clients ---------------------------------------------------------------------------------


def cmd_echo_client(args) -> int:
    # The bytes as typed: os.fsencode gives back an argument that was not valid UTF-8 too.
    data = client.echo(args.host, args.port, os.fsencode(args.message), timeout=args.timeout,
                       tls=args.client_tls, half_close=args.half_close)
    print(f"Received {data!r}")
    return 0


def cmd_multiconn_client(args) -> int:
    results = client.multiconn(args.host, args.port, args.num_conns,
                               messages_per_conn=args.messages, timeout=args.timeout,
                               narrate=_narrate(args))
    for connid in sorted(results):
        log.debug("connection %d received %r", connid, results[connid])
    total = sum(map(len, results.values()))
    print(f"{len(results)} connections, {total} bytes echoed, every message exact")
    return 0


def _byteorder(name: str) -> str:
    return sys.byteorder if name == "native" else name


def cmd_app_client(args) -> int:
    narrate = None if args.json else _narrate(args)
    reply = client.request(args.host, args.port, args.wire, timeout=args.timeout, narrate=narrate,
                           tls=args.client_tls)
    if args.json:
        result = app.describe_response(reply.response)
        print(json.dumps({
            "byteorder": sys.byteorder,
            "request": {"action": args.action, "value": args.value, "dtype": args.dtype,
                        "byteorder": _byteorder(args.byteorder)},
            "header": reply.response.header,
            "result": result,
            "local": list(reply.local),
            "peer": list(reply.peer),
            **({"tls": reply.tls} if reply.tls else {}),
        }))  # ASCII: a peer's control characters arrive as \\u escapes, never raw
        return 0
    for line in app.result_lines(reply.response):
        print(line)
    if narrate is not None:
        narrate(f"Closing connection to {(args.host, args.port)}")
    return 0


def cmd_probe(args) -> int:
    result = client.probe(args.host, args.port, timeout=args.timeout, tls=args.client_tls)
    print(json.dumps(result))
    return 0 if result["outcome"] == Outcome.CONNECTED else 1


# -- the guide's troubleshooting demonstration: full buffers ----------------------------------


def cmd_fill_server(args) -> int:
    listener = _listen(args)
    _raise_nofile_limit()
    if args.rcvbuf:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    print(ready_line(args.host, listener.getsockname()[1]), flush=True)
    try:
        fill.hold_unread(listener, functools.partial(print, flush=True))
    finally:
        listener.close()
    return 0


def cmd_fill_client(args) -> int:
    say = functools.partial(print, flush=True)
    say(f"Starting connection to {(args.host, args.port)}")
    with client.connect(args.host, args.port, timeout=args.timeout) as sock:
        if args.sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
        say(f"Sending {fill.CHUNK}-byte chunks and never reading...")
        total = fill.fill(sock, say, timeout=args.timeout)
        say(f"Send-Q: {fill.queued(sock, 'send')} of the {total} bytes still in this socket, not "
            f"yet acknowledged (SIOCOUTQ); the rest wait in the server's Recv-Q")
        if args.hold:
            say(f"Holding the connection for {args.hold:g} s: compare with `ss -tn` or "
                f"`netstat -tn` on both hosts")
            time.sleep(args.hold)  # the demonstration's pause for a person (or a test) to look
    return 0


# -- the guide's reference topics: getaddrinfo, socket options, the backlog (docs/lessons.md) -


def cmd_addrinfo(args) -> int:
    # "" is the guide's "every interface" for bind: getaddrinfo spells it None with AI_PASSIVE.
    call = (f"None, {args.port}, flags=socket.AI_PASSIVE" if args.host == ""
            else f"{args.host!r}, {args.port}")
    try:
        found = lessons.addrinfo(args.host, args.port)
    except socket.gaierror as exc:  # the lookup is this command's input: 2, as getent says
        _fail(classify(exc).line(f"resolving {_shown_host(args.host)} port {args.port}"))
        return 2
    print(f">>> socket.getaddrinfo({call}, proto=socket.IPPROTO_TCP)")
    for info in found:
        print(info)
    return 0


def cmd_sockopts(args) -> int:
    seen = lessons.sockopts(args.host, buffer=args.buffer)
    if args.json:
        print(json.dumps(seen))
        return 0
    print(f"socket options on {seen['kernel']}: set before bind/connect, read back with getsockopt")
    columns = ("set", "default", "listener", "client", "accepted")
    print(f"{'option':<14}" + "".join(f"{c:>10}" for c in columns))
    for name in seen["set"]:
        print(f"{name:<14}" + "".join(f"{seen[c][name]:>10}" for c in columns))
    return 0


def cmd_backlog(args) -> int:
    seen = lessons.backlog(args.host, backlog=args.backlog, connections=args.connections,
                           timeout=args.timeout)
    if args.json:
        print(json.dumps(seen))
        return 0
    print(f"listen({seen['backlog']}) on {seen['kernel']}, never accept(); "
          f"{seen['connections']} connects:")
    print(f"  {seen['completed']} handshakes completed, {seen['refused']} refused, "
          f"{seen['waiting']} still waiting after {seen['timeout']:g} s (their SYNs dropped: "
          f"connect() is slow, not refused)")
    if seen["accept_queue"] is not None:
        print(f"  the listener as ss -ltn shows it: Recv-Q {seen['accept_queue']} (the accept "
              f"queue), Send-Q {seen['ss_send_q']} (the backlog)")
        beyond = seen["completed"] - seen["accept_queue"]
        if beyond > 0:
            print(f"  {beyond} connect()s completed beyond the queue: their SYNs were answered "
                  f"before it was full, and the server dropped their ACKs (SYN-RECV there): "
                  f"completed is not accepted")
    return 0


def cmd_half_open_server(args) -> int:
    listener = _listen(args)
    print(ready_line(args.host, listener.getsockname()[1]), flush=True)
    try:
        lessons.half_open_server(listener, functools.partial(print, flush=True), hold=args.hold)
    finally:
        listener.close()
    return 0


# -- demo ------------------------------------------------------------------------------------


def cmd_demo(args) -> int:
    from socketlab import demo  # here: it imports platform, which no other command needs

    wrong, total = demo.run(args.host, args.port, timeout=args.timeout,
                            shown_host=_shown_host(args.host), tls=args.client_tls, wait=args.wait)
    if wrong:
        raise Fail(f"demo: {wrong} of {total} answers wrong")
    return 0


# -- parser ----------------------------------------------------------------------------------


def _arg(*names: str, **options) -> tuple[tuple[str, ...], dict]:
    """One ``add_argument`` call, as data."""
    return names, options


HOST, SERVER_PORT, CLIENT_PORT = _arg("host", type=_host), _arg("port", type=_port), _arg("port", type=_client_port)
OPTIONAL_HOST = _arg("host", nargs="?", type=_host, default=DEFAULT_HOST)
LOCAL_HOST = _arg("host", nargs="?", type=_host, default=DEFAULT_HOST,
                  help="a local address to listen and connect on (default 127.0.0.1)")
JSON = _arg("--json", action="store_true", help="print one JSON line")
#: The options some commands share, by name; ("timeout", S) is --timeout with default S.
GROUPS = {
    "quiet": [_arg("-q", "--quiet", action="store_true",
                   help="no running commentary: only the result (or the ready line) and errors")],
    "server": [
        _arg("--idle-timeout", type=_seconds(zero=True), default=servers.DEFAULT_IDLE_TIMEOUT, metavar="S",
             help=f"close connections idle this long; 0 = never (default {servers.DEFAULT_IDLE_TIMEOUT:g})"),
        _arg("--request-timeout", type=_seconds(zero=True), default=servers.DEFAULT_REQUEST_TIMEOUT,
             metavar="S", help="close a connection whose request is not complete S seconds after its "
                               f"first byte; 0 = never (default {servers.DEFAULT_REQUEST_TIMEOUT:g})"),
        _arg("--max-connections", type=_count("connections", 1_000_000), default=servers.DEFAULT_MAX_CONNECTIONS,
             metavar="N", help=f"stop accepting while N connections are open "
                               f"(default {servers.DEFAULT_MAX_CONNECTIONS})"),
        _arg("--max-buffered", type=_count("bytes", 1 << 40), default=servers.DEFAULT_MAX_BUFFERED,
             metavar="BYTES", help="bytes buffered across all connections before the largest holders "
                                   f"are closed (default {servers.DEFAULT_MAX_BUFFERED})"),
        _arg("--socket-buffer", type=_buffer_size, default=None, metavar="BYTES",
             help="SO_SNDBUF/SO_RCVBUF of accepted sockets (default: the kernel's)"),
        _arg("--tls-cert", type=_file, metavar="FILE",
             help="serve TLS with this certificate (PEM, the chain); needs --tls-key (docs/tls.md)"),
        _arg("--tls-key", type=_file, metavar="FILE", help="the certificate's private key (PEM)")],
    "tls": [
        _arg("--tls", action="store_true", help="speak TLS; trust the system's CAs unless --tls-ca (docs/tls.md)"),
        _arg("--tls-ca", type=_file, metavar="FILE",
             help="trust only this CA (PEM) for the server's certificate; implies --tls"),
        _arg("--tls-server-name", metavar="NAME",
             help="the name the certificate must carry (default: HOST); implies --tls")],
}
HALF_CLOSE = ("shut down the sending side once the message is sent, then read until the server closes "
              "(the guide's half-open connection)")
ACTION = ("search (sent as JSON); stats (numbers, socketlab's array type); anything else is sent as "
          "binary, ACTION + VALUE")
NAIVE = "naive reads arrays in this CPU's order ignoring the header: the byte-order bug, kept as a negative control"
#: Every command: name, function, help, its arguments, the shared option groups it takes.
COMMANDS = [
    ("echo-server", cmd_echo_server, "echo every byte back (the guide's echo server)",
     [OPTIONAL_HOST, _arg("port", nargs="?", type=_port, default=DEFAULT_PORT)],
     ["server", "quiet"]),
    ("echo-client", cmd_echo_client, "send a message to an echo server, print the echo",
     [OPTIONAL_HOST, _arg("port", nargs="?", type=_client_port, default=DEFAULT_PORT),
      _arg("message", nargs="?", default="Hello, world"),
      _arg("--half-close", action="store_true", help=HALF_CLOSE)], [("timeout", 10.0), "quiet", "tls"]),
    ("multiconn-server", cmd_echo_server, "the guide's multi-connection (echo) server", [HOST, SERVER_PORT],
     ["server", "quiet"]),
    ("multiconn-client", cmd_multiconn_client, "open NUM_CONNS connections at once and check every echoed byte",
     [HOST, CLIENT_PORT, _arg("num_conns", metavar="NUM_CONNS", type=_count("connections", 10_000)),
      _arg("--messages", type=_count("messages", 10_000), default=2, help="messages per connection")],
     [("timeout", 10.0), "quiet"]),
    ("app-server", cmd_app_server, "the guide's application server",
     [HOST, SERVER_PORT, _arg("--array-decoder", choices=("real", "naive"), default="real", help=NAIVE)],
     ["server", "quiet"]),
    ("app-client", cmd_app_client, "send one request to the application server",
     [HOST, CLIENT_PORT, _arg("action", help=ACTION), _arg("value"),
      _arg("--dtype", choices=sorted(arrays.DTYPES), default="int32", help="element type for 'stats' (default int32)"),
      _arg("--byteorder", choices=("native", "big", "little", "network"), default="native",
           help="how 'stats' packs its numbers (default native)"),
      _arg("--json-request", action="store_true",
           help="send any ACTION as a JSON request (the server's invalid-action answer)"), JSON],
     [("timeout", 10.0), "quiet", "tls"]),
    ("fill-server", cmd_fill_server, "accept connections and never read them (the guide's troubleshooting server)",
     [HOST, SERVER_PORT, _arg("--rcvbuf", type=_buffer_size, metavar="BYTES",
                              help="SO_RCVBUF of the listener (inherited by connections)")], []),
    ("fill-client", cmd_fill_client, "send until the kernel's buffers are full (BlockingIOError, EWOULDBLOCK)",
     [HOST, CLIENT_PORT, _arg("--sndbuf", type=_buffer_size, metavar="BYTES", help="SO_SNDBUF"),
      _arg("--hold", type=_seconds(zero=True), default=0.0, metavar="S",
           help="keep the full connection open S seconds, to look at it with ss")], [("timeout", 10.0)]),
    ("probe", cmd_probe, "try one TCP connection and print the outcome as JSON", [HOST, CLIENT_PORT],
     [("timeout", 2.0), "tls"]),
    ("demo", cmd_demo, "every request kind against an app server, checked",
     [OPTIONAL_HOST, _arg("--port", type=_client_port, default=DEFAULT_PORT),
      _arg("--wait", type=_seconds(zero=True), default=0.0, metavar="S",
           help="try the first request again while the server is not up yet (refused, no route, "
                "no answer), for up to S seconds (default 0: once)")],
     [("timeout", 10.0), "tls"]),
    ("addrinfo", cmd_addrinfo, "getaddrinfo's five-tuples for HOST PORT, as the guide prints them",
     [_arg("host", type=_host, help="a name, an address (fe80::1%%eth0: with its scope), or '' (every "
                                    "interface, as bind takes it)"), SERVER_PORT], []),
    ("sockopts", cmd_sockopts, "socket options set before bind/connect and read back: listener, client, "
     "accepted socket",
     [LOCAL_HOST, _arg("--buffer", type=_buffer_size, default=65536, metavar="BYTES",
                       help="what SO_RCVBUF and SO_SNDBUF are set to (default 65536)"), JSON], []),
    ("half-open-server", cmd_half_open_server,
     "read until the peer's EOF, hold our side open, then answer (the half-open lesson)",
     [HOST, SERVER_PORT, _arg("--hold", type=_seconds(zero=True), default=5.0, metavar="S",
                              help="seconds to keep our side open after the peer's EOF (default 5)")], []),
    ("backlog", cmd_backlog, "listen(N) and never accept: how many handshakes complete",
     [LOCAL_HOST, _arg("--backlog", type=_positive(int, zero=True, what="a whole number", most=4096), default=10,
                       help="listen()'s argument (default 10, the guide's)"),
      _arg("--connections", type=_count("connections", 1000), default=20, help="connects to make (default 20)"),
      JSON], [("timeout", 3.0)]),
]


def build_parser() -> argparse.ArgumentParser:
    """The parser, from :data:`COMMANDS`: each command's arguments, then its option groups."""
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log every message (stderr)")
    parser = _Parser(
        prog="socketlab", parents=[common],
        description="The socket-programming guide's programs: echo, multi-connection and "
                    "application client/server, and a connection probe.")
    parser.add_argument("--version", action="version", version=f"socketlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, help, arguments, groups in COMMANDS:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func, parser=p)
        for group in groups:
            if isinstance(group, tuple):  # ("timeout", default)
                arguments = [*arguments, _arg("--timeout", type=_seconds(), default=group[1], metavar="S",
                                              help="seconds for the whole exchange: connect, send and "
                                                   f"receive (default {group[1]:g})")]
            else:
                arguments = [*arguments, *GROUPS[group]]
        for names, options in arguments:
            p.add_argument(*names, **options)
    return parser


def _fail(line: str) -> None:
    print(f"socketlab: {app.printable(line)}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything starts: a usage error is one
    line and exit 2 (SystemExit), a Python without ssl asked for TLS is :class:`Fail`. What a
    command needs beyond its options is made here too: the app client's request bytes
    (``wire``) and every client's TLS settings (``client_tls``)."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "tls_cert") and (args.tls_cert is None) != (args.tls_key is None):
        args.parser.error("--tls-cert and --tls-key go together")
    if hasattr(args, "tls"):
        args.client_tls = _client_tls(args)
    if args.command == "app-client":
        try:
            args.wire = app.make_request(args.action, args.value, dtype=args.dtype,
                                         byteorder=_byteorder(args.byteorder),
                                         json_request=args.json_request)
        except LocalProtocolError as exc:  # e.g. stats numbers that do not parse
            args.parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except Fail as exc:
        _fail(str(exc))
        return 1
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return args.func(args)
    except Fail as exc:
        _fail(str(exc))
    except ProtocolError as exc:
        _fail(f"protocol error: {exc}")
    except client.ExchangeError as exc:
        _fail(f"wrong answer: {exc}")
    except OSError as exc:
        target = _shown_host(args.host) + (f" port {args.port}" if hasattr(args, "port") else "")
        _fail(classify(exc).line(f"talking to {target}"))
    except KeyboardInterrupt:
        print("Caught keyboard interrupt, exiting", flush=True)
        return 130
    return 1
