"""Loopback fixtures: real servers on 127.0.0.1 and ::1, run in a thread of the test process."""

import functools
import threading

import pytest

from socketlab import arrays
from socketlab.handlers import AppHandler, EchoHandler
from socketlab.server import Server, create_listener

from .support import CliServer

HOSTS = ["127.0.0.1", "::1"]

#: name -> handler factory; the echo and multi-connection servers are one program.
KINDS = {
    "echo": EchoHandler,
    "multiconn": EchoHandler,
    "app": AppHandler,
    "app-naive": functools.partial(AppHandler, array_decoder=arrays.decode_array_naive),
}


@pytest.fixture(params=HOSTS)
def host(request):
    return request.param


@pytest.fixture
def serve():
    """``serve(kind, host, **server_options) -> (host, port)``; every server stops at teardown.

    ``kind`` is a name from KINDS or a handler factory of its own.
    """
    running = []

    def start(kind, host="127.0.0.1", **options):
        factory = KINDS[kind] if isinstance(kind, str) else kind
        server = Server(create_listener(host, 0), factory, **options)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return host, server.address[1]

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive(), "server did not stop"


@pytest.fixture
def cli_server():
    started = []

    def start(*argv):
        server = CliServer(*argv)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
