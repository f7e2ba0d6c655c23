"""``socketlab`` command line: the guide's programs with the guide's argument forms.

See docs/cli.md. Exit status: 0 success, 1 a network or protocol failure (one line on stderr
naming the guide's error and its errno name), 2 a usage error.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import platform
import signal
import struct
import sys

from socketlab import __version__, app, arrays, client
from socketlab.errors import classify
from socketlab.protocol import ProtocolError
from socketlab import server as servers
from socketlab.server import AppHandler, EchoHandler, Server, create_listener

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 65432

log = logging.getLogger("socketlab")


class Fail(Exception):
    """A failure already worded for the user."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port!r}: must be 0..65535")
    return port


def _positive(kind, *, zero: bool = False):
    """An argparse type: a finite number above 0 (or 0 too, with ``zero``)."""
    def parse(text: str):
        value = kind(text)
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"must be {'0 or more' if zero else 'positive'}, got {text!r}")
        return value
    return parse


# -- servers ---------------------------------------------------------------------------------


def _raise_nofile_limit() -> None:
    try:
        import resource
    except ImportError:  # not every build has it; the limit then stays as it is
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(args, handler_factory) -> int:
    try:
        listener = create_listener(args.host, args.port)
    except OSError as exc:
        failure = classify(exc)
        hint = {
            "address-in-use": "another program is listening there",
            "permission-denied": "ports below 1024 need root or CAP_NET_BIND_SERVICE",
            "address-not-available": f"{args.host!r} is not an address of this host",
        }.get(failure.outcome)
        raise Fail(failure.line(f"binding {args.host!r} port {args.port}")
                   + (f": {hint}" if hint else "")) from None
    _raise_nofile_limit()
    server = Server(
        listener,
        handler_factory,
        idle_timeout=args.idle_timeout or None,
        request_timeout=args.request_timeout or None,
        max_connections=args.max_connections,
        max_buffered=args.max_buffered,
        socket_buffer=args.socket_buffer,
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.shutdown())
    host, port = server.address[:2]
    print(f"listening on {host} port {port}", flush=True)
    server.serve_forever()
    log.info("stopped")
    return 0


def cmd_echo_server(args) -> int:
    return _serve(args, EchoHandler)


def cmd_app_server(args) -> int:
    decoder = arrays.decode_array_naive if args.array_decoder == "naive" else arrays.decode_array
    if args.array_decoder == "naive":
        log.warning("array decoder is NAIVE (native byte order, header ignored): negative control only")
    return _serve(args, functools.partial(AppHandler, array_decoder=decoder))


# -- clients ---------------------------------------------------------------------------------


def cmd_echo_client(args) -> int:
    data = client.echo(args.host, args.port, args.message.encode("utf-8"), timeout=args.timeout)
    print(f"Received {data!r}")
    return 0


def cmd_multiconn_client(args) -> int:
    results = client.multiconn(args.host, args.port, args.num_conns,
                               messages_per_conn=args.messages, timeout=args.timeout)
    for connid in sorted(results):
        log.debug("connection %d received %r", connid, results[connid])
    total = sum(map(len, results.values()))
    print(f"{len(results)} connections, {total} bytes echoed, every message exact")
    return 0


def _byteorder(name: str) -> str:
    return sys.byteorder if name == "native" else name


def cmd_app_client(args) -> int:
    wire = app.make_request(args.action, args.value, dtype=args.dtype,
                            byteorder=_byteorder(args.byteorder))
    reply = client.request(args.host, args.port, wire, timeout=args.timeout)
    result = app.describe_response(reply.response)
    if args.json:
        print(json.dumps({
            "byteorder": sys.byteorder,
            "request": {"action": args.action, "value": args.value, "dtype": args.dtype,
                        "byteorder": _byteorder(args.byteorder)},
            "header": reply.response.header,
            "result": result,
            "local": list(reply.local),
            "peer": list(reply.peer),
        }, ensure_ascii=False))
    elif isinstance(result, dict):
        print(f"got values: {result['values']}")
        print(f"got stats: {result['stats']}")
    elif reply.response.content_type == "text/json":
        print(f"got result: {result}")
    else:
        print(f"got response: {result}")
    return 0


def cmd_probe(args) -> int:
    result = client.probe(args.host, args.port, timeout=args.timeout)
    print(json.dumps(result))
    return 0 if result["outcome"] == "connected" else 1


# -- demo ------------------------------------------------------------------------------------

#: Values whose bytes are not palindromes, so a byte-order mistake cannot hide.
DEMO_ARRAYS = {
    "int16": [0x0102, -2, 300, -32768, 32767],
    "uint16": [0x0102, 65535, 1, 0x8000],
    "int32": [0x01020304, -2, 70000, -(2**31), 2**31 - 1],
    "uint32": [0x01020304, 2**32 - 1, 1, 0x80000000],
    "int64": [0x0102030405060708, -2, -(2**63), 2**63 - 1],
    "uint64": [0x0102030405060708, 2**64 - 1, 1],
    "float32": [1.5, -0.1, 3.25e-3, 65504.0],
    "float64": [1.5, -0.1, 3.25e-3, 1e300],
}


def expected_array(dtype: str, values) -> list:
    """``values`` as ``dtype`` can hold them (float32 rounds)."""
    code = arrays.DTYPES[dtype]
    return list(struct.unpack(f"<{len(values)}{code}", struct.pack(f"<{len(values)}{code}", *values)))


def demo_cases():
    """(label, action, value, dtype, expected result) for every request kind."""
    for query, answer in app.SEARCH.items():
        yield f"search {query!r}", "search", query, None, answer
    yield "search 'nothing'", "search", "nothing", None, 'No match for "nothing".'
    yield "action 'double'", "double", "10", None, 'Error: invalid action "double".'
    yield ("binary 'request bytes'", "binary", "request bytes 🐍", None,
           repr(b"First 10 bytes of request: " + "request bytes 🐍".encode()[:10]))
    for dtype, values in DEMO_ARRAYS.items():
        expected = expected_array(dtype, values)
        stats = arrays.array_stats(expected)
        yield (f"stats {dtype}", "stats", ",".join(map(repr, values)), dtype,
               {"values": expected, "stats": stats})


def cmd_demo(args) -> int:
    print(f"byteorder: {sys.byteorder} (this client: Python {platform.python_version()} "
          f"on {platform.machine() or 'unknown'})")
    print(f"server: {args.host} port {args.port}")
    wrong = 0
    for label, action, value, dtype, expected in demo_cases():
        wire = app.make_request(action, value, dtype=dtype or "int32", byteorder=sys.byteorder)
        reply = client.request(args.host, args.port, wire, timeout=args.timeout)
        result = app.describe_response(reply.response)
        ok = result == expected
        wrong += not ok
        shown = result if not isinstance(result, dict) else (
            f"sum={result['stats']['sum']!r} min={result['stats']['min']!r} "
            f"max={result['stats']['max']!r}, {len(result['values'])} values echoed")
        print(f"{'ok ' if ok else 'BAD'} {label:<22} -> {shown}")
        if not ok:
            print(f"    expected {expected!r}")
    total = sum(1 for _ in demo_cases())
    if wrong:
        raise Fail(f"demo: {wrong} of {total} answers wrong")
    print(f"demo: all {total} answers correct (peer {reply.peer[0]}, me {reply.local[0]})")
    return 0


# -- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log every message (stderr)")
    parser = argparse.ArgumentParser(
        prog="socketlab", parents=[common],
        description="The socket-programming guide's programs: echo, multi-connection and "
                    "application client/server, and a connection probe.")
    parser.add_argument("--version", action="version", version=f"socketlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help):
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    def server_options(p):
        p.add_argument("--idle-timeout", type=_positive(float, zero=True),
                       default=servers.DEFAULT_IDLE_TIMEOUT, metavar="S",
                       help="close connections idle this long; 0 = never "
                            f"(default {servers.DEFAULT_IDLE_TIMEOUT:g})")
        p.add_argument("--request-timeout", type=_positive(float, zero=True),
                       default=servers.DEFAULT_REQUEST_TIMEOUT, metavar="S",
                       help="close a connection whose request is not complete S seconds after "
                            f"its first byte; 0 = never (default {servers.DEFAULT_REQUEST_TIMEOUT:g})")
        p.add_argument("--max-connections", type=_positive(int),
                       default=servers.DEFAULT_MAX_CONNECTIONS, metavar="N",
                       help="stop accepting while N connections are open "
                            f"(default {servers.DEFAULT_MAX_CONNECTIONS})")
        p.add_argument("--max-buffered", type=_positive(int),
                       default=servers.DEFAULT_MAX_BUFFERED, metavar="BYTES",
                       help="bytes buffered across all connections before the largest holders "
                            f"are closed (default {servers.DEFAULT_MAX_BUFFERED})")
        p.add_argument("--socket-buffer", type=_positive(int), default=None, metavar="BYTES",
                       help="SO_SNDBUF/SO_RCVBUF of accepted sockets (default: the kernel's)")

    def timeout_option(p, default=10.0):
        p.add_argument("--timeout", type=_positive(float), default=default, metavar="S",
                       help=f"seconds for the whole exchange: connect, send and receive "
                            f"(default {default:g})")

    p = add("echo-server", cmd_echo_server, "echo every byte back (the guide's echo server)")
    p.add_argument("host", nargs="?", default=DEFAULT_HOST)
    p.add_argument("port", nargs="?", type=_port, default=DEFAULT_PORT)
    server_options(p)

    p = add("echo-client", cmd_echo_client, "send a message to an echo server, print the echo")
    p.add_argument("host", nargs="?", default=DEFAULT_HOST)
    p.add_argument("port", nargs="?", type=_port, default=DEFAULT_PORT)
    p.add_argument("message", nargs="?", default="Hello, world")
    timeout_option(p)

    p = add("multiconn-server", cmd_echo_server, "the guide's multi-connection (echo) server")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    server_options(p)

    p = add("multiconn-client", cmd_multiconn_client,
            "open NUM_CONNS connections at once and check every echoed byte")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("num_conns", type=_positive(int))
    p.add_argument("--messages", type=_positive(int), default=2, help="messages per connection")
    timeout_option(p)

    p = add("app-server", cmd_app_server, "the guide's application server")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    server_options(p)
    p.add_argument("--array-decoder", choices=("real", "naive"), default="real",
                   help="naive reads arrays in this CPU's order ignoring the header: the "
                        "byte-order bug, kept as a negative control")

    p = add("app-client", cmd_app_client, "send one request to the application server")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("action", help="search, binary, stats, or anything else")
    p.add_argument("value")
    p.add_argument("--dtype", choices=sorted(arrays.DTYPES), default="int32",
                   help="element type for 'stats' (default int32)")
    p.add_argument("--byteorder", choices=("native", "big", "little", "network"),
                   default="native", help="how 'stats' packs its numbers (default native)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    timeout_option(p)

    p = add("probe", cmd_probe, "try one TCP connection and print the outcome as JSON")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    timeout_option(p, default=2.0)

    p = add("demo", cmd_demo, "every request kind against an app server, checked")
    p.add_argument("host", nargs="?", default=DEFAULT_HOST)
    p.add_argument("--port", type=_port, default=DEFAULT_PORT)
    timeout_option(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return args.func(args)
    except Fail as exc:
        print(f"socketlab: {exc}", file=sys.stderr)
    except ProtocolError as exc:
        print(f"socketlab: protocol error: {exc}", file=sys.stderr)
    except client.ExchangeError as exc:
        print(f"socketlab: wrong answer: {exc}", file=sys.stderr)
    except OSError as exc:
        target = f"{args.host} port {args.port}" if hasattr(args, "port") else args.host
        print(f"socketlab: {classify(exc).line(f'talking to {target}')}", file=sys.stderr)
    except KeyboardInterrupt:
        print("socketlab: interrupted", file=sys.stderr)
        return 130
    return 1
