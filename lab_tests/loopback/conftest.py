"""Loopback fixtures: real servers on 127.0.0.1 and ::1, run in a thread of the test process."""

import contextlib
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from socketlab.server import Server, create_listener

from .support import KINDS, CliServer

HOSTS = ["127.0.0.1", "::1"]


@pytest.fixture(params=HOSTS)
def host(request):
    return request.param


@pytest.fixture
def serve():
    """``serve(kind, host, **server_options) -> (host, port)``; every server stops at teardown.

    ``kind`` is a name from support.KINDS or a handler factory of its own.
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
def closing():
    """``closing(thing) -> thing``: ``thing.close()`` runs at teardown, whether the test passed
    or failed midway; the last thing registered is closed first, as with nested ``with`` blocks.

    A test may still close a thing itself where the order matters (closing twice is harmless).
    """
    with contextlib.ExitStack() as stack:
        yield lambda thing: stack.enter_context(contextlib.closing(thing))


@pytest.fixture
def connect(closing):
    """``connect(host, port, **kw) -> socket``: ``socket.create_connection((host, port), **kw)``,
    closed at teardown."""
    return lambda host, port, **kw: closing(socket.create_connection((host, port), **kw))


@pytest.fixture
def listen(closing):
    """``listen(host="127.0.0.1", port=0) -> socket``: the servers' own listener
    (``create_listener``: SO_REUSEADDR, non-blocking), closed at teardown."""
    return lambda host="127.0.0.1", port=0: closing(create_listener(host, port))


@pytest.fixture
def cli_server(closing):
    """``cli_server(*argv) -> CliServer``; every server process is killed at teardown."""
    return lambda *argv: closing(CliServer(*argv))


PKI = Path(__file__).resolve().parents[2] / "services" / "pki" / "make-pki.sh"


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    """A folder made by services/pki/make-pki.sh: the lab CA (ca.pem), a certificate for
    127.0.0.1, ::1 and localhost (localhost.pem/.key), an expired one and a stranger's."""
    directory = tmp_path_factory.mktemp("pki")
    subprocess.run([str(PKI), str(directory), "--failures", "localhost=DNS:localhost,IP:127.0.0.1,IP:::1"],
                   check=True, capture_output=True, timeout=60)
    return directory
